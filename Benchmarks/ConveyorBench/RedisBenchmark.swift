import ArgumentParser
import Foundation
import RedisClient

/// `conveyor-bench redis`: RedisClient round trips and pipelining next to `redis-benchmark` on the same server.
struct RedisBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis",
        abstract: "Sequential PING and pipelined LPUSH through RedisClient, next to redis-benchmark."
    )

    @OptionGroup var server: ServerOptions

    @Option(help: "Sequential PINGs to send.")
    var pings = 100_000

    @Option(help: "Interleaved rounds of each measurement; the medians are reported.")
    var rounds = 3

    @Option(help: "LPUSH commands to send, in pipelines of 1000.")
    var pushes = 1_000_000

    @Option(help: "Idle spin window of a connection thread, in microseconds (RedisClient's default: 50).")
    var spin = 50

    @Option(
        help: "How long a connection polls for a reply before sleeping, in microseconds (RedisClient's default: 100)."
    )
    var replySpin = 100

    func run() async throws {
        try await server.withServer { url in
            let connection = RedisConnection(
                configuration: .init(url: url, idleSpin: .microseconds(spin), replySpin: .microseconds(replySpin))
            )
            _ = try await connection.send("PING")
            let clock = ContinuousClock()

            // Interleave rounds of ours and redis-benchmark's, so both see the same machine state (on a VM an
            // idle vCPU is slow to wake, and how busy the machine was changes round-trip times several-fold).
            var pinned: [Double] = []
            var unpinned: [Double] = []
            var pooled: [Double] = []
            var reference: [Double] = []
            let pool = RedisClient(
                configuration: .init(url: url, idleSpin: .microseconds(spin), replySpin: .microseconds(replySpin))
            )
            for _ in 0..<rounds {
                reference.append(
                    try runRedisBenchmark(url, ["-t", "ping", "-c", "1", "-n", String(pings)], test: "PING_MBULK")
                )
                var started = clock.now
                try await connection.withPinnedTask {
                    for _ in 0..<pings { _ = try await connection.send("PING") }
                }
                pinned.append(Double(pings) / (clock.now - started).seconds)
                started = clock.now
                for _ in 0..<pings { _ = try await connection.send("PING") }
                unpinned.append(Double(pings) / (clock.now - started).seconds)
                started = clock.now
                for _ in 0..<pings { _ = try await pool.send("PING") }
                pooled.append(Double(pings) / (clock.now - started).seconds)
            }
            let pingRate = median(pinned)
            let unpinnedRate = median(unpinned)
            let poolPingRate = median(pooled)
            let referencePing = median(reference)

            let batch = (0..<1000).map { RedisCommand("LPUSH", "bench:list", "value-\($0)") }
            var pushRates: [Double] = []
            var referencePushes: [Double] = []
            for _ in 0..<rounds {
                referencePushes.append(
                    try runRedisBenchmark(url, ["-t", "lpush", "-P", "1000", "-n", String(pushes)], test: "LPUSH")
                )
                _ = try await connection.send("DEL", "bench:list", "mylist")
                let started = clock.now
                try await connection.withPinnedTask {
                    for _ in 0..<(pushes / 1000) { _ = try await connection.pipeline(batch) }
                }
                pushRates.append(Double(pushes / 1000 * 1000) / (clock.now - started).seconds)
            }
            _ = try await connection.send("DEL", "bench:list", "mylist")
            let pushRate = median(pushRates)
            let referencePush = median(referencePushes)

            print("medians of \(rounds) interleaved rounds")
            print("sequential PING, pinned connection:     \(formatRate(pingRate))/s")
            print("sequential PING, one RedisConnection:   \(formatRate(unpinnedRate))/s")
            print("sequential PING, RedisClient pool:      \(formatRate(poolPingRate))/s")
            print("redis-benchmark -t ping -c 1:          \(formatRate(referencePing))/s (PING_MBULK)")
            print(
                String(format: "ratio (pinned / redis-benchmark):       %.2f (target >= 1.0)", pingRate / referencePing)
            )
            print(String(format: "ratio (connection / redis-benchmark):   %.2f", unpinnedRate / referencePing))
            print(String(format: "ratio (pool / redis-benchmark):         %.2f", poolPingRate / referencePing))
            print("pipelined LPUSH, batches of 1000:       \(formatRate(pushRate))/s")
            print("redis-benchmark -t lpush -P 1000:       \(formatRate(referencePush))/s")
            print(
                String(format: "ratio (pipelined / redis-benchmark):    %.2f (target >= 0.6)", pushRate / referencePush)
            )
            try printJSON([
                "benchmark": "redis",
                "ping_per_second": Int(pingRate),
                "pool_ping_per_second": Int(poolPingRate),
                "unpinned_ping_per_second": Int(unpinnedRate),
                "unpinned_ping_ratio": (unpinnedRate / referencePing * 100).rounded() / 100,
                "rounds": rounds,
                "redis_benchmark_ping_per_second": Int(referencePing),
                "ping_ratio": (pingRate / referencePing * 100).rounded() / 100,
                "pool_ping_ratio": (poolPingRate / referencePing * 100).rounded() / 100,
                "lpush_pipelined_per_second": Int(pushRate),
                "redis_benchmark_lpush_pipelined_per_second": Int(referencePush),
                "lpush_ratio": (pushRate / referencePush * 100).rounded() / 100,
            ])
        }
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }
}
