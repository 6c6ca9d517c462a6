import ArgumentParser

/// Range checks of whole-number options.
enum NumberArgument {
    /// Throws a validation error (exit 64) unless `value` lies in `range`.
    static func check(_ value: Int, _ option: String, _ range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw ValidationError("\(option) must be from \(range.lowerBound) to \(range.upperBound), not \(value)")
        }
    }
}
