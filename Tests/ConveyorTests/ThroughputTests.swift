import ConveyorTesting
import Foundation
import RedisClient
import Testing

@testable import Conveyor

@Suite("Throughput from the event stream")
struct ThroughputTests {
    @Test func countsFinishedJobsInTheWindowAndNarrowsItWhenTheStreamWasTrimmed() async throws {
        try await withJobQueue { jobs, _ in
            for number in 0..<4 {
                let id = try await jobs.enqueue("t", json: "{}").id
                let token = try await jobs.take(id).leaseToken
                if number == 3 {
                    try await jobs.fail(id, leaseToken: token, error: "x", retry: false)
                } else {
                    try await jobs.complete(id, leaseToken: token)
                }
            }
            let full = try await jobs.throughput()
            #expect(full.completed == 3 && full.failed == 1 && full.covered == .seconds(60))
            // Nothing finished more than a millisecond ago counts in a one-millisecond window a second later.
            try await Task.sleep(for: .milliseconds(50))
            let narrow = try await jobs.throughput(over: .milliseconds(1))
            #expect(narrow.completed == 0 && narrow.failed == 0)

            // Trimmed to the last four entries (the last completion, then the failing job's pending, processing and
            // failed): only those count, and the window covered starts at the oldest entry kept.
            _ = try await jobs.redis.send("XTRIM", "conveyor:{default}:events", "MAXLEN", "4")
            let trimmed = try await jobs.throughput()
            #expect(trimmed.completed == 1 && trimmed.failed == 1, "\(trimmed)")
            #expect(trimmed.covered < .seconds(60))
        }
    }
}
