import ConveyorTesting
import Foundation
import RedisClient
import Synchronization
import Testing

@testable import Conveyor

@Suite("Schedules in Redis")
struct ScheduleStoreTests {
    @Test func upsertIsIdempotentAndAChangeIsAnUpdate() async throws {
        try await withJobQueue { jobs, _ in
            let schedule = try Schedule(name: "report", type: "report", queue: "reports", rule: .every(.seconds(60)))
            let first = try await jobs.upsert(schedule)
            #expect(first.outcome == .created && first.nextRunAt != nil)
            // Another node declares the same schedule later: nothing changes, not even the next run.
            let again = try await jobs.upsert(
                try Schedule(name: "report", type: "report", queue: "reports", rule: .every(.seconds(60)))
            )
            #expect(again.outcome == .unchanged && again.nextRunAt == first.nextRunAt)
            var changed = schedule
            changed.rule = .cron(try CronExpression("0 6 * * *"), timeZone: try Schedule.timeZone("Europe/Berlin"))
            #expect(try await jobs.upsert(changed).outcome == .updated)
            let stored = try await jobs.schedules()
            #expect(stored.map(\.schedule.name) == ["report"])
            #expect(stored.first?.schedule.rule == changed.rule)
            #expect(try await jobs.removeSchedule("report", queue: "reports"))
            #expect(try await jobs.schedules().isEmpty)
        }
    }

