import Logging
import Synchronization

/// Logs a failure that repeats while Redis is unreachable or refusing, as a library should: the first one at
/// `warning`, then at most one `warning` per `interval` (saying how many were held back), every other one at
/// `debug`; and one `notice` when the operation works again. A worker retrying every 200 ms through an outage no
/// longer writes an error line each time.
final class RepeatedFailureLog: Sendable {
    private struct Entry {
        var since: ContinuousClock.Instant
        var lastWarning: ContinuousClock.Instant
        var heldBack = 0
        var failures = 1
    }

    private let entries = Mutex<[String: Entry]>([:])
    let interval: Duration

    init(interval: Duration = .seconds(30)) {
        self.interval = interval
    }

    /// Records one failure of `operation` ("heartbeat", "claim", …) and logs it as above.
    func failed(_ operation: String, _ message: String, logger: Logger, metadata: Logger.Metadata = [:]) {
        let now = ContinuousClock.now
        let (warn, heldBack) = entries.withLock { entries -> (Bool, Int) in
            guard var entry = entries[operation] else {
                entries[operation] = Entry(since: now, lastWarning: now)
                return (true, 0)
            }
            entry.failures += 1
            if now - entry.lastWarning >= interval {
                let heldBack = entry.heldBack
                entry.lastWarning = now
                entry.heldBack = 0
                entries[operation] = entry
                return (true, heldBack)
            }
            entry.heldBack += 1
            entries[operation] = entry
            return (false, 0)
        }
        var metadata = metadata
        metadata["conveyor.operation"] = "\(operation)"
        if warn {
            let note = heldBack > 0 ? " (and \(heldBack) more like it since the last warning)" : ""
            logger.warning("\(message)\(note)", metadata: metadata)
        } else {
            logger.debug("\(message)", metadata: metadata)
        }
    }

    /// Records that `operation` worked; logs a `notice` when it had been failing.
    func succeeded(_ operation: String, logger: Logger) {
        guard let entry = entries.withLock({ $0.removeValue(forKey: operation) }) else { return }
        logger.notice(
            "\(operation) works again after \(ContinuousClock.now - entry.since) (\(entry.failures) failures)",
            metadata: ["conveyor.operation": "\(operation)"]
        )
    }
}
