public enum Conveyor { public static let version = "0.1.0" }
