import ArgumentParser
import Conveyor
import Foundation
import RedisClient

/// `conveyor-bench enqueue`: the job store's speed and memory, against one server.
struct EnqueueBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Enqueue latency and throughput, bulk enqueue, get and pending with many jobs stored, memory per job."
    )

    @OptionGroup var server: ServerOptions

    @Option(help: "Sequential single enqueues to time.")
    var singles = 20_000

    @Option(help: "Jobs stored before timing get(id) and pending(type:limit:).")
    var stored = 1_000_000

    @Option(help: "Completed jobs used to measure memory per job.")
    var completed = 50_000

    @Option(help: "Timed calls of get(id) and of pending(type:limit: 100).")
    var lookups = 5_000

    func run() async throws {
        try await server.withServer { url in
            let redis = RedisClient(configuration: .init(url: url))
            defer { redis.shutdown() }
            let namespace = "bench-\(Int(Date().timeIntervalSince1970))"
            let jobs = JobQueue(redis: redis, configuration: .init(namespace: namespace, installsLibrary: true))
            let clock = ContinuousClock()
            // No spaces: redis-benchmark would split the payload at them.
            let payload = #"{"to":"someone@example.com","subject":"Your-report-is-ready","report_id":123456}"#

            // Single enqueues, one after another, through the pool.
            try await jobs.enqueue("warmup", json: payload, options: JobOptions(queue: "singles"))
            var latencies: [Duration] = []
            latencies.reserveCapacity(singles)
            var started = clock.now
            for _ in 0..<singles {
                let one = clock.now
                try await jobs.enqueue("send_email", json: payload, options: JobOptions(queue: "singles"))
                latencies.append(clock.now - one)
            }
            let sequentialRate = Double(singles) / (clock.now - started).seconds

            // The same on one pinned connection.
            var pinnedLatencies: [Duration] = []
            pinnedLatencies.reserveCapacity(singles)
            started = clock.now
            try await redis.withPinnedConnection {
                for _ in 0..<singles {
                    let one = clock.now
                    try await jobs.enqueue("send_email", json: payload, options: JobOptions(queue: "singles"))
                    pinnedLatencies.append(clock.now - one)
                }
            }
            let pinnedRate = Double(singles) / (clock.now - started).seconds

            // The same function called by redis-benchmark (C, one connection), for comparison on this machine.
            let referenceRate = try runRedisBenchmark(
                url,
                [
                    "-n", String(singles), "-c", "1", "-r", "1000000000", "FCALL", "conveyor_enqueue", "1",
                    "\(namespace):{reference}", "__rand_int__", "send_email", payload,
                ],
                test: nil
            )

            // Bulk: enqueueMany in calls of 1000 jobs, up to `stored` jobs in one queue.
            let types = ["send_email", "resize_image", "generate_report", "sync_account"]
            let batch = (0..<10_000).map {
                NewJob(types[$0 % types.count], json: payload, options: JobOptions(queue: "stored"))
            }
            started = clock.now
            var bulkIDs: [String] = []
            try await redis.withPinnedConnection {
                for _ in 0..<(stored / batch.count) {
                    let results = try await jobs.enqueueMany(batch)
                    if bulkIDs.count < 100_000 { bulkIDs += results.map(\.id) }
                }
            }
            let bulkRate = Double(stored / batch.count * batch.count) / (clock.now - started).seconds

            // get(id) and pending(type:limit: 100) with `stored` jobs stored.
            var gets: [Duration] = []
            var pendings: [Duration] = []
            for index in 0..<lookups {
                let id = bulkIDs[(index &* 7919) % bulkIDs.count]
                var one = clock.now
                guard try await jobs.get(id) != nil else { throw ValidationError("job \(id) is missing") }
                gets.append(clock.now - one)
                one = clock.now
                let page = try await jobs.pending(type: types[index % types.count], queue: "stored", limit: 100)
                pendings.append(clock.now - one)
                guard page.count == 100 else { throw ValidationError("pending returned \(page.count) jobs") }
            }

            // Memory per completed job: enqueue, claim and complete jobs in a queue of their own.
            try await jobs.setRetention(queue: "memory", status: .completed, maxAge: nil, maxCount: nil)
            let before = try await usedMemory(redis)
            let memoryBatch = (0..<1000).map { _ in
                NewJob("send_email", json: payload, options: JobOptions(queue: "memory"))
            }
            try await redis.withPinnedConnection {
                for _ in 0..<(completed / 1000) {
                    _ = try await jobs.enqueueMany(memoryBatch)
                    for claimed in try await jobs.claim(queue: "memory", count: 1000).jobs {
                        try await jobs.complete(
                            claimed.job.id,
                            leaseToken: claimed.leaseToken,
                            result: #"{"sent":true}"#
                        )
                    }
                }
            }
            let memoryCounts = try await jobs.counts(queue: "memory")
            let after = try await usedMemory(redis)
            let perJob = Double(after - before) / Double(max(1, memoryCounts[.completed] ?? 0))

            // Leave a server given with --redis as it was.
            if server.redis != nil { try await deleteNamespace(redis, namespace) }

            let figures: [(String, String, Double)] = [
                ("enqueue p50 (pool)", "ms", percentile(latencies, 0.5)),
                ("enqueue p99 (pool)", "ms", percentile(latencies, 0.99)),
                ("sequential enqueues/s (pool)", "/s", sequentialRate),
                ("enqueue p50 (pinned connection)", "ms", percentile(pinnedLatencies, 0.5)),
                ("enqueue p99 (pinned connection)", "ms", percentile(pinnedLatencies, 0.99)),
                ("sequential enqueues/s (pinned connection)", "/s", pinnedRate),
                ("redis-benchmark FCALL conveyor_enqueue -c 1", "/s", referenceRate),
                ("bulk enqueue jobs/s", "/s", bulkRate),
                ("get(id) p50 with \(stored) stored", "ms", percentile(gets, 0.5)),
                ("get(id) p99 with \(stored) stored", "ms", percentile(gets, 0.99)),
                ("pending(type:limit:100) p50", "ms", percentile(pendings, 0.5)),
                ("pending(type:limit:100) p99", "ms", percentile(pendings, 0.99)),
                ("memory per completed job", "bytes", perJob),
            ]
            for (name, unit, value) in figures {
                let shown = unit == "ms" ? String(format: "%.3f ms", value) : "\(formatRate(value)) \(unit)"
                print(name.padding(toLength: 44, withPad: " ", startingAt: 0) + shown)
            }
            try printJSON([
                "benchmark": "enqueue",
                "enqueue_p50_ms": rounded(percentile(latencies, 0.5)),
                "enqueue_p99_ms": rounded(percentile(latencies, 0.99)),
                "sequential_enqueues_per_second": Int(sequentialRate),
                "pinned_enqueue_p50_ms": rounded(percentile(pinnedLatencies, 0.5)),
                "pinned_enqueue_p99_ms": rounded(percentile(pinnedLatencies, 0.99)),
                "pinned_sequential_enqueues_per_second": Int(pinnedRate),
                "redis_benchmark_enqueue_per_second": Int(referenceRate),
                "bulk_enqueue_jobs_per_second": Int(bulkRate),
                "stored_jobs": stored,
                "get_p50_ms": rounded(percentile(gets, 0.5)),
                "get_p99_ms": rounded(percentile(gets, 0.99)),
                "pending_type_limit_100_p50_ms": rounded(percentile(pendings, 0.5)),
                "pending_type_limit_100_p99_ms": rounded(percentile(pendings, 0.99)),
                "memory_bytes_per_completed_job": Int(perJob),
            ])
        }
    }

    private func usedMemory(_ redis: RedisClient) async throws -> Int {
        let info = try await redis.send("INFO", "memory").string ?? ""
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("used_memory:") {
            return Int(line.dropFirst("used_memory:".count)) ?? 0
        }
        return 0
    }

    private func deleteNamespace(_ redis: RedisClient, _ namespace: String) async throws {
        var cursor = "0"
        repeat {
            let reply = try await redis.send("SCAN", cursor, "MATCH", "\(namespace):*", "COUNT", 10_000)
            cursor = reply.array?.first?.string ?? "0"
            let keys = reply.array?.last?.array?.compactMap(\.string) ?? []
            if !keys.isEmpty { _ = try await redis.send(RedisCommand("UNLINK", keys)) }
        } while cursor != "0"
    }
}
