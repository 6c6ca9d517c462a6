import Metrics
import Synchronization

/// Metric handles, made once per queue, type and outcome instead of once per job.
final class WorkerMetrics: Sendable {
    private let counters = Mutex<[String: Counter]>([:])
    private let timers = Mutex<[String: Metrics.Timer]>([:])

    func timer(_ label: String, queue: String, type: String) -> Metrics.Timer {
        let key = "\(label)\u{0}\(queue)\u{0}\(type)"
        return timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = Metrics.Timer(label: label, dimensions: [("queue", queue), ("type", type)])
            timers[key] = timer
            return timer
        }
    }

    func counter(_ label: String, queue: String, type: String) -> Counter {
        let key = "\(label)\u{0}\(queue)\u{0}\(type)"
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
