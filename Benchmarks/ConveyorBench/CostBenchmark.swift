import ArgumentParser
import Conveyor
import Foundation
import RedisClient

/// `conveyor-bench cost`: what each job costs the Redis server — its own CPU time, the commands it runs (with those
/// run inside functions), the function calls — beside jobs/s, for enqueue, bulk enqueue, a drain and a steady rate.
struct CostBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cost",
        abstract: "Redis CPU, commands and function calls per job (from the server's INFO), beside jobs/s.",
        discussion: """
            Modes: enqueue (sequential single enqueues), bulk (enqueueMany, 1000 per call), drain (bulk fill, then \
            `serve` processes drain it), steady (--rate jobs/s for --seconds after a 1 s warm-up, one worker at \
            concurrency 10), memory (used_memory per pending job), completion-retention (Redis CPU per completion \
            with 10 and with 10 000 completed jobs kept, alternating), all (enqueue, bulk, drain, steady, memory). \
            Each mode prints its figures and one JSON line.
            """
    )

    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case enqueue, bulk, drain, steady, memory
        case completionRetention = "completion-retention"
        case all
    }

    @OptionGroup var server: ServerOptions

    @Option(help: "enqueue | bulk | drain | steady | memory | completion-retention | all")
    var mode: Mode = .all

    @Option(
        help: """
            Jobs per mode (defaults: enqueue 20000, bulk 100000, drain 50000, memory 100000, \
            completion-retention 20000 drained after the prefill).
            """
    )
    var jobs: Int?

    @Option(help: "Worker concurrency per process (defaults: drain and completion-retention 50, steady 10).")
    var concurrency: Int?

    @Option(help: "Worker processes for drain and completion-retention.")
    var processes = 1

    @Option(help: "Enqueues per second in steady mode.")
    var rate = 500

    @Option(help: "Length of the measured steady window, in seconds (after a 1 s warm-up).")
    var seconds = 10

    @Option(help: "Completed jobs kept (retention max count); without it every completed job is kept.")
    var keep: Int?

    @Option(help: "Alternating pairs of runs in completion-retention mode.")
    var pairs = 3

    @Flag(
        help: """
            Count client commands with a redis-cli MONITOR (Redis counts commands run inside functions in \
            total_commands_processed and commandstats too). MONITOR costs Redis CPU: CPU figures are then too high.
            """
    )
    var monitor = false

    func run() async throws {
        let modes: [Mode] = mode == .all ? [.enqueue, .bulk, .drain, .steady, .memory] : [mode]
        try await server.withServer { url in
            for mode in modes {
                switch mode {
                case .enqueue: try await runEnqueue(url)
                case .bulk: try await runBulk(url)
                case .drain: try await runDrain(url)
                case .steady: try await runSteady(url)
                case .memory: try await runMemory(url)
                case .completionRetention: try await runCompletionRetention(url)
                case .all: break
                }
            }
        }
    }

    // MARK: - Modes

    private func runEnqueue(_ url: RedisURL) async throws {
        let total = jobs ?? 20_000
        try await withCostQueue(url, "enqueue", keep: keep) { _, queue, cost in
            try await queue.enqueue("warmup", json: "{}", options: JobOptions(queue: "warmup"))
            let start = try await cost.snapshot()
            for _ in 0..<total { try await queue.enqueue("noop", json: "{}") }
            let end = try await cost.snapshot()
            let perJob = cost.delta(start, end).perJob(total)
            print("sequential single enqueues (JobQueue.enqueue through the pool, payload {})")
            for line in perJob.lines("enqueue") { print(line) }
            try printJSON(["benchmark": "cost", "mode": "enqueue"].merging(perJob.json()) { $1 })
        }
    }

    private func runBulk(_ url: RedisURL) async throws {
        let requested = jobs ?? 100_000
        try await withCostQueue(url, "bulk", keep: keep) { redis, queue, cost in
            let start = try await cost.snapshot()
            let total = try await fill(redis, queue, requested)
            let end = try await cost.snapshot()
            let perJob = cost.delta(start, end).perJob(total)
            print("bulk enqueue (enqueueMany, 1000 jobs per call, one pinned connection, payload {})")
            for line in perJob.lines("bulk") { print(line) }
            try printJSON(["benchmark": "cost", "mode": "bulk"].merging(perJob.json()) { $1 })
        }
    }

    private func runDrain(_ url: RedisURL) async throws {
        let requested = jobs ?? 50_000
        let concurrency = concurrency ?? 50
        try await withCostQueue(url, "drain", keep: keep) { redis, queue, cost in
            let namespace = queue.configuration.namespace
            let beforeFill = try await cost.snapshot()
            let total = try await fill(redis, queue, requested)
            let filled = try await cost.snapshot()
            let workers = ServeProcesses(url: url, namespace: namespace, processes: processes, concurrency: concurrency)
            let drained: RedisSnapshot
            let workerSeconds: Double
            let memory: [Int]
            do {
                try await cost.waitForCompleted(namespace: namespace, total)
                drained = try await cost.snapshot()
                workerSeconds = workers.cpuSeconds()
                memory = workers.peakMemory()
                workers.stop()
            } catch {
                workers.stop()
                throw error
            }
            let fillCost = cost.delta(beforeFill, filled).perJob(total)
            let drainCost = cost.delta(filled, drained).perJob(total)
            let both = cost.delta(beforeFill, drained).perJob(total)
            let workerPer10k = workerSeconds / Double(total) * 10_000
            print(
                "fill with enqueueMany (1000 per call), then drain with \(processes) serve process(es) at concurrency "
                    + "\(concurrency); drain timed from worker start until all \(total) completed"
            )
            for line in fillCost.lines("fill") { print(line) }
            for line in drainCost.lines("drain") { print(line) }
            print(
                String(
                    format: "fill+drain: Redis CPU %.1f µs/job, commands %.2f/job, FCALL %.2f/job",
                    both.redisCPUMicroseconds,
                    both.commands,
                    both.fcalls
                )
            )
            print(String(format: "worker CPU %.2f s per 10k jobs", workerPer10k))
            var figures: [String: any Sendable] = [
                "benchmark": "cost", "mode": "drain", "concurrency": concurrency, "processes": processes,
                "keep": keep.map { $0 as any Sendable } ?? NSNull(),
                "fill_drain_redis_cpu_us_per_job": rounded(both.redisCPUMicroseconds),
                "fill_drain_commands_per_job": rounded(both.commands),
                "fill_drain_fcalls_per_job": rounded(both.fcalls),
                "worker_cpu_s_per_10k_jobs": rounded(workerPer10k),
                "peak_worker_memory_bytes": memory.max() ?? 0,
            ]
            figures.merge(fillCost.json("fill_")) { $1 }
            figures.merge(drainCost.json()) { $1 }
            try printJSON(figures)
        }
    }

    private func runSteady(_ url: RedisURL) async throws {
        let concurrency = concurrency ?? 10
        try await withCostQueue(url, "steady", keep: keep) { _, queue, cost in
            let namespace = queue.configuration.namespace
            let workers = ServeProcesses(url: url, namespace: namespace, processes: 1, concurrency: concurrency)
            defer { workers.stop() }
            // Worker start-up, as in `latency`.
            try await Task.sleep(for: .seconds(1))
            let clock = ContinuousClock()
            let interval = Duration.seconds(1) / rate
            let warmup = rate
            let window = rate * seconds
            var sent: [(id: String, at: Int64)] = []
            sent.reserveCapacity(warmup + window)
            var start: RedisSnapshot?
            var workerStart = 0.0
            var next = clock.now
            for index in 0..<(warmup + window) {
                if index == warmup {
                    start = try await cost.snapshot()
                    workerStart = workers.cpuSeconds()
                }
                try await Task.sleep(until: next)
                let at = wallNanoseconds()
                sent.append((try await queue.enqueue("noop", json: "{}").id, at))
                next += interval
            }
            // The window ends one interval after its last enqueue: it holds `window` slots, gaps included.
            try await Task.sleep(until: next)
            let end = try await cost.snapshot()
            let workerEnd = workers.cpuSeconds()
            try await cost.waitForCompleted(namespace: namespace, sent.count)
            var latencies: [Duration] = []
            for (id, at) in sent.dropFirst(warmup) {
                guard let started = try await queue.get(id)?.result.flatMap({ Int64($0) }) else { continue }
                latencies.append(.nanoseconds(started - at))
            }
            guard let start else { throw RedisCostError("no steady window") }
            let perJob = cost.delta(start, end).perJob(window)
            let workerPer10k = (workerEnd - workerStart) / Double(window) * 10_000
            let p50 = percentile(latencies, 0.5)
            let p99 = percentile(latencies, 0.99)
            print(
                "steady: \(rate) enqueues/s for \(seconds) s after a 1 s warm-up, one serve process at concurrency "
                    + "\(concurrency); the window includes the idle time between jobs"
            )
            for line in perJob.lines("steady") { print(line) }
            print(String(format: "steady: worker CPU %.2f s per 10k jobs", workerPer10k))
            print(String(format: "steady: enqueue→start p50 %.3f ms, p99 %.3f ms (%d jobs)", p50, p99, latencies.count))
            var figures: [String: any Sendable] = [
                "benchmark": "cost", "mode": "steady", "rate": rate, "seconds": seconds, "concurrency": concurrency,
                "worker_cpu_s_per_10k_jobs": rounded(workerPer10k),
                "p50_ms": rounded(p50), "p99_ms": rounded(p99),
            ]
            figures.merge(perJob.json()) { $1 }
            try printJSON(figures)
        }
    }

    private func runMemory(_ url: RedisURL) async throws {
        let requested = jobs ?? 100_000
        try await withCostQueue(url, "memory", keep: keep) { redis, queue, cost in
            let start = try await cost.snapshot()
            let total = try await fill(redis, queue, requested)
            let end = try await cost.snapshot()
            let delta = cost.delta(start, end)
            let perJob = delta.perJob(total)
            let bytes = Double(delta.memoryBytes) / Double(max(1, total))
            print("memory: \(total) pending jobs (enqueueMany, default options, payload {}) in a fresh namespace")
            print("memory: \(Int(bytes.rounded())) bytes per pending job (used_memory after − before, / jobs)")
            for line in perJob.lines("memory fill") { print(line) }
            var figures: [String: any Sendable] = [
                "benchmark": "cost", "mode": "memory", "memory_bytes_per_pending_job": Int(bytes.rounded()),
            ]
            figures.merge(perJob.json()) { $1 }
            try printJSON(figures)
        }
    }

    private func runCompletionRetention(_ url: RedisURL) async throws {
        let requested = jobs ?? 20_000
        let concurrency = concurrency ?? 50
        let kept = [10, 10_000]
        var results: [Int: [RedisCostPerJob]] = [:]
        print(
            "completion cost with 10 and with 10 000 completed jobs kept: prefill the completed set, then drain "
                + "\(requested) more with \(processes) serve process(es) at concurrency \(concurrency); \(pairs) pairs"
        )
        for pair in 1...max(1, pairs) {
            for keep in kept {
                let perJob = try await completionRun(url, keep: keep, jobs: requested, concurrency: concurrency)
                results[keep, default: []].append(perJob)
                print(
                    String(
                        format: "pair %d, keep %5d: %.1f µs Redis CPU per completion, %.2f commands per job",
                        pair,
                        keep,
                        perJob.redisCPUMicroseconds,
                        perJob.commands
                    ) + ", \(formatRate(perJob.jobsPerSecond)) jobs/s"
                )
            }
        }
        var figures: [String: any Sendable] = [
            "benchmark": "cost", "mode": "completion-retention", "jobs": requested, "pairs": pairs,
            "concurrency": concurrency, "processes": processes,
        ]
        for keep in kept {
            let runs = results[keep] ?? []
            let cpu = median(runs.map(\.redisCPUMicroseconds))
            let commands = median(runs.map(\.commands))
            let rate = median(runs.map(\.jobsPerSecond))
            print(
                "keep \(keep): median \(String(format: "%.1f", cpu)) µs Redis CPU per completion, "
                    + "\(String(format: "%.2f", commands)) commands per job, \(formatRate(rate)) jobs/s"
            )
            figures["keep_\(keep)_redis_cpu_us_per_job"] = rounded(cpu)
            figures["keep_\(keep)_redis_cpu_us_per_job_runs"] = runs.map { rounded($0.redisCPUMicroseconds) }
            figures["keep_\(keep)_commands_per_job"] = rounded(commands)
            figures["keep_\(keep)_jobs_per_second"] = Int(rate.rounded())
        }
        let ratio =
            median(results[10_000]?.map(\.redisCPUMicroseconds) ?? [])
            / max(0.001, median(results[10]?.map(\.redisCPUMicroseconds) ?? []))
        print(String(format: "ratio keep 10000 / keep 10: %.2f", ratio))
        figures["ratio_keep_10000_to_10"] = rounded(ratio)
        try printJSON(figures)
    }

    /// One completion-retention run: a fresh namespace keeping `keep` completed jobs, prefilled with `keep`
    /// completed jobs, then `jobs` more drained and measured.
    private func completionRun(
        _ url: RedisURL,
        keep: Int,
        jobs: Int,
        concurrency: Int
    ) async throws
        -> RedisCostPerJob
    {
        var result: RedisCostPerJob?
        try await withCostQueue(url, "retention-\(keep)", keep: keep) { redis, queue, cost in
            let namespace = queue.configuration.namespace
            let prefilled = try await fill(redis, queue, keep)
            var workers = ServeProcesses(url: url, namespace: namespace, processes: processes, concurrency: concurrency)
            do {
                try await cost.waitForCompleted(namespace: namespace, prefilled)
                workers.stop()
            } catch {
                workers.stop()
                throw error
            }
            let total = try await fill(redis, queue, jobs)
            let start = try await cost.snapshot()
            workers = ServeProcesses(url: url, namespace: namespace, processes: processes, concurrency: concurrency)
            do {
                try await cost.waitForCompleted(namespace: namespace, prefilled + total)
                let end = try await cost.snapshot()
                workers.stop()
                result = cost.delta(start, end).perJob(total)
            } catch {
                workers.stop()
                throw error
            }
        }
        guard let result else { throw RedisCostError("no completion-retention result") }
        return result
    }

    // MARK: - Helpers

    /// Runs `body` with a job queue in a fresh namespace, completed jobs kept up to `keep` (all when `nil`), and a
    /// cost sampler; on a server given with --redis the namespace is deleted afterwards.
    private func withCostQueue(
        _ url: RedisURL,
        _ name: String,
        keep: Int?,
        _ body: (RedisClient, JobQueue, RedisCost) async throws -> Void
    ) async throws {
        let redis = RedisClient(configuration: .init(url: url))
        defer { redis.shutdown() }
        let namespace = "cost-\(name)-\(UUID().uuidString.prefix(8).lowercased())"
        // This process installs the function library when the server has none (or another version), before the
        // `serve` processes (which do not) start.
        let queue = JobQueue(redis: redis, configuration: .init(namespace: namespace, installsLibrary: true))
        try await queue.setRetention(status: .completed, maxAge: nil, maxCount: keep)
        let cost = try RedisCost(url: url, monitor: monitor)
        do {
            try await body(redis, queue, cost)
            await cost.stop()
        } catch {
            await cost.stop()
            throw error
        }
        if server.redis != nil { try await deleteKeys(redis, matching: "\(namespace):*") }
    }

    /// Enqueues `count` no-op jobs (payload `{}`, default options) with enqueueMany, 1000 per call, on one pinned
    /// connection; returns how many.
    private func fill(_ redis: RedisClient, _ queue: JobQueue, _ count: Int) async throws -> Int {
        let batch = (0..<min(1000, count)).map { _ in NewJob("noop", json: "{}") }
        try await redis.withPinnedConnection {
            var left = count
            while left > 0 {
                let size = min(1000, left)
                _ = try await queue.enqueueMany(size == batch.count ? batch : Array(batch.prefix(size)))
                left -= size
            }
        }
        return count
    }

    private func deleteKeys(_ redis: RedisClient, matching pattern: String) async throws {
        var cursor = "0"
        repeat {
            let reply = try await redis.send("SCAN", cursor, "MATCH", pattern, "COUNT", 10_000)
            cursor = reply.array?.first?.string ?? "0"
            let keys = reply.array?.last?.array?.compactMap(\.string) ?? []
            if !keys.isEmpty { _ = try await redis.send(RedisCommand("UNLINK", keys)) }
        } while cursor != "0"
    }

    private func median(_ values: [Double]) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

extension ServeProcesses {
    /// The CPU time (user + system) the worker processes have used so far, in seconds.
    func cpuSeconds() -> Double {
        children.reduce(0) { $0 + (processCPUSeconds($1.process.processIdentifier) ?? 0) }
    }
}
