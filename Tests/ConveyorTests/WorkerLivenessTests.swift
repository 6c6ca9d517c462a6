import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// How fast a dead worker or a departed leader stops showing (issue 10, item 18).
@Suite("worker and leader liveness", .timeLimit(.minutes(2)))
struct WorkerLivenessTests {
    @Test func aSIGKILLedWorkerIsGoneWithinSeconds() async throws {
        try await withJobQueue { jobs, server in
            let arguments = ["--redis", "redis://127.0.0.1:\(server.port)", "--exec", "t=true", "--log-level", "error"]
            let survivor = WorkerProcess(arguments)
            let victim = WorkerProcess(arguments)
            try await eventually(timeout: .seconds(30), "both workers to register") {
                try await jobs.workers().count == 2
            }
            let victimPID = try await victim.pid()
            try await victim.signal(SIGKILL)
            _ = try await victim.exit()
            let clock = ContinuousClock()
            let killed = clock.now
            // The record lives three presence intervals (2 s each); it used to live three heartbeats (30 s).
            try await eventually(timeout: .seconds(20), "the killed worker to disappear") {
                try await jobs.workers().map(\.pid) == [Int(try await survivor.pid())]
            }
            print("a SIGKILLed worker disappeared after \(clock.now - killed)")
            let ids = try await jobs.redis.send("SMEMBERS", jobs.keys.workers).array?.compactMap(\.string) ?? []
            #expect(ids.count == 1 && !ids[0].contains(":\(victimPID):"), "\(ids)")
            // The record reads as the job hashes do: snake_case names and whole epoch milliseconds.
            let record = try await jobs.redis.send("GET", jobs.keys.worker(ids[0])).string ?? ""
            #expect(record.contains(#""last_heartbeat":"#) && record.contains(#""in_flight":"#), "\(record)")
            #expect(record.firstMatch(of: #/"started_at":\d+[,}]/#) != nil, "\(record)")
            try await survivor.signal(SIGTERM)
            #expect(try await survivor.exit().status == 0)
        }
    }

    @Test func aLeaderThatStopsLeavesNoNodeInTheLeaderHash() async throws {
        try await withJobQueue { jobs, _ in
            let scheduler = Scheduler(queue: jobs, configuration: .init(lease: .seconds(3), nodeID: "leaving"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await scheduler.run() }
                try await eventually("leadership") { scheduler.isLeader }
                #expect(try await jobs.redis.send("HGET", jobs.keys.leader, "node").string == "leaving")
                scheduler.stop()
                try await group.waitForAll()
            }
            let fields = JobQueue.fields(try await jobs.redis.send("HGETALL", jobs.keys.leader).array ?? [])
            #expect(fields["node"] == nil && fields["token"] == nil, "\(fields)")
            #expect(fields["epoch"] == "1")
            #expect(try await jobs.leader() == nil)
        }
    }
}
