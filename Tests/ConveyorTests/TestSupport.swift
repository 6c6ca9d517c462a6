import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Runs `body` with a private redis-server and a `JobQueue` on it.
func withJobQueue(
    _ configuration: JobQueue.Configuration = JobQueue.Configuration(),
    _ body: (JobQueue, LocalRedisServer) async throws -> Void
) async throws {
    try await withRedisServer(.init(arguments: ["--enable-debug-command", "local"])) { server in
        let redis = server.makeClient()
        defer { redis.shutdown() }
        let jobs = JobQueue(redis: redis, configuration: configuration)
        // As an operator does before starting producers and workers (conveyor install).
        try await jobs.installLibrary()
        try await body(jobs, server)
    }
}

/// A digest of the whole dataset: equal before and after means nothing stored changed.
func datasetDigest(_ queue: JobQueue) async throws -> String {
    try await queue.redis.send("DEBUG", "DIGEST").string ?? ""
}

/// Asserts that `operation` throws a `ConveyorError` with `code` whose message contains `mentions`, and that the
/// dataset is unchanged afterwards.
func expectRejected(
    _ queue: JobQueue,
    _ code: ConveyorError.Code,
    mentioning mentions: String,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ operation: () async throws -> Void
) async throws {
    let before = try await datasetDigest(queue)
    do {
        try await operation()
        Issue.record(
            "expected a \(code) error mentioning '\(mentions)', but the call succeeded",
            sourceLocation: sourceLocation
        )
    } catch let error as ConveyorError {
        #expect(error.code == code, "\(error.message)", sourceLocation: sourceLocation)
        #expect(
            error.message.contains(mentions),
            "'\(error.message)' does not mention '\(mentions)'",
            sourceLocation: sourceLocation
        )
    }
    let after = try await datasetDigest(queue)
    #expect(before == after, "the dataset changed", sourceLocation: sourceLocation)
}

/// The HGETALL of a job, as `redis-cli` shows it.
func rawJob(_ queue: JobQueue, _ id: String) async throws -> [String: String] {
    let (name, localID) = try queue.split(id)
    let reply = try await queue.redis.send("HGETALL", queue.keys.job(name, localID))
    return JobQueue.fields(reply.array ?? [])
}

struct Email: Codable, Sendable, Equatable {
    var to: String
}

/// A loopback port held by a bound socket that does not listen: connecting is refused, and no other test's server can
/// take the port meanwhile (a port merely found free can be).
final class RefusingPort: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard bound else { throw WaitTimeout(what: "a bound loopback socket") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        _ = close(descriptor)
    }
}
