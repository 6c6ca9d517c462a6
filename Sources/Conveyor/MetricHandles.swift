import Metrics
import Synchronization

/// Metric handles, made once per name, queue and type instead of once per job (a swift-metrics backend looks a
/// handle up by its label and dimensions on every creation).
///
/// Every counter carries `queue` and `type` dimensions, but `conveyor_jobs_stalled_total`, which carries `queue`
/// only: a reclaim returns expired leases of a queue without reading their jobs.
final class MetricHandles: Sendable {
    /// One handle's name and dimensions (a key that allocates nothing to look up).
    private struct Key: Hashable {
        var name: String
        var queue: String
        var type: String?
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

    /// A counter with `queue` and, when given, `type` dimensions.
    func counter(_ label: String, queue: String, type: String?) -> Counter {
        let key = Key(name: label, queue: queue, type: type)
        return counters.withLock { counters in
            if let counter = counters[key] { return counter }
            var dimensions = [("queue", queue)]
            if let type { dimensions.append(("type", type)) }
            let counter = Counter(label: label, dimensions: dimensions)
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

    /// Counts jobs that an enqueue created (not those it found already there).
    func enqueued(_ results: some Sequence<EnqueuedJob>, queue: String, types: some Sequence<String>) {
        for (result, type) in zip(results, types) where result.outcome == .created {
            counter("conveyor_jobs_enqueued_total", queue: queue, type: type).increment()
        }
    }
}
