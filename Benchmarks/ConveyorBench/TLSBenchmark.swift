import ArgumentParser
import Foundation
import LocalRedis
import RedisClient

/// `conveyor-bench tls`: what the TLS tunnel costs. PING round trips, pipelined LPUSH and connects over `rediss://`
/// next to plain TCP on the same server, in alternating rounds (plain, TLS, plain, TLS, …), with `redis-benchmark`'s
/// PING over each (it does TLS on its own thread: what a client without the relay thread's hop could reach).
struct TLSBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls",
        abstract: "Sequential PING, pipelined LPUSH and connects over TLS next to plain TCP, alternating."
    )

    @Option(help: "Plain redis:// URL; with --tls, runs against given servers instead of a private one.")
    var plain: String?

    @Option(help: "rediss:// URL of the same server's tls-port.")
    var tls: String?

    @Option(help: "Sequential PINGs per round.")
    var pings = 50_000

    @Option(help: "Pairs of rounds (plain then TLS); the medians are reported.")
    var pairs = 5

    @Option(help: "LPUSH commands per round, in pipelines of 1000.")
    var pushes = 200_000

    @Option(help: "New connections (connect, handshake, first PING) per round.")
    var connects = 50

    func validate() throws {
        guard (plain == nil) == (tls == nil) else { throw ValidationError("give both --plain and --tls, or neither") }
        guard pairs >= 1, pings >= 1, pushes >= 1000, connects >= 1 else {
            throw ValidationError("--pairs, --pings and --connects must be at least 1, --pushes at least 1000")
        }
    }

    func run() async throws {
        if let plain, let tls {
            try await measure(plain: try RedisURL(plain), tls: try RedisURL(tls))
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "conveyor-bench-tls-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificates = try LocalRedisServer.TestCertificates.make(in: directory)
        let server = try await LocalRedisServer.start(.init(tls: certificates.serverOptions(plainPort: true)))
        do {
            let plainURL = RedisURL(endpoint: .tcp(host: "127.0.0.1", port: server.plainPort ?? 0))
            try await measure(plain: plainURL, tls: server.url)
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }

    private struct Figures {
        var pings: [Double] = []
        var pushes: [Double] = []
        var connectMilliseconds: [Double] = []
        var reference: [Double] = []
    }

    private func measure(plain: RedisURL, tls: RedisURL) async throws {
        var figures: [String: Figures] = ["plain": Figures(), "tls": Figures()]
        let batch = (0..<1000).map { RedisCommand("LPUSH", "bench:tls", "value-\($0)") }
        let clock = ContinuousClock()
        for pair in 1...pairs {
            for (name, url) in [("plain", plain), ("tls", tls)] {
                let connection = RedisConnection(configuration: .init(url: url))
                defer { connection.close() }
                _ = try await connection.send("DEL", "bench:tls")
                var started = clock.now
                try await connection.withPinnedTask {
                    for _ in 0..<pings { _ = try await connection.send("PING") }
                }
                figures[name]!.pings.append(Double(pings) / (clock.now - started).seconds)
                started = clock.now
                try await connection.withPinnedTask {
                    for _ in 0..<(pushes / 1000) { _ = try await connection.pipeline(batch) }
                }
                figures[name]!.pushes.append(Double(pushes / 1000 * 1000) / (clock.now - started).seconds)
                _ = try await connection.send("DEL", "bench:tls")
                var connectTimes: [Duration] = []
                for _ in 0..<connects {
                    let fresh = RedisConnection(configuration: .init(url: url))
                    let began = clock.now
                    _ = try await fresh.send("PING")
                    connectTimes.append(clock.now - began)
                    fresh.close()
                }
                figures[name]!.connectMilliseconds.append(percentile(connectTimes, 0.5))
                figures[name]!.reference.append(
                    try runRedisBenchmark(url, ["-t", "ping", "-c", "1", "-n", String(pings)], test: "PING_MBULK")
                )
                print(
                    "pair \(pair) \(name == "tls" ? "TLS  " : "plain"): "
                        + "PING \(formatRate(figures[name]!.pings.last!))/s, "
                        + "LPUSH x1000 \(formatRate(figures[name]!.pushes.last!))/s, "
                        + String(format: "connect %.2f ms, ", figures[name]!.connectMilliseconds.last!)
                        + "redis-benchmark PING \(formatRate(figures[name]!.reference.last!))/s"
                )
            }
        }
        // Every connection was closed: every relay thread must end (each closes its TLS connection as it goes).
        var relaysLeft = TLSTunnel.liveTunnels
        let deadline = clock.now + .seconds(2)
        while relaysLeft > 0 && clock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
            relaysLeft = TLSTunnel.liveTunnels
        }
        let plainFigures = figures["plain"]!
        let tlsFigures = figures["tls"]!
        let pingRatio = median(tlsFigures.pings) / median(plainFigures.pings)
        let pushRatio = median(tlsFigures.pushes) / median(plainFigures.pushes)
        print("medians of \(pairs) alternating pairs (plain, TLS)")
        print("sequential PING, plain:      \(formatRate(median(plainFigures.pings)))/s")
        print("sequential PING, TLS:        \(formatRate(median(tlsFigures.pings)))/s")
        print(String(format: "ratio (TLS / plain):         %.2f", pingRatio))
        let referenceRatio = median(tlsFigures.reference) / median(plainFigures.reference)
        print("redis-benchmark PING, plain: \(formatRate(median(plainFigures.reference)))/s")
        print("redis-benchmark PING, TLS:   \(formatRate(median(tlsFigures.reference)))/s")
        print(String(format: "ratio (TLS / plain):         %.2f", referenceRatio))
        print("pipelined LPUSH, plain:      \(formatRate(median(plainFigures.pushes)))/s")
        print("pipelined LPUSH, TLS:        \(formatRate(median(tlsFigures.pushes)))/s")
        print(String(format: "ratio (TLS / plain):         %.2f", pushRatio))
        print(
            String(
                format: "connect + first PING:        %.2f ms plain, %.2f ms TLS",
                median(plainFigures.connectMilliseconds),
                median(tlsFigures.connectMilliseconds)
            )
        )
        print("relay threads left after closing every connection: \(relaysLeft)")
        try printJSON([
            "benchmark": "tls",
            "relay_threads_left": relaysLeft,
            "pairs": pairs,
            "plain_ping_per_second": Int(median(plainFigures.pings)),
            "tls_ping_per_second": Int(median(tlsFigures.pings)),
            "ping_ratio": rounded(pingRatio),
            "redis_benchmark_plain_ping_per_second": Int(median(plainFigures.reference)),
            "redis_benchmark_tls_ping_per_second": Int(median(tlsFigures.reference)),
            "redis_benchmark_ping_ratio": rounded(referenceRatio),
            "plain_lpush_pipelined_per_second": Int(median(plainFigures.pushes)),
            "tls_lpush_pipelined_per_second": Int(median(tlsFigures.pushes)),
            "lpush_ratio": rounded(pushRatio),
            "plain_connect_ms": rounded(median(plainFigures.connectMilliseconds)),
            "tls_connect_ms": rounded(median(tlsFigures.connectMilliseconds)),
        ])
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }
}
