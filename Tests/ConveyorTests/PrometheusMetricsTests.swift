import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `/metrics` of `conveyor worker --metrics-port` and of `conveyor serve`, parsed by Python's prometheus_client, and
/// the worker's health endpoints.
@Suite("Prometheus metrics and health endpoints", .timeLimit(.minutes(3)))
struct PrometheusMetricsTests {
    /// One parsed sample: name, labels, value.
    struct Sample {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// Parses Prometheus texts with prometheus_client's parser (fails the test when one is not valid).
    static func parse(_ texts: [String]) async throws -> [[Sample]] {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        var paths: [String] = []
        for (index, text) in texts.enumerated() {
            let path = folder.appendingPathComponent("\(index).txt").path
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let script = repositoryRoot.appendingPathComponent("Tests/Interop/parse_prometheus.py").path
        let output = try await runTool(["/usr/bin/python3", script] + paths)
        return try output.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let samples = try #require(object["samples"] as? [[Any]])
            return samples.map {
                Sample(
                    name: $0[0] as? String ?? "",
                    labels: $0[1] as? [String: String] ?? [:],
                    value: ($0[2] as? NSNumber)?.doubleValue ?? .nan
                )
            }
        }
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    static func total(_ samples: [Sample], _ name: String, _ labels: [String: String] = [:]) -> Double {
        samples.filter { sample in
            sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
        }.reduce(0) { $0 + $1.value }
    }

    static func get(_ port: Int, _ path: String, token: String? = nil) async throws -> (status: Int, body: String) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.timeoutInterval = 30
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// Starts `conveyor worker --metrics-port 0` and returns it with the port it printed.
    static func startWorker(_ server: LocalRedisServer, _ arguments: [String]) async throws -> (ConveyorProcess, Int) {
        let worker = ConveyorProcess(
            ["worker", "--redis", "redis://127.0.0.1:\(server.port)", "--metrics-port", "0", "--no-scheduler"]
                + arguments
        )
        try await worker.waitFor("/metrics")
        let line = try #require(worker.output.split(separator: "\n").first { $0.contains("metrics on http://") })
        let port = try #require(Int(line.split(separator: ":").last?.split(separator: "/").first ?? ""))
        return (worker, port)
    }

    @Test func aWorkersMetricsScrapedDuringADrainParseAndTheirCountersMatchRedis() async throws {
        try await withJobQueue { jobs, server in
            let work = (0..<400).map { _ in
                NewJob("sleep", json: #"{"ms":20}"#, options: JobOptions(queue: "metered"))
            }
            let failing = (0..<25).map { _ in
                NewJob("fail", json: "{}", options: JobOptions(queue: "metered", maxRetries: 0))
            }
            _ = try await jobs.enqueueMany(work + failing)
            let (worker, port) = try await Self.startWorker(
                server,
                ["--queue", "metered", "--example-handlers", "--concurrency", "10"]
            )
            // Scrapes while the queue drains, until nothing is pending or running.
            var scrapes: [String] = []
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(90)
            while clock.now < deadline {
                let answer = try await Self.get(port, "/metrics")
                #expect(answer.status == 200)
                scrapes.append(answer.body)
                let counts = try await jobs.counts(queue: "metered")
                if counts[.pending] == 0 && counts[.processing] == 0 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            // After the last outcome is recorded in Redis, the worker's own counters have it too.
            let final = try await Self.get(port, "/metrics").body
            let parsed = try await Self.parse(scrapes + [final])
            #expect(scrapes.count >= 2, "the drain should have been scraped while it ran")
            let duringDrain = parsed.dropLast().map { Self.total($0, "conveyor_jobs_completed_total") }
            #expect(duringDrain.first ?? 0 < 400, "a scrape during the drain: \(duringDrain)")
            #expect(duringDrain == duringDrain.sorted(), "a counter never goes down: \(duringDrain)")

            let samples = try #require(parsed.last)
            let stats = try await jobs.stats(queue: "metered")
            let counts = try await jobs.counts(queue: "metered")
            let queue = ["queue": "metered"]
            // This process's counters (swift-metrics through swift-prometheus) against Redis's stats hash.
            #expect(Self.total(samples, "conveyor_jobs_started_total", queue) == Double(stats["started"] ?? -1))
            #expect(Self.total(samples, "conveyor_jobs_completed_total", queue) == Double(stats["completed"] ?? -1))
            #expect(Self.total(samples, "conveyor_jobs_failed_total", queue) == Double(stats["failed"] ?? -1))
            #expect(stats["completed"] == 400 && stats["failed"] == 25)
            #expect(
                Self.total(samples, "conveyor_job_duration_seconds_count", queue)
                    == Double((stats["completed"] ?? 0) + (stats["failed"] ?? 0))
            )
            #expect(Self.total(samples, "conveyor_job_queue_latency_seconds_count", ["type": "sleep"]) == 400)
            // The Redis part, read at scrape time.
            for name in ["enqueued", "started", "completed", "failed"] {
                #expect(
                    Self.total(samples, "conveyor_queue_\(name)_total", queue) == Double(stats[name] ?? -1),
                    "conveyor_queue_\(name)_total"
                )
            }
            for status in [JobStatus.completed, .failed, .pending] {
                #expect(
                    Self.total(samples, "conveyor_queue_jobs", ["queue": "metered", "status": status.rawValue])
                        == Double(counts[status] ?? -1),
                    "conveyor_queue_jobs \(status)"
                )
            }
            #expect(Self.total(samples, "conveyor_workers") == 1 && Self.total(samples, "conveyor_worker_slots") == 10)
            #expect(Self.total(samples, "conveyor_redis_up") == 1)
            #expect(Self.total(samples, "conveyor_redis_roundtrip_seconds") > 0)
            // Every query of the Grafana dashboard in deploy/ parses as PromQL, and every series it reads is one a
            // worker exports.
            let checker = repositoryRoot.appendingPathComponent("Tests/Interop/check_grafana_dashboard.py").path
            let dashboard = repositoryRoot.appendingPathComponent("deploy/grafana/conveyor-dashboard.json").path
            let queried = Set(
                try await runTool(["/usr/bin/python3", checker, dashboard]).split(separator: "\n").map(String.init)
            )
            let exported = Set(samples.map(\.name))
            #expect(queried.count >= 10 && queried.isSubset(of: exported), "\(queried.subtracting(exported))")
            try await worker.signal(SIGTERM)
            #expect(try await worker.exit() == 0)
        }
    }

