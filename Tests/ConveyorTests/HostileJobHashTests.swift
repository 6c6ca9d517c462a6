import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Synchronization
import Testing

@testable import Conveyor

/// Job hashes written by hand (or by a hostile producer) never affect another job, and end in `failed` with an
/// error naming the bad field (issue 10, items 2–5).
@Suite("hand-written job hashes", .timeLimit(.minutes(2)))
struct HostileJobHashTests {
    /// Writes a job hash and its pending entry directly, as a producer with raw access could.
    func plant(_ jobs: JobQueue, queue: String, id: String, fields: [String: String]) async throws {
        var base = [
            "id": "\(queue)/\(id)", "queue": queue, "type": "work", "status": "pending", "payload": "{}",
            "retry_count": "0", "max_retries": "3", "priority": "0", "attempts": "0", "stalls": "0",
        ]
        base.merge(fields) { _, new in new }
        var arguments: [any RedisArgumentConvertible] = [jobs.keys.job(queue, id)]
        for (name, value) in base.sorted(by: { $0.key < $1.key }) {
            arguments.append(name)
            arguments.append(value)
        }
        _ = try await jobs.redis.send(RedisCommand("HSET", arguments))
        _ = try await jobs.redis.send("RPUSH", jobs.keys.pending(queue), id)
    }

    @Test func aForgedIDFieldFailsTheJobAndLeavesTheNamedJobAlone() async throws {
        try await withJobQueue { jobs, _ in
            let victim = try await jobs.enqueue("work", json: #"{"victim":true}"#, options: JobOptions(queue: "b")).id
            let before = try await rawJob(jobs, victim)
            try await plant(jobs, queue: "a", id: "forged", fields: ["id": victim])
            let claimed = try await jobs.claim(queue: "a", count: 10)
            #expect(claimed.jobs.isEmpty, "claimed \(claimed.jobs.map(\.job.id))")
            let forged = try #require(try await jobs.get("a/forged"))
            #expect(forged.id == "a/forged")
            #expect(forged.status == .failed)
            #expect(forged.error?.contains(#"field "id""#) == true, "\(forged.error ?? "")")
            #expect(try await rawJob(jobs, victim) == before)
        }
    }

    @Test func aGarbageStatusEndsInFailedWithAnEvent() async throws {
        try await withJobQueue { jobs, _ in
            try await plant(jobs, queue: "default", id: "odd", fields: ["status": "exploded"])
            let claimed = try await jobs.claim(count: 10)
            #expect(claimed.jobs.isEmpty)
            let job = try await rawJob(jobs, "default/odd")
            #expect(job["status"] == "failed")
            #expect(job["error"]?.contains(#"field "status" is "exploded""#) == true, "\(job["error"] ?? "")")
            #expect(try await jobs.counts()[.failed] == 1)
            let last = try await jobs.redis.send("XREVRANGE", jobs.keys.events("default"), "+", "-", "COUNT", 1)
            let fields = JobQueue.fields(last.array?.first?.array?.last?.array ?? [])
            #expect(fields["id"] == "default/odd" && fields["to"] == "failed", "\(fields)")
        }
    }

    /// One range per integer field, the same in Lua and Swift: a value Lua accepted but Swift could not read once
    /// had a job claimed four times and failed for a false "lease expired".
    @Test(arguments: [
        ("max_retries", "99999999999999999999"), ("max_retries", "10001"), ("priority", "101"),
        ("attempts", "-1"), ("timeout_ms", "99999999999999"), ("stalls", "1e3"),
    ])
    func anIntegerOutOfItsRangeFailsTheJobAtOnce(field: String, value: String) async throws {
        try await withJobQueue { jobs, _ in
            try await plant(jobs, queue: "default", id: "big", fields: [field: value])
            let claimed = try await jobs.claim(count: 10)
            #expect(claimed.jobs.isEmpty)
            let job = try await rawJob(jobs, "default/big")
            #expect(job["status"] == "failed")
            #expect(job["attempts"] == (field == "attempts" ? value : "0"))
            #expect(job["error"]?.contains(#"field "\#(field)" is "\#(value)""#) == true, "\(job["error"] ?? "")")
            // Swift reads the same hash as malformed, naming the field, rather than a different number.
            do {
                _ = try await jobs.get("default/big")
                Issue.record("Swift read a hash whose \(field) is \(value)")
            } catch let error as ConveyorError {
                #expect(error.code == .malformedJob && error.message.contains(field))
            }
        }
    }

    @Test func enqueueRefusesWhatAHashMayNotHold() async throws {
        try await withJobQueue { jobs, _ in
            for options in [JobOptions(priority: 101), JobOptions(maxRetries: 10_001), JobOptions(maxRetries: -1)] {
                try await expectRejected(jobs, .invalidArgument, mentioning: "between") {
                    _ = try await jobs.enqueue("work", json: "{}", options: options)
                }
            }
        }
    }

    @Test func luaAndSwiftShareOneRangePerField() throws {
        let source = ConveyorLibrary.library.source
        for (field, range) in Job.fieldRanges {
            let pattern = try Regex("\(field) = \\{(-?[0-9*]+), ([0-9* ]+)\\}")
            let match = try #require(source.firstMatch(of: pattern), "no range for \(field) in library.lua")
            func evaluate(_ text: Substring) -> Int {
                text.split(separator: "*").map { Int($0.trimmingCharacters(in: .whitespaces)) ?? 0 }.reduce(1, *)
            }
            let lower = evaluate(match.output[1].substring ?? "")
            let upper = evaluate(match.output[2].substring ?? "")
            #expect(lower == range.lowerBound && upper == range.upperBound, "\(field): Lua \(lower)...\(upper)")
        }
    }

    /// Three healthy jobs that outlive several leases run once each, next to a job whose id field is garbage.
    @Test func aBadJobNeverAffectsAnotherJobsLease() async throws {
        try await withJobQueue { jobs, _ in
            let probe = Probe()
            var handlers = JobHandlers()
            handlers.register("work") { (_: [String: Int], context: JobContext) in
                _ = probe.attempt(context.id)
                try await Task.sleep(for: .seconds(6))
                return ["ok": true]
            }
            try await plant(jobs, queue: "default", id: "bad", fields: ["id": "not a valid id!"])
            let ids = try await jobs.enqueueMany((0..<3).map { NewJob("work", json: #"{"n":\#($0)}"#) }).map(\.id)
            let worker = Worker(
                queue: jobs,
                handlers: handlers,
                configuration: testWorkerConfiguration(lease: .seconds(3), heartbeat: .milliseconds(200))
            )
            try await withWorker(worker) {
                for id in ids {
                    let job = try await jobs.result(of: id, timeout: .seconds(60))
                    #expect(job.status == .completed && job.attempts == 1, "\(id): \(job.status) \(job.attempts)")
                }
            }
            #expect(probe.attempts.withLock { $0.values.allSatisfy { $0 == 1 } })
            #expect(try await rawJob(jobs, "default/bad")["status"] == "failed")
        }
    }
}
