import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Payloads are stored byte for byte, must be UTF-8, and are bounded by a queue setting no producer can raise
/// (issue 10, item 10).
@Suite("payloads", .timeLimit(.minutes(2)))
struct PayloadTests {
    static func write(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("payload-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func enqueueManyStoresThePayloadExactlyAsWritten() async throws {
        try await withJobQueue { jobs, server in
            let payload = #"{"b":1.0,"a":"x\/y/z","n":[1e2, -0.50],"s":"é\u00e9"}"#
            let file = try Self.write(Array(#"{"type":"t","id":"exact","payload":\#(payload)}"#.utf8) + [10])
            let result = try await ConveyorExecutable.run([
                "enqueue-many", "--file", file, "--redis", "redis://127.0.0.1:\(server.port)",
            ])
            #expect(result.status == 0, "\(result.standardError)")
            #expect(try await rawJob(jobs, "default/exact")["payload"] == payload)
        }
    }

    @Test func payloadsThatAreNotUTF8AreRefusedEverywhere() async throws {
        try await withJobQueue { jobs, server in
            let url = "redis://127.0.0.1:\(server.port)"
            let before = try await datasetDigest(jobs)
            let good = Array(#"{"type":"t","payload":{"n":1}}"#.utf8) + [10]
            let bad = Array(#"{"type":"t","payload":{"s":""#.utf8) + [0xC3, 0x28] + Array(#""}}"#.utf8) + [10]
            let many = try await ConveyorExecutable.run([
                "enqueue-many", "--file", try Self.write(good + bad), "--redis", url,
            ])
            #expect(many.status == 64, "\(many.standardError)")
            #expect(
                many.standardError.contains("line 2") && many.standardError.contains("UTF-8"),
                "\(many.standardError)"
            )
            let single = try await ConveyorExecutable.run([
                "enqueue", "t", "--payload-file", try Self.write(Array(#"{"s":""#.utf8) + [0xFF] + Array(#""}"#.utf8)),
                "--redis", url,
            ])
            #expect(single.status == 64 && single.standardError.contains("UTF-8"), "\(single.standardError)")
            #expect(try await datasetDigest(jobs) == before)
            // Another language's producer, straight to the function.
            let raw: [UInt8] = Array(#"{"s":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8)
            let reply = try await jobs.redis.send(
                RedisCommand("FCALL", ["conveyor_enqueue", 1, "conveyor:{default}", "x", "t"] + [raw])
            )
            #expect(reply.errorMessage?.contains("not valid UTF-8 (at byte 6)") == true, "\(reply)")
            #expect(try await datasetDigest(jobs) == before)
        }
    }

    @Test func thePayloadLimitIsAQueueSettingNoProducerCanRaise() async throws {
        try await withJobQueue { jobs, _ in
            let twoMiB = #"{"s":""# + String(repeating: "a", count: 2 << 20) + #""}"#
            let asked = try await jobs.redis.send(
                "FCALL",
                "conveyor_enqueue",
                1,
                "conveyor:{default}",
                "big",
                "t",
                twoMiB,
                "max_payload_bytes",
                536_870_912
            )
            #expect(asked.errorMessage?.contains("over the limit of 1048576 bytes of queue \"default\"") == true)
            try await jobs.setMaximumPayloadBytes(4 << 20)
            let roomy = JobQueue(redis: jobs.redis, configuration: .init(maximumPayloadBytes: 8 << 20))
            #expect(try await roomy.enqueue("t", json: twoMiB).outcome == .created)
            try await jobs.setMaximumPayloadBytes(100)
            try await expectRejected(roomy, .invalidArgument, mentioning: "over the limit of 100 bytes") {
                _ = try await roomy.enqueue("t", json: #"{"s":"\#(String(repeating: "b", count: 200))"}"#)
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: "512 MiB") {
                try await jobs.setMaximumPayloadBytes(0)
            }
        }
    }
}
