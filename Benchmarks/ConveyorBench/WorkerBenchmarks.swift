import ArgumentParser
import Conveyor
import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import UnixSignals

/// Wall-clock time in nanoseconds (the same clock in every process on the machine).
func wallNanoseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}

/// `conveyor-bench serve`: a worker process with a no-op handler `noop` that returns the wall-clock time (ns) at
/// which it started, for the other benchmarks to measure latency.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "A worker with no-op handlers.")

    @Option var redis: String
    @Option var namespace: String
    @Option var concurrency = 10

    func run() async throws {
        let client = RedisClient(
            configuration: .init(url: try RedisURL(redis), maximumConnections: max(16, concurrency))
        )
        let jobs = JobQueue(redis: client, configuration: .init(namespace: namespace, installsLibrary: true))
        var handlers = JobHandlers()
        handlers.registerJSON("noop") { _ in String(wallNanoseconds()) }
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let worker = Worker(
            queue: jobs,
            handlers: handlers,
            configuration: .init(concurrency: concurrency, gracePeriod: .seconds(1)),
            logger: logger
        )
        let group = ServiceGroup(
            configuration: .init(services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        )
        try await group.run()
        client.shutdown()
    }
}

/// Starts `conveyor-bench serve` processes and stops them.
struct ServeProcesses {
    let children: [ChildProcessHandle]

    init(url: RedisURL, namespace: String, processes: Int, concurrency: Int) {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).path
        children = (0..<processes).map { _ in
            ChildProcessHandle(
                [
                    executable, "serve", "--redis", "\(url.descriptionWithPassword)", "--namespace", namespace,
                    "--concurrency", String(concurrency),
                ]
            )
        }
    }

    /// The peak resident memory (VmHWM) of each process, in bytes.
    func peakMemory() -> [Int] {
        children.map { child in
            guard
                let status = try? String(
                    contentsOfFile: "/proc/\(child.process.processIdentifier)/status",
                    encoding: .utf8
                )
            else { return 0 }
            for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
                return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
            }
            return 0
        }
    }

    func stop() {
        for child in children { child.stop() }
    }
}

/// A background process (Foundation `Process`; stopped with SIGKILL, which cannot be blocked).
final class ChildProcessHandle {
    let process = Process()

    init(_ arguments: [String]) {
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        try? process.run()
    }

