import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Synchronization
import Testing

@testable import Conveyor

/// Redis configured to evict, and Redis at its memory limit (issue 10, item 7).
@Suite("Redis memory policy and limit", .timeLimit(.minutes(2)))
struct MemoryLimitTests {
    @Test func everyCommandWarnsOnceAndTheWorkerRefusesAnEvictingRedis() async throws {
        try await withJobQueue { jobs, server in
            _ = try await jobs.redis.send("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
            let url = "redis://127.0.0.1:\(server.port)"
            for arguments in [["enqueue", "t", "--payload", "{}"], ["stats"], ["list", "--json"], ["workers"]] {
                let result = try await ConveyorExecutable.run(arguments + ["--redis", url])
                #expect(result.status == 0, "\(arguments): \(result.standardError)")
                let warnings = result.standardError.components(separatedBy: "maxmemory-policy allkeys-lru").count - 1
                #expect(warnings == 1, "\(arguments): \(result.standardError)")
                #expect(!result.standardOutput.contains("maxmemory"), "\(arguments): \(result.standardOutput)")
            }
            let refused = try await ConveyorExecutable.run(["worker", "--redis", url, "--exec", "t=true"])
            #expect(refused.status == 1)
            #expect(refused.standardError.contains("--allow-eviction"), "\(refused.standardError)")
            let worker = WorkerProcess(["--redis", url, "--exec", "t=true", "--allow-eviction", "--log-level", "error"])
            try await eventually(timeout: .seconds(30), "the job to run") { try await jobs.counts()[.completed] == 1 }
            try await worker.signal(SIGTERM)
            #expect(try await worker.exit().status == 0)
        }
    }

    /// Near the limit, claims succeed while completions (with their results) are refused: the worker stops
    /// claiming, keeps its leases, and records every outcome once memory is freed; no job runs twice.
    @Test func aWorkerWhoseCompletionsHitTheLimitStopsClaimingAndRecordsThemLater() async throws {
        try await withJobQueue { jobs, _ in
            let ids = try await jobs.enqueueMany((0..<40).map { NewJob("big", json: #"{"n":\#($0)}"#) }).map(\.id)
            let info = try await jobs.redis.send("INFO", "memory").string ?? ""
            let used =
                info.split(separator: "\r\n").first { $0.hasPrefix("used_memory:") }
                .flatMap { Int($0.dropFirst("used_memory:".count)) } ?? 0
            _ = try await jobs.redis.send("CONFIG", "SET", "maxmemory", used + 2_000_000)
            let probe = Probe()
            var handlers = JobHandlers()
            let result = String(repeating: "x", count: 400_000)
            handlers.register("big") { (_: [String: Int], context: JobContext) -> [String: String] in
                _ = probe.attempt(context.id)
                return ["blob": result]
            }
            let worker = Worker(
                queue: jobs,
                handlers: handlers,
                configuration: testWorkerConfiguration(
                    concurrency: 2,
                    lease: .seconds(2),
                    heartbeat: .milliseconds(200)
                )
            )
            try await withWorker(worker) {
                try await eventually(timeout: .seconds(30), "Redis to refuse a completion") {
                    worker.state.withLock { $0.outOfMemorySince != nil }
                }
                // Held back: what this worker claimed stays at about its concurrency (plus a batch for idle slots).
                try await Task.sleep(for: .seconds(3))
                let counts = try await jobs.counts()
                #expect(counts[.processing, default: 0] <= 4, "\(counts)")
                #expect(counts[.pending, default: 0] >= 40 - 4 - counts[.completed, default: 0], "\(counts)")
                _ = try await jobs.redis.send("CONFIG", "SET", "maxmemory", 0)
                for id in ids {
                    let job = try await jobs.result(of: id, timeout: .seconds(60))
                    #expect(
                        job.status == .completed && job.attempts == 1,
                        "\(id): \(job.status), \(job.attempts), \(job.error ?? "")"
                    )
                }
            }
            #expect(probe.attempts.withLock { $0.values.allSatisfy { $0 == 1 } })
        }
    }
}
