import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Runs `redis-cli` against a server, as an operator or another language would (on a thread of its own).
func redisCLI(_ server: LocalRedisServer, _ arguments: [String], input: String? = nil) async throws -> String {
    let ended = try await ChildProcess().run(
        ["redis-cli", "-p", String(server.port), "--no-raw"] + arguments,
        input: Array((input ?? "").utf8),
        environment: ProcessInfo.processInfo.environment
    )
    return String(decoding: ended.output, as: UTF8.self)
}

@Suite("redis-cli and JobQueue read each other's jobs")
struct RedisCLIInteropTests {
    @Test func jobEnqueuedWithRedisCLIIsReadByJobQueue() async throws {
        try await withJobQueue { jobs, server in
            let library = EmbeddedLuaTests.luaFolder
            let source =
                try ["library.lua"]
                + FileManager.default.contentsOfDirectory(atPath: library.appendingPathComponent("functions").path)
                .sorted().map { "functions/\($0)" }
            let text = try source.map { try String(contentsOf: library.appendingPathComponent($0), encoding: .utf8) }
                .joined()
            // As lua/README.md says: cat lua/library.lua lua/functions/*.lua | redis-cli -x FUNCTION LOAD REPLACE
            #expect(
                try await redisCLI(server, ["-x", "FUNCTION", "LOAD", "REPLACE"], input: text).contains("conveyor")
            )
            _ = try await redisCLI(server, ["SADD", "conveyor:queues", "files"])
            let reply = try await redisCLI(
                server,
                [
                    "FCALL", "conveyor_enqueue", "1", "conveyor:{files}", "upload-42", "file_ingestion",
                    #"{"path":"/tmp/a.pdf"}"#, "max_retries", "5", "reference_type", "file_upload", "reference_id",
                    "42",
                    "delay_ms", "60000",
                ]
            )
            #expect(
                reply.contains("\"created\"") && reply.contains("\"files/upload-42\"")
                    && reply.contains("\"scheduled\"")
            )
            let job = try #require(try await jobs.get("files/upload-42"))
            #expect(job.type == "file_ingestion" && job.status == .scheduled && job.maxRetries == 5)
            #expect(job.payload == #"{"path":"/tmp/a.pdf"}"#)
            #expect(
                try await jobs.jobs(referenceType: "file_upload", referenceID: "42").map(\.id) == ["files/upload-42"]
            )
            #expect(try await jobs.queues() == ["files"])
        }
    }

    @Test func jobEnqueuedByJobQueueIsReadWithHGETALL() async throws {
        try await withJobQueue { jobs, server in
            let enqueued = try await jobs.enqueue(
                "send_email",
                payload: Email(to: "b@example.com"),
                options: JobOptions(queue: "emails", priority: 7)
            )
            let localID = String(enqueued.id.dropFirst("emails/".count))
            let output = try await redisCLI(server, ["--raw", "HGETALL", "conveyor:{emails}:job:\(localID)"])
            let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var fields: [String: String] = [:]
            for index in stride(from: 0, to: lines.count - 1, by: 2) { fields[lines[index]] = lines[index + 1] }
            // The key names the job; only fields that differ from their defaults are stored.
            #expect(fields["id"] == nil && fields["max_retries"] == nil)
            #expect(fields["type"] == "send_email")
            #expect(fields["status"] == "pending")
            #expect(fields["priority"] == "7")
            #expect(fields["payload"] == #"{"to":"b@example.com"}"#)
            #expect(Int(fields["created_at"] ?? "") ?? 0 > 1_700_000_000_000)
        }
    }
}
