/// Which transitions a queue records in its event stream (`<prefix>:events`, the meta field `events`).
///
/// Every transition is recorded by default. A queue whose followers only wait for results (``JobQueue/result(of:timeout:)``,
/// `conveyor enqueue --wait`) can record only the finished ones, and a queue nobody follows none: each entry costs
/// Redis an `XADD`. Batched calls write one entry for the whole batch either way. Waiting for a result still works
/// with `none` (the waiter then reads the job's status once a second).
public enum EventRecording: String, Sendable, Hashable, CaseIterable {
    /// Every transition (the default): `conveyor tail` and ``JobQueue/events(queues:from:)`` see each one.
    case all
    /// Only transitions to completed, failed and cancelled, and removals.
    case finished
    /// None.
    case none
}
