import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

@Suite("JobQueue bad input: a clear error, and nothing stored changes")
struct JobQueueBadInputTests {
    @Test func badEnqueueArguments() async throws {
        try await withJobQueue { jobs, _ in
            // Something stored already, which must survive every rejected call unchanged.
            try await jobs.enqueue("existing", json: #"{"keep":true}"#, options: JobOptions(id: "keep-me"))
            try await expectRejected(jobs, .invalidArgument, mentioning: "not valid JSON") {
                try await jobs.enqueue("t", json: "{not json")
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "job type \"\" must be 1-128") {
                try await jobs.enqueue("", json: "{}")
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "must be 1-128") {
                try await jobs.enqueue(String(repeating: "t", count: 129), json: "{}")
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "must be 1-128") {
                try await jobs.enqueue("send email", json: "{}")
            }
            for queue in ["", String(repeating: "q", count: 65), "a{b}", "a:b", "a b", "a/b"] {
                try await expectRejected(jobs, .invalidArgument, mentioning: "queue name") {
                    try await jobs.enqueue("t", json: "{}", options: JobOptions(queue: queue))
                }
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "delay_ms must be between 0") {
                try await jobs.enqueue("t", json: "{}", options: JobOptions(delay: .seconds(-5)))
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "priority must be between -100 and 100") {
                try await jobs.enqueue("t", json: "{}", options: JobOptions(priority: 101))
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "max_retries must be between 0") {
                try await jobs.enqueue("t", json: "{}", options: JobOptions(maxRetries: -1))
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "run_at must be between") {
                try await jobs.enqueue(
                    "t",
                    json: "{}",
                    options: JobOptions(runAt: Date(timeIntervalSince1970: 4_102_444_800))
                )
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "runAt or delay") {
                try await jobs.enqueue("t", json: "{}", options: JobOptions(runAt: Date(), delay: .seconds(1)))
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "timeout must be positive") {
                try await jobs.enqueue("t", json: "{}", options: JobOptions(timeout: .zero))
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "job id \"a b\" must be") {
                try await jobs.enqueue("t", json: "{}", options: JobOptions(id: "a b"))
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "belongs to queue \"other\"") {
                try await jobs.enqueue("t", json: "{}", options: JobOptions(id: "other/x"))
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "reference_type") {
                try await jobs.enqueue(
                    "t",
                    json: "{}",
                    options: JobOptions(reference: JobReference(type: "a:b", id: "1"))
                )
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "reference_id") {
                try await jobs.enqueue("t", json: "{}", options: JobOptions(reference: JobReference(type: "a", id: "")))
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "unique_key") {
                try await jobs.enqueue("t", json: "{}", options: JobOptions(uniqueKey: "line\nbreak"))
            }
            #expect(try await jobs.get("default/keep-me")?.payload == #"{"keep":true}"#)
        }
    }

    @Test func runAtFarInThePastRunsNow() async throws {
        try await withJobQueue { jobs, _ in
            let job = try await jobs.enqueue(
                "t",
                json: "{}",
                options: JobOptions(runAt: Date(timeIntervalSince1970: 0))
            )
            #expect(job.status == .pending)
        }
    }

    @Test func payloadOverTheLimitIsRefusedBySwiftAndByLua() async throws {
        var configuration = JobQueue.Configuration()
        configuration.maximumPayloadBytes = 1_000
        try await withJobQueue(configuration) { jobs, _ in
            let big = "\"" + String(repeating: "x", count: 2_000) + "\""
            try await expectRejected(jobs, .invalidArgument, mentioning: "over the limit of 1000 bytes") {
                try await jobs.enqueue("t", json: big)
            }
            // The default limit of 1 MiB, checked in Lua for any client.
            let huge = "\"" + String(repeating: "x", count: 1_048_577) + "\""
            let reply = try await jobs.redis.call(
                "conveyor_enqueue",
                in: ConveyorLibrary.library,
                keys: ["conveyor:{default}"],
                arguments: ["big", "t", huge]
            )
            #expect(reply.errorMessage?.contains("over the limit of 1048576 bytes") == true)
            #expect(try await jobs.counts()[.pending] == 0)
        }
    }

    @Test func unknownJobIDForEveryOperation() async throws {
        try await withJobQueue { jobs, _ in
            try await jobs.enqueue("t", json: "{}")
            let missing = "default/nope"
            #expect(try await jobs.get(missing) == nil)
            try await expectRejected(jobs, .jobNotFound, mentioning: "no job \"default/nope\"") {
                try await jobs.complete(missing, leaseToken: "1")
            }
            try await expectRejected(jobs, .jobNotFound, mentioning: "no job") {
                try await jobs.fail(missing, leaseToken: "1", error: "x")
            }
            try await expectRejected(jobs, .jobNotFound, mentioning: "no job") { _ = try await jobs.take(missing) }
            try await expectRejected(jobs, .jobNotFound, mentioning: "no job") { try await jobs.cancel(missing) }
            try await expectRejected(jobs, .jobNotFound, mentioning: "no job") { try await jobs.retry(missing) }
            try await expectRejected(jobs, .jobNotFound, mentioning: "no job") { try await jobs.remove(missing) }
            try await expectRejected(jobs, .jobNotFound, mentioning: "no job") {
                _ = try await jobs.markProcessing(missing)
            }
            try await expectRejected(jobs, .jobNotFound, mentioning: "no job") {
                _ = try await jobs.result(of: missing, timeout: .milliseconds(10))
            }
            #expect(try await jobs.heartbeat(queue: "default", leases: [(missing, "1")]) == [.lost])
            try await expectRejected(jobs, .invalidArgument, mentioning: "has no queue") {
                _ = try await jobs.get("nope")
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "queue name") {
                _ = try await jobs.get("a{b/c")
            }
        }
    }

    @Test func badResultAndBadCleanupArguments() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let token = try await jobs.take(id).leaseToken
            try await expectRejected(jobs, .invalidArgument, mentioning: "result is not valid JSON") {
                try await jobs.complete(id, leaseToken: token, result: "nope")
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "completed, failed or cancelled") {
                try await jobs.cleanup(status: .pending, olderThan: .zero)
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "must not be negative") {
                try await jobs.cleanup(olderThan: .seconds(-1))
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "must not be negative") {
                try await jobs.setRetention(status: .completed, maxAge: nil, maxCount: -3)
            }
        }
    }

    @Test func malformedHashFromAnotherClientIsFailedByClaimWithoutBreakingOthers() async throws {
        try await withJobQueue { jobs, _ in
            let good = try await jobs.enqueue("t", json: "{}").id
            let redis = jobs.redis
            _ = try await jobs.redis.pipeline([
                RedisCommand(
                    "HSET",
                    "conveyor:{default}:job:garbage",
                    "status",
                    "pending",
                    "type",
                    "t",
                    "payload",
                    "{oops"
                ),
                RedisCommand("RPUSH", "conveyor:{default}:pending", "garbage"),
                RedisCommand("HSET", "conveyor:{default}:job:notype", "status", "pending", "payload", "{}"),
                RedisCommand("RPUSH", "conveyor:{default}:pending", "notype"),
                RedisCommand(
                    "HSET",
                    "conveyor:{default}:job:badnum",
                    "status",
                    "pending",
                    "type",
                    "t",
                    "payload",
                    "{}",
                    "attempts",
                    "many"
                ),
                RedisCommand("RPUSH", "conveyor:{default}:pending", "badnum"),
                RedisCommand("RPUSH", "conveyor:{default}:pending", "vanished"),
            ])
            let after = try await jobs.enqueue("t", json: "{}").id
            let claimed = try await jobs.claim(count: 10).jobs.map(\.job.id)
            #expect(claimed == [good, after])
            #expect(
                try await jobs.get("default/garbage")?.error?.contains("field \"payload\" is not valid JSON") == true
            )
            #expect(try await rawJob(jobs, "default/notype")["error"]?.contains("field \"type\" is missing") == true)
            #expect(
                try await rawJob(jobs, "default/badnum")["error"]?.contains("field \"attempts\" is \"many\"") == true
            )
            #expect(try await jobs.counts()[.failed] == 3)
            #expect(try await redis.send("LLEN", "conveyor:{default}:pending") == .integer(0))
            // Reading a hash with garbage gives a clear error, not a crash.
            let error = await #expect(throws: ConveyorError.self) { try await jobs.get("default/notype") }
            #expect(error?.code == .malformedJob && error?.message.contains("'type'") == true)
        }
    }
}
