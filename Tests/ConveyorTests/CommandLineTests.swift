import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import Conveyor

/// Runs the real `conveyor` executable, built next to the test bundle.
struct ConveyorExecutable {
    struct Output {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    static var path: String {
        let testBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return testBinary.deletingLastPathComponent().appendingPathComponent("conveyor").path
    }

    /// Runs the executable to the end on a thread of its own (never blocking Swift's cooperative pool, which a
    /// waiting test would starve).
    static func run(
        _ arguments: [String],
        environment: [String: String] = [:],
        input: String = ""
    ) async throws -> Output {
        var merged = ProcessInfo.processInfo.environment
        merged["REDIS_URL"] = nil
        for (key, value) in environment { merged[key] = value }
        let ended = try await ChildProcess().run([path] + arguments, input: Array(input.utf8), environment: merged)
        return Output(
            status: ended.status,
            standardOutput: String(decoding: ended.output, as: UTF8.self),
            standardError: String(decoding: ended.errorTail, as: UTF8.self)
        )
    }
}

@Suite("conveyor executable", .timeLimit(.minutes(2)))
struct CommandLineTests {
    @Test func printsItsVersion() async throws {
        let result = try await ConveyorExecutable.run(["--version"])
        #expect(result.status == 0)
        #expect(result.standardOutput.hasPrefix("conveyor "))
    }

    @Test func pingsARealServer() async throws {
        try await withRedisServer { server in
            let result = try await ConveyorExecutable.run(["ping", "--redis", "redis://127.0.0.1:\(server.port)"])
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardOutput.hasPrefix("PONG from redis://127.0.0.1:\(server.port) (Redis 7."))
            #expect(result.standardOutput.contains(" ms"))
        }
    }

    @Test func pingReadsREDIS_URLAndPrintsJSON() async throws {
        try await withRedisServer { server in
            let result = try await ConveyorExecutable.run(
                ["ping", "--json"],
                environment: ["REDIS_URL": "redis://127.0.0.1:\(server.port)"]
            )
            #expect(result.status == 0, "\(result.standardError)")
            let object = try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]
            #expect(object?["reply"] as? String == "PONG")
            #expect((object?["version"] as? String)?.hasPrefix("7.") == true)
        }
    }

    @Test func pingWithABadURLFailsWithOneClearLine() async throws {
        let result = try await ConveyorExecutable.run(["ping", "--redis", "redis://:hunter2@host:99999"])
        #expect(result.status == 64)
        #expect(result.standardOutput.isEmpty)
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1)
        #expect(result.standardError.contains("invalid Redis URL 'redis://:***@host:99999'"))
        #expect(result.standardError.contains("port 99999"))
        #expect(!result.standardError.contains("hunter2"))
    }

    @Test func pingAnUnreachableServerFailsWithOneClearLine() async throws {
        let closed = try RefusingPort()
        let port = closed.port
        let result = try await ConveyorExecutable.run(["ping", "--redis", "redis://app:hunter2@127.0.0.1:\(port)"])
        #expect(result.status == 1)
        #expect(result.standardError.split(separator: "\n").count == 1)
        #expect(result.standardError.contains("redis://app:***@127.0.0.1:\(port)"))
        #expect(result.standardError.contains("check that redis-server is running"))
        #expect(!result.standardError.contains("hunter2"))
    }

    @Test func sharedOptionsMayComeBeforeTheCommand() async throws {
        try await withRedisServer { server in
            let url = "redis://127.0.0.1:\(server.port)"
            let stats = try await ConveyorExecutable.run(["--redis", url, "--json", "stats"])
            #expect(stats.status == 0 && stats.standardOutput.hasPrefix("{"), "\(stats.standardError)")
            let list = try await ConveyorExecutable.run([
                "--json", "--redis=\(url)", "--namespace", "x", "schedule", "list",
            ])
            #expect(list.status == 0 && list.standardOutput == "[]\n", "\(list.standardError)")
        }
    }

    /// Every subcommand of `conveyor`, as typed.
    static let commands = [
        "ping", "install", "dev", "enqueue", "enqueue-many", "get", "list", "wait", "cancel", "retry", "remove",
        "pause", "resume", "configure", "stats", "tail", "workers", "cleanup", "schedule add", "schedule list",
        "schedule remove",
        "schedule pause", "schedule resume", "worker", "scheduler", "leader", "demo",
    ]

    @Test func everyCommandHasHelpWithExamples() async throws {
        for command in Self.commands {
            let result = try await ConveyorExecutable.run(command.split(separator: " ").map(String.init) + ["--help"])
            #expect(result.status == 0 && result.standardOutput.contains("Example"), "\(command) --help")
        }
    }

    @Test func demoWithoutItsExampleScriptsSaysWhereToRunIt() async throws {
        // The demo itself runs until Ctrl-C: DevAndDemoTests runs it in the background.
        let result = try await ConveyorExecutable.run(["demo", "--examples", "/nonexistent"])
        #expect(result.status == 64)
        #expect(
            result.standardError.contains("--examples /nonexistent has no send_email.sh"),
            "\(result.standardError)"
        )
    }
}
