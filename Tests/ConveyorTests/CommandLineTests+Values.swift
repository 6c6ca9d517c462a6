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

extension CommandLineTests {
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
}
