import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Issue 14, item 4: per-minute counters per queue in Redis (`<prefix>:history:<hour>`), read by `history`.
@Suite("Throughput history: per-minute counters per queue")
struct JobQueueHistoryTests {
    /// Epoch minutes by Redis TIME.
    static func redisMinute(_ jobs: JobQueue) async throws -> Int {
        Int((try await jobs.redisTime().timeIntervalSince1970 / 60).rounded(.down))
    }

    /// Every counter of the history summed over `minutes`.
    static func totals(_ minutes: [ThroughputMinute]) -> [String: Int] {
        minutes.reduce(into: [:]) { totals, minute in totals.merge(minute.counts, uniquingKeysWith: +) }
    }

    @Test func historyCountsWhatStatsCountsInTheCurrentMinute() async throws {
        try await withJobQueue { jobs, _ in
            let first = try await Self.redisMinute(jobs)
            _ = try await jobs.enqueueMany((0..<6).map { NewJob("t", json: #"{"n":\#($0)}"#) })
            let cancelled = try await jobs.enqueue("t", json: "{}").id
            #expect(try await jobs.cancel(cancelled) == .cancelled)
            let claimed = try await jobs.claim(count: 4, lease: .seconds(30)).jobs
            try await jobs.complete(claimed[0].job.id, leaseToken: claimed[0].leaseToken)
            let backoff = Backoff(base: .seconds(60), cap: .seconds(60), jitter: false)
            _ = try await jobs.report(
                queue: "default",
                outcomes: [
                    .completed(id: claimed[1].job.id, token: claimed[1].leaseToken, result: nil),
                    .failed(
                        id: claimed[2].job.id,
                        token: claimed[2].leaseToken,
                        error: "boom",
                        retry: true,
                        delay: nil,
                        backoff: backoff,
                        maxRetries: nil
                    ),
                ],
                claim: 0,
                lease: .seconds(30),
                worker: "w"
            )
            #expect(
                try await jobs.fail(claimed[3].job.id, leaseToken: claimed[3].leaseToken, error: "x", retry: false)
                    == .failed
            )
            // A lease that expires: reclaim counts a stall and puts the job back.
            let short = try #require(try await jobs.claim(lease: .milliseconds(20)).jobs.first)
            try await eventually("the short lease to expire and be reclaimed") {
                try await jobs.reclaimExpired() == 1
            }
            #expect(try await jobs.get(short.job.id)?.status == .pending)

            let history = try await jobs.history(minutes: 5)
            let last = try await Self.redisMinute(jobs)
            #expect(history.count == 5)
            // Oldest first, one minute apart, the current minute last, every counter present (zeros filled in).
            let minutes = history.map { Int($0.minute.timeIntervalSince1970) / 60 }
            #expect(minutes == Array((minutes[0])...(minutes[0] + 4)))
            #expect((first...last).contains(minutes[4]))
            #expect(history.allSatisfy { Set($0.counts.keys) == Set(ThroughputMinute.counterNames) })
            let expected = [
                "enqueued": 7, "started": 5, "completed": 2, "failed": 1, "retried": 1, "stalled": 1, "cancelled": 1,
            ]
            #expect(Self.totals(history) == expected)
            if first == last {
                #expect(history[4].counts == expected, "everything happened within this minute")
            }
            // stats and the history agree on every counter the history keeps.
            let stats = try await jobs.stats()
            for name in ThroughputMinute.counterNames {
                #expect(stats[name, default: 0] == expected[name], "\(name): stats \(stats)")
            }
        }
    }

    @Test func onlyTheSevenCountersAreKeptPerMinute() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            #expect(try await jobs.cancel(id) == .cancelled)
            try await jobs.retry(id)
            try await jobs.remove(id)
            let stats = try await jobs.stats()
            #expect(stats["requeued"] == 1 && stats["removed"] == 1)
            let minute = try await Self.redisMinute(jobs)
            var fields: [String] = []
            for hour in [minute / 60 - 1, minute / 60] {
                let reply = try await jobs.redis.send("HKEYS", jobs.keys.history("default", hour: hour))
                fields += (reply.array ?? []).compactMap(\.string)
            }
            let names = Set(fields.compactMap { $0.split(separator: ":").last.map(String.init) })
            #expect(names == ["enqueued", "cancelled"], "\(fields)")
        }
    }

