import Metrics
import Synchronization

/// Metric handles, made once per queue, type and outcome instead of once per job.
final class WorkerMetrics: Sendable {
    /// One handle's name and dimensions (a key that allocates nothing to look up).
    private struct Key: Hashable {
        var name: String
        var queue: String
        var type: String
    }

    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[Key: Metrics.Timer]>([:])

    func timer(_ label: String, queue: String, type: String) -> Metrics.Timer {
        let key = Key(name: label, queue: queue, type: type)
        return timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = Metrics.Timer(label: label, dimensions: [("queue", queue), ("type", type)])
            timers[key] = timer
            return timer
        }
    }

    func counter(_ label: String, queue: String, type: String) -> Counter {
        let key = Key(name: label, queue: queue, type: type)
        return counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: [("queue", queue), ("type", type)])
            counters[key] = counter
            return counter
        }
    }

    func outcome(_ status: JobStatus, queue: String, type: String) -> Counter {
        let label =
            switch status {
            case .completed: "conveyor_jobs_completed_total"
            case .retrying: "conveyor_jobs_retried_total"
            case .cancelled: "conveyor_jobs_cancelled_total"
            default: "conveyor_jobs_failed_total"
            }
        return counter(label, queue: queue, type: type)
    }
}
