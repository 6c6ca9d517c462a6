import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Calls the Lua functions directly, as another language would, with inputs the Swift API never sends.
@Suite("Lua functions called directly")
struct LuaFunctionTests {
    func call(
        _ jobs: JobQueue,
        _ function: String,
        _ arguments: [any RedisArgumentConvertible]
    ) async throws -> RedisReply {
        try await jobs.redis.call(
            function,
            in: ConveyorLibrary.library,
            keys: ["conveyor:{default}"],
            arguments: arguments
        )
    }

    @Test func failWithNaNJitterIsRefusedAndTheJobKeepsItsLease() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let token = try await jobs.take(id).leaseToken
            let before = try await datasetDigest(jobs)
            let reply = try await call(jobs, "conveyor_fail", [id, token, "x", "jitter", "nan"])
            #expect(reply.errorMessage?.hasPrefix("INVALID jitter") == true)
            #expect(try await datasetDigest(jobs) == before)
            #expect(try await jobs.counts()[.processing] == 1)
        }
    }

    @Test func malformedSettingsInMetaFallBackToDefaults() async throws {
        try await withJobQueue { jobs, _ in
            _ = try await jobs.redis.send(
                "HSET",
                "conveyor:{default}:meta",
                "events_max",
                "1.5",
                "keep_completed_count",
                "lots"
            )
            let id = try await jobs.enqueue("t", json: "{}").id
            try await jobs.complete(id, leaseToken: try await jobs.take(id).leaseToken)
            #expect(try await jobs.get(id)?.status == .completed)
            #expect(try await jobs.redis.send("XLEN", "conveyor:{default}:events").int ?? 0 >= 3)
        }
    }

    /// Issue 10, item 30: a call without a payload was told "options must come in name value pairs".
    @Test func aMissingTypeOrPayloadIsNamed() async throws {
        try await withJobQueue { jobs, _ in
            let noPayload = try await jobs.redis.send("FCALL", "conveyor_enqueue", 1, "conveyor:{default}", "x", "t")
            #expect(noPayload.errorMessage == "INVALID the payload is missing (ARGV[3]: JSON text, e.g. {})")
            let noType = try await jobs.redis.send("FCALL", "conveyor_enqueue", 1, "conveyor:{default}", "x")
            #expect(noType.errorMessage == "INVALID the job type is missing (ARGV[2])")
        }
    }

    /// One bad id is that entry's problem: the other leases of the call are still extended (issue 10, item 3).
    @Test func heartbeatWithABadIDLosesOnlyThatEntry() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let token = try await jobs.take(id).leaseToken
            let reply = try await call(jobs, "conveyor_heartbeat", [60_000, id, token, "bad id", "1", "other/x", "1"])
            #expect(
                reply
                    == .array([
                        .bulkString(Array("ok".utf8)), .bulkString(Array("lost".utf8)), .bulkString(Array("lost".utf8)),
                    ])
            )
        }
    }

    @Test func staleScheduledEntryDoesNotResurrectAJob() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let token = try await jobs.take(id).leaseToken
            let localID = try jobs.split(id).localID
            _ = try await jobs.redis.send("ZADD", "conveyor:{default}:scheduled", 1, localID)
            #expect(try await jobs.claim().jobs.isEmpty)
            #expect(try await jobs.get(id)?.status == .processing)
            #expect(try await jobs.redis.send("ZCARD", "conveyor:{default}:scheduled") == .integer(0))
            try await jobs.complete(id, leaseToken: token)
        }
    }

    @Test func keepingNoCompletedJobsStillLetsTheFinishingCallRepeat() async throws {
        try await withJobQueue { jobs, _ in
            try await jobs.setRetention(status: .completed, maxAge: nil, maxCount: 0)
            let first = try await jobs.enqueue("t", json: "{}").id
            let token = try await jobs.take(first).leaseToken
            try await jobs.complete(first, leaseToken: token)
            try await jobs.complete(first, leaseToken: token)
            let second = try await jobs.enqueue("t", json: "{}").id
            try await jobs.complete(second, leaseToken: try await jobs.take(second).leaseToken)
            try await jobs.applyRetention()
            #expect(try await jobs.get(first) == nil)
            #expect(try await jobs.get(second) == nil)
            #expect(try await jobs.counts()[.completed] == 0)
            let third = try await jobs.enqueue("t", json: "{}").id
            let thirdToken = try await jobs.take(third).leaseToken
            try await jobs.complete(third, leaseToken: thirdToken)
            try await jobs.complete(third, leaseToken: thirdToken)
            #expect(try await jobs.counts()[.completed] == 1)
        }
    }

    @Test func takingAMalformedJobMovesItToFailed() async throws {
        try await withJobQueue { jobs, _ in
            _ = try await jobs.redis.send("HSET", "conveyor:{default}:job:bad", "status", "pending", "payload", "{}")
            _ = try await jobs.redis.send("RPUSH", "conveyor:{default}:pending", "bad")
            let error = await #expect(throws: ConveyorError.self) { try await jobs.take("default/bad") }
            #expect(error?.code == .invalidState && error?.message.contains("moved to failed") == true)
            #expect(try await rawJob(jobs, "default/bad")["status"] == "failed")
            #expect(try await jobs.counts()[.pending] == 0)
        }
    }

    @Test func enqueueManyRefusesAFractionalOptionCount() async throws {
        try await withJobQueue { jobs, _ in
            let before = try await datasetDigest(jobs)
            let reply = try await call(jobs, "conveyor_enqueue_many", [1, "a", "t", "{}", "0.5"])
            #expect(reply.errorMessage?.contains("option pair count") == true)
            let extra = try await call(jobs, "conveyor_enqueue_many", [1, "a", "t", "{}", 0, "b"])
            #expect(extra.errorMessage?.contains("more arguments") == true)
            #expect(try await datasetDigest(jobs) == before)
        }
    }

    @Test func pendingReadsRunOrderWithOffsetAcrossPriorityBands() async throws {
        try await withJobQueue { jobs, _ in
            var ids: [String] = []
            for priority in [-1, 0, 2, 0, 1, -2] {
                ids.append(try await jobs.enqueue("t", json: "{}", options: JobOptions(priority: priority)).id)
            }
            let runOrder = [ids[2], ids[4], ids[1], ids[3], ids[0], ids[5]]
            #expect(try await jobs.list(status: .pending).map(\.id) == runOrder)
            for offset in 0..<6 {
                #expect(
                    try await jobs.list(status: .pending, offset: offset, limit: 2).map(\.id)
                        == Array(runOrder.dropFirst(offset).prefix(2))
                )
            }
            #expect(
                try await jobs.list(status: .pending, limit: 3, order: .newestFirst).map(\.id)
                    == runOrder.reversed().prefix(3).map { $0 }
            )
        }
    }
}
