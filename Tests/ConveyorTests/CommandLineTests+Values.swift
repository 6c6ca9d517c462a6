import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import Conveyor

extension ConveyorExecutable {
    /// Runs the executable like ``run(_:environment:input:)``, but kills it after `limit`: a command that should
    /// refuse its input at once must fail the test, not hang the suite, when it runs instead.
    static func runRefusing(
        _ arguments: [String],
        input: String = "",
        limit: Duration = .seconds(20)
    ) async throws -> Output {
        var environment = ProcessInfo.processInfo.environment
        environment["REDIS_URL"] = nil
        let child = ChildProcess()
        let killer = Task {
            try await Task.sleep(for: limit)
            child.kill()
        }
        defer { killer.cancel() }
        let ended = try await child.run([path] + arguments, input: Array(input.utf8), environment: environment)
        return Output(
            status: ended.status,
            standardOutput: String(decoding: ended.output, as: UTF8.self),
            standardError: String(decoding: ended.errorTail, as: UTF8.self)
        )
    }
}

/// Values out of range: each is refused with exit 64 and a message naming the option, before any connection.
private let outOfRange: [(arguments: [String], option: String)] = [
    (["enqueue", "t", "--in", "1e30s"], "--in"),
    (["enqueue", "t", "--in", "3651d"], "--in"),
    (["enqueue", "t", "--timeout", "1e30s"], "--timeout"),
    (["enqueue", "t", "--timeout", "0s"], "--timeout"),
    (["enqueue", "t", "--priority", "9223372036854775807"], "--priority"),
    (["enqueue", "t", "--priority", "101"], "--priority"),
    (["enqueue", "t", "--max-retries", "9223372036854775807"], "--max-retries"),
    (["wait", "default/x", "--timeout", "1e30s"], "--timeout"),
    (["list", "--limit", "9223372036854775807"], "--limit"),
    (["cleanup", "--older-than", "1e30d"], "--older-than"),
    (["schedule", "add", "n", "t", "--every", "1e30s"], "--every"),
    (["ping", "--redis-timeout", "1e300"], "--redis-timeout"),
    (["--redis-timeout", "1e300", "stats"], "--redis-timeout"),
    (["stats", "--redis-timeout", "0.0000001"], "--redis-timeout"),
    (["stats", "--history", "0"], "--history"),
    (["stats", "--history", "1441"], "--history"),
    (["worker", "--example-handlers", "--lease", "1e30s"], "--lease"),
    (["worker", "--example-handlers", "--heartbeat", "1e30s"], "--heartbeat"),
    (["worker", "--example-handlers", "--reclaim", "1e30s"], "--reclaim"),
    (["worker", "--example-handlers", "--grace", "1e30s"], "--grace"),
    (["worker", "--example-handlers", "--timeout", "1e30s"], "--timeout"),
    (["worker", "--example-handlers", "--kill-grace", "1e30s"], "--kill-grace"),
    (["worker", "--example-handlers", "--scheduler-lease", "1e30s"], "--scheduler-lease"),
    (["worker", "--example-handlers", "--concurrency", "9223372036854775807"], "--concurrency"),
    (["worker", "--example-handlers", "--max-stalls", "9223372036854775807"], "--max-stalls"),
    (["scheduler", "--lease", "1e30s"], "--lease"),
    (["demo", "--summary-every", "1e30s"], "--summary-every"),
    (["dev", "--lease", "1e30s"], "--lease"),
    (["dev", "--port", "9223372036854775807"], "--port"),
]

extension CommandLineTests {
    @Test(arguments: outOfRange)
    func hugeAndTinyValuesAreRefusedBeforeConnecting(_ arguments: [String], option: String) async throws {
        let closed = try RefusingPort()
        // demo and dev take no --redis-timeout; every command here takes --redis (dev ignores it: it is refused
        // before it starts a server).
        let redis = arguments.first == "dev" ? [] : ["--redis", "redis://127.0.0.1:\(closed.port)"]
        let result = try await ConveyorExecutable.runRefusing(arguments + redis)
        #expect(result.status == 64, "\(arguments): \(result.standardError)")
        #expect(result.standardError.contains("\(option) must be"), "\(arguments): \(result.standardError)")
        #expect(!result.standardError.contains("cannot connect"), "\(arguments): \(result.standardError)")
    }

