import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Issue 10, item 28: a client that comes while Redis is still loading its data waits, instead of failing with
/// "Redis refused Conveyor's function library: LOADING…".
@Suite("a Redis that is loading its data", .timeLimit(.minutes(2)))
struct LoadingServerTests {
    @Test func installAndEnqueueWaitWhileTheServerLoads() async throws {
        // key-load-delay (µs per key) makes loading 20 000 keys take about 3 s.
        try await withRedisServer(
            .init(arguments: [
                "--key-load-delay", "150", "--loading-process-events-interval-bytes", "1024", "--enable-debug-command",
                "local",
            ])
        ) {
            server in
            let admin = server.makeClient()
            defer { admin.shutdown() }
            _ = try await admin.send("DEBUG", "POPULATE", 20_000)
            #expect(try await admin.send("SAVE") == .status("OK"))
            try await server.restart()
            let redis = server.makeClient()
            defer { redis.shutdown() }
            let loading = try await redis.send("INFO", "persistence").string ?? ""
            #expect(loading.contains("loading:1"), "the server had finished loading already")
            let jobs = JobQueue(redis: redis)
            #expect(try await jobs.installLibrary() == .installed(version: JobQueue.libraryVersion))
            #expect(try await jobs.enqueue("t", json: "{}").outcome == .created)
            let info = try await redis.send("INFO", "persistence").string ?? ""
            #expect(info.contains("loading:0"))
        }
    }
}