    @Test func anHourHashLivesAtMostTwentyFiveHoursFromItsFirstWrite() async throws {
        try await withJobQueue { jobs, _ in
            _ = try await jobs.enqueue("t", json: "{}")
            let minute = try await Self.redisMinute(jobs)
            var key = jobs.keys.history("default", hour: minute / 60)
            if try await jobs.redis.send("EXISTS", key) == .integer(0) {
                // The hour turned between the enqueue and TIME.
                key = jobs.keys.history("default", hour: minute / 60 - 1)
            }
            let ttl = try #require(try await jobs.redis.send("TTL", key).int)
            #expect(ttl > 89_000 && ttl <= 90_000, "TTL \(ttl)")
            // Later writes keep the first expiry (EXPIRE … NX): the hash is gone 25 hours after the hour began.
            #expect(try await jobs.redis.send("EXPIRE", key, 100) == .integer(1))
            _ = try await jobs.enqueue("t", json: "{}")
            let again = try #require(try await jobs.redis.send("TTL", key).int)
            #expect(again > 0 && again <= 100, "TTL \(again)")
        }
    }

    @Test func aBatchWritesTheHistoryOncePerCounterNotPerJob() async throws {
        try await withJobQueue { jobs, _ in
            _ = try await jobs.enqueueMany((0..<25).map { _ in NewJob("t", json: "{}") })
            let claimed = try await jobs.claim(count: 10, lease: .seconds(30)).jobs
            let minute = try await Self.redisMinute(jobs)
            let before = try await HotPathTests.commandCalls(jobs)
            // Ten completions and a claim of ten in one call: stats and history once each for completed and
            // started, and one EXPIRE (completed is a new field).
            let reply = try await jobs.report(
                queue: "default",
                outcomes: claimed.map { .completed(id: $0.job.id, token: $0.leaseToken, result: nil) },
                claim: 10,
                lease: .milliseconds(20),
                worker: "w"
            )
            let after = try await HotPathTests.commandCalls(jobs)
            #expect((after["hincrby"] ?? 0) - (before["hincrby"] ?? 0) == 5, "2 stats, 2 history, 1 lease sequence")
            #expect((after["expire"] ?? 0) - (before["expire"] ?? 0) == 1, "the first completion of the minute")
            // Once the minute's fields exist, a call sets no expiry.
            let more = try #require(try await jobs.claim(count: 5, lease: .seconds(30)).jobs.first)
            try await jobs.complete(more.job.id, leaseToken: more.leaseToken)
            let later = try await HotPathTests.commandCalls(jobs)
            if try await Self.redisMinute(jobs) == minute {
                #expect((later["expire"] ?? 0) == (after["expire"] ?? 0))
            }
            // A reclaim counts each expired lease in stats, but writes the history once.
            let short = try jobs.split(try #require(reply.claim.jobs.first).job.id).localID
            let score = try await jobs.redis.send("ZSCORE", jobs.keys.index("default", .processing), short)
            let expiry = try #require(score.string.flatMap(Double.init))
            try await eventually("the short leases to expire") {
                Double(JobQueue.milliseconds(try await jobs.redisTime())) > expiry
            }
            let idle = try await HotPathTests.commandCalls(jobs)
            #expect(try await jobs.reclaimExpired() == 10)
            let reclaimed = try await HotPathTests.commandCalls(jobs)
            #expect((reclaimed["hincrby"] ?? 0) - (idle["hincrby"] ?? 0) == 10 + 1, "10 stats, 1 history")
            #expect((reclaimed["expire"] ?? 0) - (idle["expire"] ?? 0) == 1, "the first stall of the minute")
            #expect(Self.totals(try await jobs.history(minutes: 2))["stalled"] == 10)
        }
    }

    @Test func aWholeDayReadsEveryMinuteAndAQuietQueueReadsZeros() async throws {
        try await withJobQueue { jobs, _ in
            let day = try await jobs.history(queue: "quiet", minutes: 1440)
            #expect(day.count == 1440)
            #expect(day.allSatisfy { $0.counts.values.allSatisfy { $0 == 0 } })
            #expect(day.last!.minute.timeIntervalSince(day.first!.minute) == 1439 * 60)
            let one = try await jobs.history(queue: "quiet", minutes: 1)
            #expect(one.count == 1 && one[0].minute >= day.last!.minute)
        }
    }

    @Test(arguments: [0, -1, 1441, Int.max])
    func minutesOutsideOneDayAreRefused(_ minutes: Int) async throws {
        try await withJobQueue { jobs, _ in
            await #expect {
                _ = try await jobs.history(minutes: minutes)
            } throws: { error in
                guard let error = error as? ConveyorError else { return false }
                return error.code == .invalidArgument && error.message.contains("minutes must be from 1 to 1440")
                    && error.message.contains("\(minutes)")
            }
        }
    }

    @Test func aBadQueueNameIsRefused() async throws {
        try await withJobQueue { jobs, _ in
            await #expect(throws: ConveyorError.self) { _ = try await jobs.history(queue: "no spaces") }
        }
    }
}