    @Test func enqueueManyRefusesHugeDurationsOnALine() async throws {
        let closed = try RefusingPort()
        for field in ["in", "timeout"] {
            let result = try await ConveyorExecutable.runRefusing(
                ["enqueue-many", "--file", "-", "--redis", "redis://127.0.0.1:\(closed.port)"],
                input: #"{"type":"t","\#(field)":"1e30s"}"# + "\n"
            )
            #expect(result.status == 64, "\(result.standardError)")
            #expect(
                result.standardError.contains("standard input line 1: \"\(field)\" must be"),
                "\(result.standardError)"
            )
        }
    }

    @Test func workerTimingsAreCheckedBeforeAnythingIsWritten() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let before = try await datasetDigest(jobs)
            let cases: [(arguments: [String], message: String)] = [
                (["--reclaim", "0"], "--reclaim must be at least 100ms"),
                (["--lease", "0"], "--lease must be at least 1s"),
                (["--lease", "1ms"], "--lease must be at least 1s"),
                (["--lease", "999d"], "--lease must be at most 1d"),
                (["--heartbeat", "0"], "--heartbeat must be at least 100ms"),
                (["--heartbeat", "30s"], "--heartbeat must be shorter than --lease (30s)"),
                (["--lease", "5s", "--heartbeat", "1m"], "--heartbeat must be shorter than --lease (5s)"),
                (["--scheduler-lease", "0"], "--scheduler-lease must be at least 1s"),
                (["--concurrency", "0"], "--concurrency must be from 1 to 10000"),
            ]
            for (arguments, message) in cases {
                let result = try await ConveyorExecutable.runRefusing(
                    ["worker", "--example-handlers", "--no-scheduler"] + arguments + redis,
                    limit: .seconds(5)
                )
                #expect(result.status == 64, "\(arguments): \(result.standardError)")
                #expect(result.standardError.contains(message), "\(arguments): \(result.standardError)")
            }
            #expect(try await datasetDigest(jobs) == before, "a refused worker wrote to Redis")
        }
    }

    @Test func execRefusesAJobTypeThatCanNeverBeEnqueued() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let before = try await datasetDigest(jobs)
            for (exec, shown) in [(";rm -rf x=true", ";rm -rf x"), ("a b=true", "a b"), ("é=true", "é")] {
                let result = try await ConveyorExecutable.runRefusing(
                    ["worker", "--no-scheduler", "--exec", exec] + redis,
                    limit: .seconds(10)
                )
                #expect(result.status == 64, "\(exec): \(result.standardError)")
                #expect(
                    result.standardError.contains("--exec '\(exec)': the job type '\(shown)' must be 1-128"),
                    "\(exec): \(result.standardError)"
                )
            }
            let twice = try await ConveyorExecutable.runRefusing(
                ["worker", "--no-scheduler", "--exec", "t=true", "--exec", "t=false"] + redis,
                limit: .seconds(10)
            )
            #expect(
                twice.status == 64 && twice.standardError.contains("--exec t given twice"),
                "\(twice.standardError)"
            )
            #expect(try await datasetDigest(jobs) == before, "a refused worker wrote to Redis")
        }
    }

    @Test func negativeNumbersTakeTheDocumentedForm() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let enqueued = try await ConveyorExecutable.run(
                ["enqueue", "t", "--priority", "-5", "--id", "low", "--queue", "q"] + redis
            )
            #expect(enqueued.status == 0, "\(enqueued.standardError)")
            #expect(try await jobs.get("q/low")?.priority == -5)
            let glued = try await ConveyorExecutable.run(["enqueue", "t", "--priority=-7", "--id", "lower"] + redis)
            #expect(glued.status == 0, "\(glued.standardError)")
            #expect(try await jobs.get("default/lower")?.priority == -7)
            // A negative value where none is allowed says what is allowed, not "Missing value".
            let before = try await datasetDigest(jobs)
            for (arguments, message) in [
                (["enqueue", "t", "--priority", "-500"], "--priority must be from -100 to 100"),
                (["enqueue", "t", "--max-retries", "-1"], "--max-retries must be from 0 to 10000"),
                (["list", "--limit", "-3"], "--limit must be from 1 to 10000"),
                (["enqueue", "t", "--in", "-5s"], "The value '-5s' is invalid for '--in <duration>'"),
            ] {
                let result = try await ConveyorExecutable.run(arguments + redis)
                #expect(result.status == 64, "\(arguments): \(result.standardError)")
                #expect(result.standardError.contains(message), "\(arguments): \(result.standardError)")
            }
            #expect(try await datasetDigest(jobs) == before)
        }
    }

    @Test func helpShowsDefaultsAsTheyAreWritten() async throws {
        for command in Self.commands {
            let result = try await ConveyorExecutable.run(command.split(separator: " ").map(String.init) + ["--help"])
            #expect(result.status == 0, "\(command) --help")
            // Help wraps lines: read it as one line.
            let help = result.standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            for match in help.matches(of: #/\(default: ([^)]*)/#) {
                let value = String(match.output.1)
                #expect(
                    value.firstMatch(of: #/^[A-Za-z_.]+\(|Optional|Argument/#) == nil,
                    "\(command) --help shows a default as a Swift value: \(value)"
                )
            }
            #expect(!help.contains("DurationArgument"), "\(command) --help: \(help)")
        }
        let worker = try await ConveyorExecutable.run(["worker", "--help"])
        let help = worker.standardOutput.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for shown in ["(default: 30s)", "(default: 15s)", "(default: 25s)", "(default: 5s)", "(default: 10s)"] {
            #expect(help.contains(shown), "worker --help lacks \(shown): \(help)")
        }
        let cleanup = try await ConveyorExecutable.run(["cleanup", "--help"])
        #expect(cleanup.standardOutput.contains("(default: 7d)"), "\(cleanup.standardOutput)")
        let wait = try await ConveyorExecutable.run(["wait", "--help"])
        #expect(wait.standardOutput.contains("(default: 1m)"), "\(wait.standardOutput)")
    }
}
