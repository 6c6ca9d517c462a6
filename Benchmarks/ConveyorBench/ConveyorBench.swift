import ArgumentParser
import Foundation
import LocalRedis
import RedisClient

/// `conveyor-bench`: measures Conveyor against a real Redis and prints one line of JSON with the figures last.
@main
struct ConveyorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor-bench",
        abstract: "Benchmarks for Conveyor (build with -c release).",
        subcommands: [
            RedisBenchmark.self, EnqueueBenchmark.self, DrainBenchmark.self, LatencyBenchmark.self,
            LatenessBenchmark.self, SchedulesBenchmark.self, CronBenchmark.self, CostBenchmark.self, TLSBenchmark.self,
            ServeCommand.self, DashboardBenchmark.self,
        ]
    )
}

/// Where to run: a given server, or a private one started for the run.
struct ServerOptions: ParsableArguments {
    @Option(help: "Redis URL; without it a private redis-server is started for the run.")
    var redis: String?

    /// Runs `body` against the chosen server, starting and stopping a private one when no URL was given.
    func withServer(_ body: (RedisURL) async throws -> Void) async throws {
        if let redis {
            try await body(try RedisURL(redis))
            return
        }
        let server = try await LocalRedisServer.start()
        do {
            try await body(server.url)
            await server.stop()
        } catch {
            await server.stop()
            throw error
        }
    }
}

/// Formats a rate with thousands separators.
func formatRate(_ value: Double) -> String {
    let formatter = NumberFormatter()
    formatter.numberStyle = .decimal
    formatter.maximumFractionDigits = 0
    return formatter.string(from: NSNumber(value: value)) ?? String(Int(value))
}

/// The value at a quantile of some measurements, in milliseconds.
func percentile(_ durations: [Duration], _ quantile: Double) -> Double {
    guard !durations.isEmpty else { return 0 }
    let sorted = durations.sorted()
    let index = min(sorted.count - 1, Int((Double(sorted.count) * quantile).rounded(.up)) - 1)
    return sorted[max(0, index)].seconds * 1000
}

/// Rounds to three decimals for the JSON line.
func rounded(_ value: Double) -> Double {
    (value * 1000).rounded() / 1000
}

/// Prints the figures as one line of JSON (sorted keys), the last line of every subcommand's output.
func printJSON(_ figures: [String: any Sendable]) throws {
    let data = try JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

extension Duration {
    /// This duration in seconds, as a `Double`.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// Runs `redis-benchmark` against the same server and returns the requests per second of one test.
func runRedisBenchmark(_ url: RedisURL, _ arguments: [String], test: String?) throws -> Double {
    var connection: [String]
    switch url.endpoint {
    case .tcp(let host, let port): connection = ["-h", host, "-p", String(port)]
    case .unix(let path): connection = ["-s", path]
    case .sentinel: throw ValidationError("redis-benchmark cannot follow Sentinel: give the primary's redis:// URL")
    case .cluster(let cluster):
        connection = ["--cluster", "-h", cluster.seeds[0].host, "-p", String(cluster.seeds[0].port)]
    }
    if let password = url.password { connection += ["-a", password, "--no-auth-warning"] }
    if let username = url.username { connection += ["--user", username] }
    if url.database != 0 { connection += ["--dbnum", String(url.database)] }
    if let tls = url.tls {
        connection.append("--tls")
        if let caFile = tls.caFile { connection += ["--cacert", caFile] }
        if let certificateFile = tls.certificateFile { connection += ["--cert", certificateFile] }
        if let keyFile = tls.keyFile { connection += ["--key", keyFile] }
        if let serverName = tls.serverName { connection += ["--sni", serverName] }
        if tls.insecure { connection.append("--insecure") }
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["redis-benchmark", "--csv"] + connection + arguments
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    for line in text.split(separator: "\n") {
        // "test","rps","avg",… : the test name may itself hold commas, so count fields from the end.
        let fields = line.split(separator: ",").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        guard fields.count >= 8, fields[0] != "test" else { continue }
        let name = fields[0..<(fields.count - 7)].joined(separator: ",")
        if test == nil || name == test, let rate = Double(fields[fields.count - 7]) { return rate }
    }
    throw ValidationError("redis-benchmark printed no \(test ?? "") figure (is redis-tools installed?): \(text)")
}
