import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

/// Issue 12: the CLI through Sentinel, `conveyor dev --sentinel`, and `--wait-replicas`.
@Suite("The command line through Sentinel", .timeLimit(.minutes(3)))
struct SentinelCommandLineTests {
    @Test func devWithSentinelWorksThroughAFailoverAndRemovesEveryServerWhenItStops() async throws {
        let dev = ConveyorProcess(["dev", "--sentinel"])
        try await dev.waitFor("Ctrl-C stops (and removes every server).")
        let line = try #require(dev.output.split(separator: "\n").first { $0.contains("export REDIS_URL=") })
        let url = String(try #require(line.split(separator: "'").dropFirst().first))
        #expect(url.hasPrefix("redis+sentinel://127.0.0.1:"))
        let sentinelLine = try #require(dev.output.split(separator: "\n").first { $0.contains("Sentinels: ") })
        let sentinelPorts =
            sentinelLine.split(separator: ": ").last?.split(separator: ", ").compactMap { Int($0) } ?? []
        #expect(sentinelPorts.count == 3)
        let redis = ["--redis", url]
        func enqueueAndWait(_ payload: String, waitingUpTo seconds: Int) async throws {
            let enqueued = try await ConveyorExecutable.run(
                ["enqueue", "echo", "--payload", payload, "--wait-replicas", "2", "--wait-timeout", String(seconds)]
                    + redis
            )
            #expect(enqueued.status == 0, "\(enqueued.standardError)")
            let id = enqueued.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            let waited = try await ConveyorExecutable.run(["wait", id, "--timeout", "60s"] + redis)
            #expect(waited.status == 0 && waited.standardOutput.contains(payload), "\(waited.standardError)")
        }
        try await enqueueAndWait(#"{"before":1}"#, waitingUpTo: 5)
        let sentinel = RedisConnection(
            configuration: .init(url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: sentinelPorts[0])))
        )
        defer { sentinel.close() }
        let first = try await sentinel.send("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "conveyor").array?.last?.string
        #expect(try await sentinel.send("SENTINEL", "FAILOVER", "conveyor") == .status("OK"))
        try await eventually(timeout: .seconds(60), "the Sentinels to name a new primary") {
            try await sentinel.send("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "conveyor").array?.last?.string != first
        }
        // The CLI and dev's worker work on the new primary; with both replicas asked for, the enqueue waits until
        // the old primary has rejoined as a replica (Sentinel demotes it about 10 s after the switch).
        try await enqueueAndWait(#"{"after":1}"#, waitingUpTo: 40)
        try await dev.signal(SIGINT)
        #expect(try await dev.exit() == 0, "\(dev.output)")
        #expect(dev.output.contains("Stopped; the master group is gone."))
        for port in sentinelPorts {
            let ping = try await ConveyorExecutable.run(["ping", "--redis", "redis://127.0.0.1:\(port)"])
            #expect(ping.status != 0, "a Sentinel still answers on \(port)")
        }
    }

    @Test(arguments: [
        (["--wait-replicas", "0"], "--wait-replicas must be from 1 to 1000"),
        (["--wait-replicas", "1", "--wait-timeout", "0"], "--wait-timeout must be from 0.001 to 60"),
    ])
    func aBadWaitOptionIsRefused(_ options: [String], _ message: String) async throws {
        let result = try await ConveyorExecutable.run(
            ["enqueue", "echo"] + options + ["--redis", "redis://127.0.0.1:1"]
        )
        #expect(result.status == 64, "\(result.standardError)")
        #expect(result.standardError.contains(message), "\(result.standardError)")
    }

    @Test func aSentinelURLWithNoSentinelIsAClearOneLineError() async throws {
        let port = try LocalRedisServer.freeLoopbackPort()
        let result = try await ConveyorExecutable.run(
            ["enqueue", "echo", "--redis", "redis+sentinel://127.0.0.1:\(port)/conveyor", "--redis-timeout", "1"]
        )
        #expect(result.status == 1, "\(result.standardError)")
        #expect(result.standardError.contains("cannot find the primary of 'conveyor'"), "\(result.standardError)")
    }
}
