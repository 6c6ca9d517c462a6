import ArgumentParser
import Foundation

/// A duration on the command line: a number with a unit, `500ms`, `30s`, `5m`, `2h` or `7d` (a bare number is
/// seconds).
struct DurationArgument: ExpressibleByArgument, Sendable {
    var duration: Duration

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        var number = text
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = String(text.dropLast(suffix.count))
            scale = factor
            break
        }
        guard let value = Double(number), value >= 0, value.isFinite else { return nil }
        duration = .milliseconds(Int64((value * scale * 1000).rounded()))
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

extension DurationArgument {
    /// What a valid duration looks like, for error messages.
    static let format = "a number with a unit: 500ms, 30s, 5m, 2h or 7d"

    /// Added to the help of every duration option, which is also what a bad value's error shows.
    static let hint = " A duration: 500ms, 30s, 5m, 2h or 7d."
}

extension DurationArgument {
    /// A duration the way the command line writes it: "500ms", "30s", "5m", "2h", "7d", or "90s" when no larger
    /// unit divides it.
    static func describe(_ duration: Duration) -> String {
        let milliseconds = Int(duration.milliseconds)
        for (unit, size) in [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        where milliseconds >= size && milliseconds % size == 0 {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(milliseconds)ms"
    }
}

extension Duration {
    /// This duration in milliseconds.
    var milliseconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