    @Test func serveShowsMetricsToCredentialsOnlyAndHealthToAnyone() async throws {
        try await withJobQueue { jobs, server in
            _ = try await jobs.enqueue("report", payload: ["n": 1], options: JobOptions(queue: "reports"))
            let serve = try await ServeProcess.start(server)
            let refused = try await Self.get(serve.port, "/metrics")
            #expect(refused.status == 401)
            let answer = try await Self.get(serve.port, "/metrics", token: "test-token")
            #expect(answer.status == 200)
            let samples = try #require(try await Self.parse([answer.body]).first)
            #expect(Self.total(samples, "conveyor_queue_jobs", ["queue": "reports", "status": "pending"]) == 1)
            #expect(Self.total(samples, "conveyor_queue_enqueued_total", ["queue": "reports"]) == 1)
            #expect(Self.total(samples, "conveyor_leader") == 0)
            let ready = try await Self.get(serve.port, "/health/ready")
            #expect(ready.status == 200 && ready.body.contains(JobQueue.libraryVersion))
            #expect(try await Self.get(serve.port, "/health/live").status == 200)

            // Another library version in Redis (an upgrade half done): unready, with what to run. (A worker would
            // notice and put its own back.)
            let old = "#!lua name=conveyor\nredis.register_function('conveyor_version', function() return 'old1' end)"
            _ = try await jobs.redis.send("FUNCTION", "FLUSH")
            let loaded = try await jobs.redis.send("FUNCTION", "LOAD", old)
            #expect(loaded.string == "conveyor", "\(loaded)")
            let stale = try await Self.get(serve.port, "/health/ready")
            #expect(
                stale.status == 503 && stale.body.contains("old1") && stale.body.contains("conveyor install"),
                "\(stale.body)"
            )
            try await jobs.installLibrary()
            #expect(try await Self.get(serve.port, "/health/ready").status == 200)

        }
    }

    @Test func aWorkerIsReadyOnlyWhileRedisAnswersWithItsLibraryAndNotWhileItShutsDown() async throws {
        try await withJobQueue { jobs, server in
            let (worker, port) = try await Self.startWorker(server, ["--queue", "slow", "--example-handlers"])
            let ready = try await Self.get(port, "/health/ready")
            #expect(ready.status == 200, "\(ready.body)")
            #expect(ready.body.contains(JobQueue.libraryVersion))

            // Cut off: the server stops answering (SIGSTOP), the probe gives up after 2 s.
            kill(server.pid, SIGSTOP)
            let cutOff = try await Self.get(port, "/health/ready")
            kill(server.pid, SIGCONT)
            #expect(cutOff.status == 503 && cutOff.body.contains("did not answer"), "\(cutOff.body)")
            #expect(try await Self.get(port, "/health/live").status == 200)
            try await eventually(timeout: .seconds(20), "ready again") {
                try await Self.get(port, "/health/ready").status == 200
            }

            // Shutting down with a job running: unready during the grace period, still answering.
            let long = try await jobs.enqueue("sleep", payload: ["ms": 3000], options: JobOptions(queue: "slow"))
            try await eventually(timeout: .seconds(20), "the job to start") {
                try await jobs.get(long.id)?.status == .processing
            }
            try await worker.signal(SIGTERM)
            let stopping = try await Self.get(port, "/health/ready")
            #expect(stopping.status == 503 && stopping.body.contains("shutting down"), "\(stopping.body)")
            #expect(try await worker.exit() == 0)
        }
    }
}
