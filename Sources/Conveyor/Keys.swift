/// Every Redis key Conveyor uses, built in this one place.
///
/// All keys of one queue share the prefix `<namespace>:{<queue>}`: the queue name in braces is a Redis Cluster
/// hash tag, so every key one transition touches lives in the same slot. The Lua functions receive the prefix as
/// their only key and derive the same names from it (see `lua/README.md`).
package struct Keys: Sendable, Hashable {
    /// The namespace, `conveyor` by default: several applications can share one Redis with different namespaces.
    package let namespace: String

    package init(namespace: String) {
        self.namespace = namespace
    }

    /// `<namespace>:queues`: a set of every queue name that has been used (global, its own slot).
    package var queues: String { "\(namespace):queues" }

    /// `<namespace>:workers`: a set of the ids of worker processes that registered (global).
    package var workers: String { "\(namespace):workers" }

    /// `<namespace>:worker:<id>`: one worker process's record (JSON), which expires when the worker stops
    /// heartbeating.
    package func worker(_ id: String) -> String { "\(namespace):worker:\(id)" }

    /// `<namespace>:worker:<id>:bell`: a list the worker's dispatcher blocks on with its queues' wake lists, so that
    /// the worker itself can end that wait (a job finished, a due time came); it expires a minute after each use.
    package func workerBell(_ id: String) -> String { "\(namespace):worker:\(id):bell" }

    /// `<namespace>:{<queue>}:bell:<id>`: on a Redis Cluster, where one `BLPOP` cannot span slots, the worker's bell
    /// in the slot of each of its queues: it blocks on each queue's wake list and bell on a connection per queue.
    package func workerBell(_ id: String, queue: String) -> String { "\(prefix(queue)):bell:\(id)" }

    /// `<namespace>:leader`: the scheduler leader's lease (token, node, info, since, expires_at, epoch).
    package var leader: String { "\(namespace):leader" }

    /// `<namespace>:schedule-changes`: a stream the scheduler blocks on, to wake early when a schedule changes.
    package var scheduleChanges: String { "\(namespace):schedule-changes" }

    /// `<namespace>:schedules`: a set of every schedule as `<queue>/<name>` (global, for listing).
    package var schedules: String { "\(namespace):schedules" }

    /// `<prefix>:schedule:<name>`: one schedule's hash (definition, next and last run, paused).
    package func schedule(_ queue: String, _ name: String) -> String { "\(prefix(queue)):schedule:\(name)" }

    /// `<prefix>:schedules`: sorted set of the queue's active schedules by next run time.
    package func dueSchedules(_ queue: String) -> String { "\(prefix(queue)):schedules" }

    /// `<namespace>:{<queue>}`: the prefix of every key of a queue, and the one key passed to the Lua functions.
    package func prefix(_ queue: String) -> String { "\(namespace):{\(queue)}" }

    /// `<prefix>:job:<id>`: the hash of one job (`id` is the job's id within its queue).
    package func job(_ queue: String, _ localID: String) -> String { "\(prefix(queue)):job:\(localID)" }

    /// `<prefix>:pending`: list of pending job ids with priority 0, oldest first.
    package func pending(_ queue: String) -> String { "\(prefix(queue)):pending" }

    /// `<prefix>:prioritized`: sorted set of pending job ids with a priority other than 0.
    package func prioritized(_ queue: String) -> String { "\(prefix(queue)):prioritized" }

    /// `<prefix>:pending:type:<type>`: sorted set of the pending jobs of one type with a priority other than 0
    /// (scored like `prioritized`), read by `pending(type:)` with the list below (like the origin's index on status
    /// and type).
    package func pending(_ queue: String, type: String) -> String { "\(prefix(queue)):pending:type:\(type)" }

    /// `<prefix>:pending:type:<type>:fifo`: list of the pending jobs of one type with priority 0, in run order.
    package func pendingList(_ queue: String, type: String) -> String { "\(prefix(queue)):pending:type:\(type):fifo" }

    /// `<prefix>:wake`: list of wake-up tokens, one per job that became available; idle workers block on it.
    package func wake(_ queue: String) -> String { "\(prefix(queue)):wake" }

    /// `<prefix>:scheduled`, `:retry`, `:active`, `:completed`, `:failed`, `:cancelled`: the sorted set that lists
    /// the jobs of a status other than pending (scored by run time, retry time, lease expiry or finish time).
    package func index(_ queue: String, _ status: JobStatus) -> String {
        switch status {
        case .scheduled: "\(prefix(queue)):scheduled"
        case .retrying: "\(prefix(queue)):retry"
        case .processing: "\(prefix(queue)):active"
        case .completed: "\(prefix(queue)):completed"
        case .failed: "\(prefix(queue)):failed"
        case .cancelled: "\(prefix(queue)):cancelled"
        case .pending: pending(queue)
        }
    }

    /// `<prefix>:events`: the stream of the queue's job transitions.
    package func events(_ queue: String) -> String { "\(prefix(queue)):events" }

    /// `<prefix>:meta`: hash of queue settings (paused, retention) and sequences.
    package func meta(_ queue: String) -> String { "\(prefix(queue)):meta" }

    /// `<prefix>:stats`: hash of counters (enqueued, started, completed, failed, retried, …).
    package func stats(_ queue: String) -> String { "\(prefix(queue)):stats" }

    /// `<prefix>:history:<hour>`: hash of one hour's per-minute counters, fields `<minute>:<counter>` (hours and
    /// minutes since the epoch by Redis `TIME`); it expires 25 hours after its first write.
    package func history(_ queue: String, hour: Int) -> String { "\(prefix(queue)):history:\(hour)" }

    /// `<prefix>:ref:<type>:<id>`: set of the full ids of the jobs that refer to one entity.
    package func reference(_ queue: String, type: String, id: String) -> String {
        "\(prefix(queue)):ref:\(type):\(id)"
    }

    /// `<prefix>:unique:<key>`: the full id of the live job holding a uniqueness key.
    package func unique(_ queue: String, _ key: String) -> String { "\(prefix(queue)):unique:\(key)" }
}
