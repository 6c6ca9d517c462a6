public import Foundation

/// What one queue counted in one minute: jobs enqueued, started, completed, failed, retried, stalled and cancelled.
///
/// Read by ``JobQueue/history(queue:minutes:)`` from the queue's per-minute counters in Redis, which every node
/// writes, so any process can draw the whole fleet's throughput.
public struct ThroughputMinute: Sendable, Hashable {
    /// The counters kept per minute, in this order: `enqueued`, `started`, `completed`, `failed`, `retried`,
    /// `stalled`, `cancelled` (the other counters of ``JobQueue/stats(queue:)`` are not kept per minute).
    public static let counterNames = ["enqueued", "started", "completed", "failed", "retried", "stalled", "cancelled"]

    /// When the minute began (by Redis `TIME`).
    public var minute: Date
    /// Each counter of ``counterNames`` with how much it grew in this minute (0 when it did not).
    public var counts: [String: Int]

    /// A minute's counts.
    ///
    /// - Parameters:
    ///   - minute: When the minute began.
    ///   - counts: Counter names and how much each grew in the minute.
    public init(minute: Date, counts: [String: Int]) {
        self.minute = minute
        self.counts = counts
    }
}
