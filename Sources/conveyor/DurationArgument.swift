import ArgumentParser
import Foundation

/// A duration on the command line: a number with a unit, `500ms`, `30s`, `5m`, `2h` or `7d` (a bare number is
/// seconds).
///
/// Any finite, non-negative number parses; each option then checks its own range with ``check(_:atLeast:atMost:)``,
/// so that `--in 1e30s` is refused with the option's limits instead of overflowing.
struct DurationArgument: ExpressibleByArgument, CustomStringConvertible, Sendable {
    /// The value as it was written, for error messages.
    var text: String
    /// The length in whole milliseconds (rounded), as a `Double` so that any size parses.
    var milliseconds: Double

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
        let milliseconds = (value * scale * 1000).rounded()
        guard milliseconds.isFinite else { return nil }
        self.text = argument
        self.milliseconds = milliseconds
    }

    /// The duration; values beyond ``largest`` (which every option's range check refuses first) are cut to it
    /// rather than overflow.
    var duration: Duration {
        .milliseconds(Int64(min(milliseconds, Self.largest.milliseconds)))
    }

    /// How `--help` shows a default: `30s`, `7d`.
    var description: String { Self.describe(duration) }

    static var defaultCompletionKind: CompletionKind { .default }

    /// Longer than any option accepts (100 years).
    static let largest = Duration.seconds(100 * 365 * 86_400)

    /// The farthest ahead a job or a schedule can be set, and the longest wait or age an option takes: about ten
    /// years (Conveyor's functions refuse a job to run more than ten years ahead).
    static let farthest = Duration.days(3650)

    /// The longest time limit of one attempt (the most Conveyor's functions store).
    static let longestTimeout = Duration.days(30)
}

extension DurationArgument {
    /// What a valid duration looks like, for error messages.
    static let format = "a number with a unit: 500ms, 30s, 5m, 2h or 7d"

    /// Added to the help of every duration option, which is also what a bad value's error shows.
    static let hint = " A duration: 500ms, 30s, 5m, 2h or 7d."

    /// What is wrong with this duration as the value of `name` (`--lease`, `"in"`), or `nil` when it lies in
    /// `minimum...maximum`.
    func problem(_ name: String, atLeast minimum: Duration = .zero, atMost maximum: Duration) -> String? {
        if milliseconds < minimum.milliseconds {
            return "\(name) must be at least \(Self.describe(minimum)), not \(text)"
        }
        if milliseconds > maximum.milliseconds {
            return "\(name) must be at most \(Self.describe(maximum)), not \(text)"
        }
        return nil
    }

    /// Throws a validation error (exit 64) unless this duration lies in `minimum...maximum`.
    func check(_ option: String, atLeast minimum: Duration = .zero, atMost maximum: Duration) throws {
        if let problem = problem(option, atLeast: minimum, atMost: maximum) { throw ValidationError(problem) }
    }
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

    /// `count` days.
    static func days(_ count: Int) -> Duration { .seconds(count * 86_400) }
}
