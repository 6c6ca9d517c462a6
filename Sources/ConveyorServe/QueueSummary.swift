import Conveyor
import Foundation

/// One queue's state as the dashboard, the API and `/metrics` show it: counts by status, counters, paused, latency
/// (the age of the oldest pending job).
struct QueueSummary: Sendable {
    var name: String
    var counts: [String: Int]
    var stats: [String: Int]
    var paused: Bool
    var latencyMilliseconds: Int

    var object: [String: Any] {
        ["queue": name, "counts": counts, "stats": stats, "paused": paused, "latency_ms": latencyMilliseconds]
    }

    /// Reads one queue's summary (four reads at once).
    static func read(_ name: String, from jobs: JobQueue) async throws -> QueueSummary {
        async let counts = jobs.counts(queue: name)
        async let stats = jobs.stats(queue: name)
        async let paused = jobs.isPaused(queue: name)
        async let oldest = jobs.list(queue: name, status: .pending, limit: 1)
        let countsByName = Dictionary(uniqueKeysWithValues: try await counts.map { ($0.key.rawValue, $0.value) })
        let latency = try await oldest.first.flatMap { $0.runAt ?? $0.createdAt }.map {
            max(0, Int((Date().timeIntervalSince($0) * 1000).rounded()))
        }
        return QueueSummary(
            name: name,
            counts: countsByName,
            stats: try await stats,
            paused: try await paused,
            latencyMilliseconds: latency ?? 0
        )
    }

    /// Reads the summaries of many queues concurrently, in the order given.
    static func read(_ names: [String], from jobs: JobQueue) async throws -> [QueueSummary] {
        try await names.concurrentMap { try await read($0, from: jobs) }
    }
}
