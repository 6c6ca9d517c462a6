import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

@Suite("conveyor dev and conveyor demo", .timeLimit(.minutes(2)))
struct DevAndDemoTests {
    /// Whether something answers on a loopback port.
    func listening(_ port: Int) async throws -> Bool {
        try await ConveyorExecutable.run(["ping", "--redis", "redis://127.0.0.1:\(port)"]).status == 0
    }

    @Test func devRunsRedisAWorkerAndTheSchedulerAndKeepsItsData() async throws {
        let port = try LocalRedisServer.freeLoopbackPort()
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-dev-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: data) }
        let redis = ["--redis", "redis://127.0.0.1:\(port)"]
        let dev = ConveyorProcess(["dev", "--port", String(port), "--data", data.path, "--scheduler-lease", "2s"])
        try await dev.waitFor("export REDIS_URL=redis://127.0.0.1:\(port)")
        let enqueued = try await ConveyorExecutable.run(["enqueue", "echo", "--payload", #"{"dev":1}"#] + redis)
        let id = enqueued.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let waited = try await ConveyorExecutable.run(["wait", id, "--timeout", "30s"] + redis)
        #expect(waited.status == 0 && waited.standardOutput.contains(#"{"dev":1}"#), "\(waited.standardError)")
        // The scheduler runs in dev too: a schedule fires.
        #expect(
            try await ConveyorExecutable.run(["schedule", "add", "tick", "echo", "--every", "1s"] + redis).status == 0
        )
        try await eventually(timeout: .seconds(30), "the schedule to fire") {
            let list = try await ConveyorExecutable.run(
                ["list", "--status", "completed", "--type", "echo", "--json"] + redis
            )
            return (try parsedJSON(list) as? [[String: Any]])?.contains {
                ($0["id"] as? String)?.contains("tick@") == true
            }
                == true
        }
        try await dev.signal(SIGINT)
        #expect(try await dev.exit() == 0, "\(dev.output)")
        #expect(dev.output.contains("Stopped; the data stays in"))
        #expect(try await !listening(port))

        // Started again on the same folder, the job is still there.
        // (On a port of its choosing: the first one may have been taken by another test's server meanwhile.)
        let again = ConveyorProcess(["dev", "--data", data.path])
        try await again.waitFor("Ctrl-C stops.")
        let line = try #require(again.output.split(separator: "\n").first { $0.contains("export REDIS_URL=") })
        let secondPort = try #require(Int(line.split(separator: ":").last ?? ""))
        let got = try await ConveyorExecutable.run(["get", id, "--json", "--redis", "redis://127.0.0.1:\(secondPort)"])
        #expect((try parsedJSON(got) as? [String: Any])?["status"] as? String == "completed", "\(got.standardError)")
        // Killed outright, dev leaves its redis-server running; a new dev on that folder refuses to start a second
        // server on the same files and says how to stop the first.
        try await again.signal(SIGKILL)
        _ = try await again.exit()
        let refused = try await ConveyorExecutable.run(["dev", "--data", data.path])
        #expect(refused.status == 1, "\(refused.standardError)")
        let orphan = try #require(refused.standardError.firstMatch(of: /\(kill (\d+)\)/).flatMap { Int32($0.output.1) })
        #expect(refused.standardError.contains("still runs on \(data.path)"))
        kill(orphan, SIGTERM)
        try await eventually("the orphaned redis-server to stop") { try await !listening(secondPort) }
    }

    @Test func demoShowsRetriesFailuresAndTheScheduleAndCleansUpOnCtrlC() async throws {
        let demo = ConveyorProcess([
            "demo", "--examples", repositoryRoot.appendingPathComponent("deploy/examples").path, "--summary-every",
            "2s",
        ])
        try await demo.waitFor("Ctrl-C stops everything.")
        let line = try #require(demo.output.split(separator: "\n").first { $0.contains("export REDIS_URL=") })
        let url = String(line.split(separator: "=", maxSplits: 1)[1])
        let port = try #require(Int(url.split(separator: ":").last ?? ""))
        let pid = try #require(
            demo.output.firstMatch(of: /private redis-server, pid (\d+)/).flatMap { Int32($0.output.1) }
        )
        defer { kill(pid, SIGKILL) }  // if the test fails before Ctrl-C

        try await demo.waitFor("charge_card  processing → failed", timeout: .seconds(60))
        try await demo.waitFor("flaky_upload  processing → completed", timeout: .seconds(60))
        try await demo.waitFor("flaky_upload  processing → retrying")
        try await demo.waitFor("report  processing → completed", timeout: .seconds(60))
        try await demo.waitFor("── ")

        // From a second terminal.
        let stats = try await ConveyorExecutable.run(["stats", "--json", "--redis", url])
        let queues = try #require((try parsedJSON(stats) as? [String: Any])?["queues"] as? [[String: Any]])
        let counts = try #require(queues.first { $0["queue"] as? String == "demo" }?["counts"] as? [String: Int])
        #expect((counts["completed"] ?? 0) >= 10 && counts["failed"] == 1, "\(counts)")
        let failed = try await ConveyorExecutable.run(["list", "--queue", "demo", "--status", "failed", "--redis", url])
        #expect(failed.standardOutput.contains("charge_card") && failed.standardOutput.contains("card declined"))

        try await demo.signal(SIGINT)
        #expect(try await demo.exit() == 0, "\(demo.output)")
        #expect(demo.output.contains("Stopped the worker and the private redis-server"))
        #expect(try await !listening(port))
        #expect(kill(pid, 0) != 0)
    }

    @Test func demoOnAGivenRedisUsesItsOwnNamespaceAndRemovesItsKeys() async throws {
        try await withRedisServer(.init(arguments: ["--requirepass", "pw"])) { server in
            let url = "redis://:pw@127.0.0.1:\(server.port)"
            let client = try RedisClient(url: url)
            defer { client.shutdown() }
            _ = try await client.send("SET", "conveyor:keep", "mine")
            let demo = ConveyorProcess(
                [
                    "demo", "--examples", repositoryRoot.appendingPathComponent("deploy/examples").path,
                    "--summary-every",
                    "2s",
                ],
                environment: ["REDIS_URL": url]
            )
            try await demo.waitFor("send_email  processing → completed")
            #expect(demo.output.contains("export REDIS_URL=<the URL you gave, with its password>"))
            #expect(demo.output.contains("conveyor stats --namespace conveyor-demo") && !demo.output.contains(":pw@"))
            let stats = try await ConveyorExecutable.run([
                "stats", "--json", "--namespace", "conveyor-demo", "--redis", url,
            ])
            let queues = (try parsedJSON(stats) as? [String: Any])?["queues"] as? [[String: Any]]
            #expect(queues?.first?["queue"] as? String == "demo", "\(stats.standardError)")
            try await demo.signal(SIGINT)
            #expect(try await demo.exit() == 0, "\(demo.output)")
            #expect(demo.output.contains("Removed the demo's"))
            let left = try await client.send("KEYS", "*").array?.compactMap(\.string)
            #expect(left == ["conveyor:keep"])
        }
    }
}
