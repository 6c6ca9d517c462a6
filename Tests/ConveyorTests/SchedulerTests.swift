import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

@Suite("Scheduler leader election and firing", .timeLimit(.minutes(1)))
struct SchedulerTests {
    @Test func oneLeaderFiresEachTimeOnceAndAFollowerTakesOver() async throws {
        try await withJobQueue { jobs, server in
            let first = Scheduler(
                queue: JobQueue(redis: server.makeClient()),
                configuration: .init(lease: .seconds(3), nodeID: "node-a")
            )
            let second = Scheduler(
                queue: JobQueue(redis: server.makeClient()),
                configuration: .init(lease: .seconds(3), nodeID: "node-b")
            )
            // runEach: every due time fires even when a loaded machine delays a tick (skip would drop it).
            try await jobs.upsert(
                try Schedule(name: "every-second", type: "t", rule: .every(.seconds(1)), misfire: .runEach(max: 100))
            )
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await first.run() }
                try await eventually("node-a to lead") { first.isLeader }
                group.addTask { try await second.run() }
                try await Task.sleep(for: .milliseconds(2_500))
                #expect(!second.isLeader)
                #expect(try await jobs.leader()?.node == "node-a")
                first.stop()
                try await eventually("node-b to take over") { second.isLeader }
                #expect(try await jobs.leader()?.node == "node-b")
                try await Task.sleep(for: .milliseconds(1_500))
                second.stop()
                try await group.waitForAll()
            }
            let fired = try await jobs.list(status: .pending, limit: 1000).map(\.id)
            #expect(fired.count >= 3)
            #expect(Set(fired).count == fired.count)
            let times = fired.compactMap { Int($0.split(separator: "@").last ?? "") }.sorted()
            #expect(zip(times.dropFirst(), times).allSatisfy { $0 - $1 == 1000 }, "\(times)")
            #expect(try await jobs.leader() == nil)
        }
    }

    @Test func aDeadLeaderIsReplacedWhenItsLeaseRunsOut() async throws {
        try await withJobQueue { jobs, _ in
            // A leader that died without releasing: its lease (1.5 s) just runs out.
            let reply = try await jobs.invoke(
                "conveyor_leader_acquire",
                key: jobs.keys.leader,
                ["dead-token", 2_500, "dead-node", "{}"],
                jobID: nil
            )
            #expect(reply.array?.first?.int == 1)
            let epoch = try #require(try await jobs.leader()?.epoch)
            let scheduler = Scheduler(queue: jobs, configuration: .init(lease: .seconds(3), nodeID: "survivor"))
            let clock = ContinuousClock()
            let started = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await scheduler.run() }
                try await eventually("the survivor to lead") { scheduler.isLeader }
                let took = clock.now - started
                #expect(took < .seconds(8), "took over after \(took)")
                #expect(try await jobs.leader()?.epoch == epoch + 1)
                scheduler.stop()
                try await group.waitForAll()
            }
        }
    }

    @Test(arguments: [30.0, -30.0])
    func aLeaderWithASkewedClockFiresEveryTimeOnTimeOnce(skew: Double) async throws {
        try await withJobQueue { jobs, _ in
            var configuration = Scheduler.Configuration(lease: .seconds(3), nodeID: "skewed")
            configuration.clock = { Date().addingTimeInterval(skew) }
            let scheduler = Scheduler(queue: jobs, configuration: configuration)
            let utc = try Schedule.timeZone("UTC")
            // runEach, so a tick a loaded machine delays still fires every time; early is what the skew would cause.
            try await jobs.upsert(
                try Schedule(name: "interval", type: "t", rule: .every(.seconds(1)), misfire: .runEach(max: 100))
            )
            try await jobs.upsert(
                try Schedule(
                    name: "cron",
                    type: "t",
                    rule: .cron(try CronExpression("* * * * * *"), timeZone: utc),
                    misfire: .runEach(max: 100)
                )
            )
            let began = try await jobs.redisTime()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await scheduler.run() }
                try await Task.sleep(for: .milliseconds(3_500))
                scheduler.stop()
                try await group.waitForAll()
            }
            let ended = try await jobs.redisTime()
            let fired = try await jobs.list(status: .pending, limit: 1000)
            for name in ["interval", "cron"] {
                let mine = fired.filter { $0.id.hasPrefix("default/\(name)@") }
                let times = mine.compactMap { Int($0.id.split(separator: "@").last ?? "") }.sorted()
                // Every whole second between the start and the end fired, once, and none of them early.
                let expected = Array(
                    stride(
                        from: (JobQueue.milliseconds(began) / 1000 + 1) * 1000,
                        through: JobQueue.milliseconds(ended) / 1000 * 1000 - 1000,
                        by: 1000
                    )
                )
                #expect(expected.allSatisfy(times.contains), "\(name): \(times) should hold \(expected)")
                #expect(Set(times).count == times.count, "\(name) fired a time twice: \(times)")
                for job in mine {
                    let fire = try #require(Int(job.id.split(separator: "@").last ?? ""))
                    let created = try #require(job.createdAt.map { JobQueue.milliseconds($0) })
                    #expect(created >= fire, "\(job.id) was created \(fire - created) ms early")
                    // Not 30 s late either (slack for a slow, shared machine).
                    #expect(created - fire < 10_000, "\(job.id) was created \(created - fire) ms late")
                }
            }
        }
    }

    @Test func aNewScheduleWakesTheLeaderAtOnce() async throws {
        try await withJobQueue { jobs, _ in
            let scheduler = Scheduler(queue: jobs, configuration: .init(lease: .seconds(30)))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await scheduler.run() }
                try await eventually("leadership") { scheduler.isLeader }
                // The leader now sleeps up to 10 s (a third of its lease); a new schedule must not wait for that.
                try await Task.sleep(for: .milliseconds(200))
                let now = Date()
                try await jobs.upsert(
                    try Schedule(name: "soon", type: "t", rule: .every(.seconds(1)), start: now.addingTimeInterval(0.3))
                )
                try await eventually(timeout: .seconds(3), "the first fire") {
                    try await jobs.counts()[.pending] ?? 0 >= 1
                }
                scheduler.stop()
                try await group.waitForAll()
            }
        }
    }
}