    @Test func tickFiresEachDueTimeOnceWithDeterministicIDs() async throws {
        try await withJobQueue { jobs, _ in
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 10).rounded(.down))
            let schedule = try Schedule(
                name: "beat",
                type: "beat",
                rule: .every(.seconds(1)),
                start: start,
                misfire: .runEach(max: 100)
            )
            try await jobs.upsert(schedule)
            // The stored next run is computed from now; rewind it to the start to have ten due fire times.
            _ = try await jobs.redis.send(
                "HSET",
                "conveyor:{default}:schedule:beat",
                "next_run_at",
                JobQueue.milliseconds(start)
            )
            _ = try await jobs.redis.send("ZADD", "conveyor:{default}:schedules", JobQueue.milliseconds(start), "beat")
            let now = start.addingTimeInterval(9.5)
            let fired = try await jobs.tickSchedules(now: now)
            #expect(fired == (0..<10).map { "default/beat@\(JobQueue.milliseconds(start) + $0 * 1000)" })
            #expect(try await jobs.tickSchedules(now: now).isEmpty)
            let stored = try #require(try await jobs.schedules().first)
            #expect(stored.nextRunAt == start.addingTimeInterval(10))
            #expect(stored.lastRunAt == start.addingTimeInterval(9))
            #expect(try await jobs.counts()[.pending] == 10)
        }
    }

    @Test func aLateTickFiresASkipScheduleOnceNotOncePerMissedTime() async throws {
        try await withJobQueue { jobs, _ in
            let utc = try Schedule.timeZone("UTC")
            let now = try await jobs.redisTime()
            // The scheduler started 6 s late: the stored next runs are 6 s in the past.
            let sixSecondsAgo = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down) - 6)
            let rules: [(String, Schedule.Rule, Schedule.MisfirePolicy, Int)] = [
                ("interval", .every(.seconds(1)), .skip, 1),
                ("cron", .cron(try CronExpression("* * * * * *"), timeZone: utc), .skip, 1),
                ("interval-once", .every(.seconds(1)), .runOnce, 2),
                ("cron-each", .cron(try CronExpression("* * * * * *"), timeZone: utc), .runEach(max: 100), 7),
            ]
            for (name, rule, misfire, _) in rules {
                try await jobs.upsert(try Schedule(name: name, type: "t", rule: rule, misfire: misfire))
                _ = try await jobs.redis.send(
                    "HSET",
                    "conveyor:{default}:schedule:\(name)",
                    "next_run_at",
                    JobQueue.milliseconds(sixSecondsAgo)
                )
                _ = try await jobs.redis.send(
                    "ZADD",
                    "conveyor:{default}:schedules",
                    JobQueue.milliseconds(sixSecondsAgo),
                    name
                )
            }
            let beforeTick = try await jobs.redisTime()
            let fired = try await jobs.tickSchedules()
            let afterTick = try await jobs.redisTime()
            // Due: every whole second from six seconds before the start to the tick's time (within the two reads).
            func seconds(_ date: Date) -> Int { Int(date.timeIntervalSince1970.rounded(.down)) }
            let dueBefore = seconds(beforeTick) - seconds(sixSecondsAgo) + 1
            let dueAfter = seconds(afterTick) - seconds(sixSecondsAgo) + 1
            for (name, _, misfire, count) in rules {
                let mine = fired.filter { $0.hasPrefix("default/\(name)@") }
                // Seven times or more are due; the policy decides how many run.
                if case .runEach = misfire {
                    #expect((dueBefore...dueAfter).contains(mine.count), "\(name): \(mine)")
                } else {
                    #expect(mine.count == count, "\(name): \(mine)")
                }
                let stored = try #require(try await jobs.storedSchedule("default", name))
                let next = try #require(stored.nextRunAt)
                #expect(next > beforeTick.addingTimeInterval(-1) && next <= afterTick.addingTimeInterval(1), "\(name)")
                // The one that fired is the latest due time at the tick.
                let latest = try #require(mine.last.flatMap { Int($0.split(separator: "@").last ?? "") })
                #expect(latest > JobQueue.milliseconds(beforeTick) - 1_000, "\(name)")
                #expect(latest <= JobQueue.milliseconds(afterTick), "\(name)")
            }
        }
    }

    @Test func concurrentTickersFireEveryTimeExactlyOnce() async throws {
        try await withJobQueue { jobs, server in
            let start = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.up) + 1)
            try await jobs.upsert(try Schedule(name: "tick", type: "t", rule: .every(.seconds(1)), start: start))
            let fired = Ledger()
            // Eight "leaders" tick as fast as they can for about three seconds.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        let other = JobQueue(redis: server.makeClient(maximumConnections: 2))
                        let clock = ContinuousClock()
                        let end = clock.now + .milliseconds(3_500)
                        while clock.now < end {
                            let ids = try await other.tickSchedules()
                            fired.created.withLock { $0 += ids }
                            try await Task.sleep(for: .milliseconds(Int.random(in: 1...20)))
                        }
                    }
                }
                try await group.waitForAll()
            }
            let ids = fired.created.withLock { $0 }
            #expect(ids.count == Set(ids).count, "fired twice: \(ids)")
            #expect(ids.count >= 2)
            let jobsInRedis = try await jobs.list(status: .pending, limit: 100).map(\.id)
            #expect(Set(jobsInRedis) == Set(ids))
            for id in ids {
                let fire = Int(id.split(separator: "@").last ?? "") ?? 0
                #expect((fire - JobQueue.milliseconds(start)) % 1000 == 0, "\(id) is not on the series")
            }
        }
    }

    @Test func aCorruptedScheduleIsSkippedAndOthersKeepFiring() async throws {
        try await withJobQueue { jobs, _ in
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 5).rounded(.down))
            for name in ["good", "bad"] {
                try await jobs.upsert(try Schedule(name: name, type: "t", rule: .every(.seconds(60)), start: start))
                _ = try await jobs.redis.send(
                    "HSET",
                    "conveyor:{default}:schedule:\(name)",
                    "next_run_at",
                    JobQueue.milliseconds(start)
                )
                _ = try await jobs.redis.send(
                    "ZADD",
                    "conveyor:{default}:schedules",
                    JobQueue.milliseconds(start),
                    name
                )
            }
            _ = try await jobs.redis.send("HSET", "conveyor:{default}:schedule:bad", "definition", "{garbage")
            let fired = try await jobs.tickSchedules()
            #expect(fired == ["default/good@\(JobQueue.milliseconds(start))"])
            #expect(try await jobs.schedules().map(\.schedule.name) == ["good"])
        }
    }
}
