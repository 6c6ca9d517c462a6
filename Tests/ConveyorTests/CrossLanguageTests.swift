import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// The repository's root folder.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("Other languages enqueue, a Swift worker runs", .timeLimit(.minutes(2)))
struct CrossLanguageTests {
    /// Runs a producer script against a server while a real `conveyor worker` serves `queue`.
    func runProducer(
        _ command: [String],
        queue: String,
        server: LocalRedisServer
    ) async throws
        -> ChildProcess.Termination
    {
        let admin = server.makeClient()
        defer { admin.shutdown() }
        try await JobQueue(redis: admin).installLibrary()
        let worker = WorkerProcess([
            "--redis", "redis://127.0.0.1:\(server.port)", "--queue", queue, "--example-handlers", "--no-scheduler",
        ])
        let ended = try await ChildProcess().run(
            command,
            input: [],
            environment: ProcessInfo.processInfo.environment
        )
        try await worker.signal(SIGTERM)
        #expect(try await worker.exit().status == 0)
        return ended
    }

    @Test func pythonWithRedisPyEnqueuesAndReadsResults() async throws {
        try await withRedisServer { server in
            let ended = try await runProducer(
                [
                    "/usr/bin/python3", repositoryRoot.appendingPathComponent("Tests/Interop/python_producer.py").path,
                    "redis://127.0.0.1:\(server.port)", repositoryRoot.appendingPathComponent("lua").path, "py",
                ],
                queue: "py",
                server: server
            )
            let output = String(decoding: ended.output, as: UTF8.self)
            #expect(ended.status == 0, "\(output)\(String(decoding: ended.errorTail, as: UTF8.self))")
            let summary = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
            #expect(summary?["completed"] as? Int == 4 && summary?["failed"] as? Int == 1)
        }
    }

    @Test func redisCLIAloneEnqueuesAndReadsResults() async throws {
        try await withRedisServer { server in
            let ended = try await runProducer(
                [
                    "/bin/sh", repositoryRoot.appendingPathComponent("Tests/Interop/redis_cli_producer.sh").path,
                    String(server.port), repositoryRoot.appendingPathComponent("lua").path, "sh",
                ],
                queue: "sh",
                server: server
            )
            #expect(
                ended.status == 0 && String(decoding: ended.output, as: UTF8.self) == "ok\n",
                "\(String(decoding: ended.errorTail, as: UTF8.self))"
            )
        }
    }
}
