import Logging

extension Worker {
    /// Runs the start-up calls, again after a Redis error (a connection cut while the worker starts, a restart):
    /// up to 8 tries over about 10 s, so a brief outage does not end a worker that was just started. A library that
    /// is missing or another version, and bad settings, fail at once.
    func startingUp(_ steps: () async throws -> Void) async throws {
        var delay = Duration.milliseconds(100)
        for attempt in 1... {
            do {
                return try await steps()
            } catch let error as ConveyorError where error.code == .redis && attempt < 8 {
                logger.debug("start-up call failed, trying again: \(error.message)")
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(3))
            }
        }
    }
}
