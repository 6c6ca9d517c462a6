import Logging
import Synchronization

extension Worker {
    /// Runs a transition that records a job's outcome. While Redis refuses it for lack of memory (`OOM` at
    /// `maxmemory` under `noeviction`), tries again with backoff, up to 5 s apart, and no slot claims meanwhile: the
    /// job still counts as running, so its lease is renewed (`conveyor_heartbeat` may run at maxmemory), and the
    /// outcome is recorded once memory is freed instead of the job running again. Gives up when a shutdown's grace
    /// period is over.
    func throughMemoryPressure<Value>(_ jobID: String, _ transition: () async throws -> Value) async throws -> Value {
        var delay = Duration.milliseconds(100)
        while true {
            do {
                let value = try await transition()
                let since = state.withLock { state in
                    defer { state.outOfMemorySince = nil }
                    return state.outOfMemorySince
                }
                if let since {
                    logger.warning(
                        "Redis accepts writes again after \(ContinuousClock.now - since); claiming again",
                        metadata: ["conveyor.job": "\(jobID)"]
                    )
                }
                return value
            } catch let error as ConveyorError where error.code == .outOfMemory {
                let (first, deadline) = state.withLock { state in
                    defer { state.outOfMemorySince = state.outOfMemorySince ?? .now }
                    return (state.outOfMemorySince == nil, state.stopping ? state.graceDeadline : nil)
                }
                if first {
                    logger.warning(
                        """
                        Redis is at maxmemory and refuses to record job outcomes: this worker claims nothing more \
                        and retries until it can (raise maxmemory or clean up old jobs)
                        """,
                        metadata: ["conveyor.job": "\(jobID)"]
                    )
                }
                if let deadline, ContinuousClock.now + delay > deadline { throw error }
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}
