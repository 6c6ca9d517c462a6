/// Why ``eventually(timeout:_:_:)`` gave up.
public struct WaitTimeout: Error, CustomStringConvertible {
    /// What was waited for.
    public var what: String

    /// Creates the error.
    ///
    /// - Parameter what: What was waited for.
    public init(what: String) {
        self.what = what
    }

    public var description: String { "timed out waiting for \(what)" }
}

/// Waits, checking every few milliseconds, until `condition` holds.
///
/// For conditions no event announces (a process starting, a count in Redis reaching a value); prefer awaiting an
/// event where there is one.
///
/// - Parameters:
///   - timeout: How long to wait (10 s by default).
///   - what: What is waited for, for the error.
///   - condition: Checked until it returns `true`.
/// - Throws: ``WaitTimeout`` after `timeout`, or what `condition` throws.
public func eventually(
    timeout: Duration = .seconds(10),
    _ what: String,
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    throw WaitTimeout(what: what)
}
