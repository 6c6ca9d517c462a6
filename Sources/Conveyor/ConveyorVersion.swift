/// Conveyor's version, shown by `conveyor --version`.
public enum ConveyorVersion {
    /// The release this build belongs to.
    public static let current = "0.2.0"
}