    func stop() {
        _ = kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

extension RedisURL {
    /// The URL with its password, for handing to a child process.
    var descriptionWithPassword: String {
        switch endpoint {
        case .tcp(let host, let port):
            let credentials = password.map { "\(username ?? ""):\($0)@" } ?? ""
            return "redis://\(credentials)\(host):\(port)/\(database)"
        case .unix(let path):
            return "unix://\(path)?db=\(database)" + (password.map { "&password=\($0)" } ?? "")
        case .sentinel(let sentinel):
            let credentials = password.map { "\(username ?? ""):\($0)@" } ?? ""
            let hosts = sentinel.addresses.map(\.description).joined(separator: ",")
            let query = sentinel.password.map { "?sentinel_password=\($0)" } ?? ""
            return "redis+sentinel://\(credentials)\(hosts)/\(sentinel.masterName)/\(database)\(query)"
        case .cluster(let cluster):
            let credentials = password.map { "\(username ?? ""):\($0)@" } ?? ""
            return "redis+cluster://\(credentials)\(cluster.seeds.map(\.description).joined(separator: ","))"
        }
    }
}

/// Runs `body` with a job queue in a fresh namespace on the chosen server, keeping every completed job of `queue`
/// (so latencies can be read back from them).
func withBenchmarkQueue(
    _ server: ServerOptions,
    name: String,
    keeping queue: String? = nil,
    _ body: (RedisURL, RedisClient, JobQueue) async throws -> Void
) async throws {
    try await server.withServer { url in
        let redis = RedisClient(configuration: .init(url: url))
        defer { redis.shutdown() }
        let namespace = "\(name)-\(Int(Date().timeIntervalSince1970))"
        let jobs = JobQueue(redis: redis, configuration: .init(namespace: namespace, installsLibrary: true))
        try await jobs.installLibrary()
        try await jobs.setRetention(queue: queue, status: .completed, maxAge: nil, maxCount: nil)
        try await body(url, redis, jobs)
    }
}

/// Waits until `count` jobs of the namespace's default queue are completed.
func waitForCompleted(_ jobs: JobQueue, _ count: Int, timeout: Duration = .seconds(600)) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while try await jobs.counts()[.completed] ?? 0 < count {
        guard clock.now < deadline else { throw ValidationError("jobs did not complete within \(timeout)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// `conveyor-bench drain`: how fast worker processes drain a queue of no-op jobs.
struct DrainBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drain",
        abstract: "Drain N no-op jobs with worker processes."
    )

    @OptionGroup var server: ServerOptions
    @Option var jobs = 100_000
    @Option var concurrency = 50
    @Option var processes = 1

    func run() async throws {
        try await withBenchmarkQueue(server, name: "drain") { url, redis, queue in
            let namespace = queue.configuration.namespace
            let batch = (0..<1000).map { _ in NewJob("noop", json: "{}") }
            try await redis.withPinnedConnection {
                for _ in 0..<(jobs / 1000) { _ = try await queue.enqueueMany(batch) }
            }
            let total = jobs / 1000 * 1000
            let clock = ContinuousClock()
            let started = clock.now
            let workers = ServeProcesses(url: url, namespace: namespace, processes: processes, concurrency: concurrency)
            try await waitForCompleted(queue, total)
            let seconds = (clock.now - started).seconds
            let memory = workers.peakMemory()
            workers.stop()
            let rate = Double(total) / seconds
            print("drained \(total) no-op jobs with \(processes) process(es) at concurrency \(concurrency)")
            print("jobs/s (including worker start-up): \(formatRate(rate))")
            print("peak worker memory: \(memory.map { "\($0 / 1_048_576) MiB" }.joined(separator: ", "))")
            try printJSON([
                "benchmark": "drain", "jobs": total, "processes": processes, "concurrency": concurrency,
                "jobs_per_second": Int(rate), "peak_worker_memory_bytes": memory.max() ?? 0,
            ])
        }
    }
}

/// `conveyor-bench latency`: enqueue → start latency at a steady rate with an idle worker.
struct LatencyBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Enqueue-to-start latency at a rate."
    )

    @OptionGroup var server: ServerOptions
    @Option var rate = 500
    @Option var seconds = 10

    func run() async throws {
        try await withBenchmarkQueue(server, name: "latency") { url, redis, queue in
            let namespace = queue.configuration.namespace
            let workers = ServeProcesses(url: url, namespace: namespace, processes: 1, concurrency: 10)
            defer { workers.stop() }
            try await Task.sleep(for: .seconds(1))
            let clock = ContinuousClock()
            let interval = Duration.seconds(1) / rate
            var sent: [(String, Int64)] = []
            var next = clock.now
            for _ in 0..<(rate * seconds) {
                try await Task.sleep(until: next)
                let at = wallNanoseconds()
                sent.append((try await queue.enqueue("noop", json: "{}").id, at))
                next += interval
            }
            try await waitForCompleted(queue, sent.count)
            var latencies: [Duration] = []
            for (id, at) in sent {
                guard let started = try await queue.get(id)?.result.flatMap({ Int64($0) }) else { continue }
                latencies.append(.nanoseconds(started - at))
            }
            print("enqueue→start latency at \(rate) jobs/s for \(seconds) s (\(latencies.count) jobs)")
            print(String(format: "p50 %.3f ms, p99 %.3f ms", percentile(latencies, 0.5), percentile(latencies, 0.99)))
            try printJSON([
                "benchmark": "latency", "rate": rate, "seconds": seconds,
                "p50_ms": rounded(percentile(latencies, 0.5)), "p99_ms": rounded(percentile(latencies, 0.99)),
            ])
        }
    }
}

/// `conveyor-bench lateness`: how late N jobs scheduled for the same instant start.
struct LatenessBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lateness",
        abstract: "Lateness of jobs due at one instant."
    )

    @OptionGroup var server: ServerOptions
    @Option var jobs = 1000
    @Option var concurrency = 50

    func run() async throws {
        try await withBenchmarkQueue(server, name: "lateness") { url, redis, queue in
            let namespace = queue.configuration.namespace
            let workers = ServeProcesses(url: url, namespace: namespace, processes: 1, concurrency: concurrency)
            defer { workers.stop() }
            try await Task.sleep(for: .seconds(1))
            let due = Date().addingTimeInterval(3)
            let dueNanoseconds = Int64(due.timeIntervalSince1970 * 1e9)
            let batch = (0..<jobs).map { _ in NewJob("noop", json: "{}", options: JobOptions(runAt: due)) }
            let ids = try await queue.enqueueMany(batch).map(\.id)
            try await waitForCompleted(queue, ids.count)
            var lateness: [Duration] = []
            for id in ids {
                guard let started = try await queue.get(id)?.result.flatMap({ Int64($0) }) else { continue }
                lateness.append(.nanoseconds(started - dueNanoseconds))
            }
            print("\(jobs) jobs due at one instant, one worker at concurrency \(concurrency)")
            print(
                String(
                    format: "lateness p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                    percentile(lateness, 0.5),
                    percentile(lateness, 0.99),
                    percentile(lateness, 1)
                )
            )
            try printJSON([
                "benchmark": "lateness", "jobs": jobs, "p50_ms": rounded(percentile(lateness, 0.5)),
                "p99_ms": rounded(percentile(lateness, 0.99)), "max_ms": rounded(percentile(lateness, 1)),
            ])
        }
    }
}
