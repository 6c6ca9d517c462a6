import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Synchronization
import Testing

/// A gate a task waits at until it is opened.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

@Suite("RedisClient's pool: waiting for a connection", .timeLimit(.minutes(1)))
struct RedisClientPoolTests {
    /// Takes the only connection of a one-connection pool and keeps it until `release` opens.
    func holdTheOnlyConnection(_ redis: RedisClient, until release: Gate) async -> Task<Void, any Error> {
        let held = Gate()
        let holder = Task {
            try await redis.withConnection { _ in
                held.open()
                await release.wait()
            }
        }
        await held.wait()
        return holder
    }

    @Test func aCancelledPoolWaitReturnsAtOnceAndTakesNothing() async throws {
        try await withRedisServer { server in
            let redis = RedisClient(
                configuration: .init(url: server.url, maximumConnections: 1, poolTimeout: .seconds(60))
            )
            defer { redis.shutdown() }
            let release = Gate()
            let holder = await holdTheOnlyConnection(redis, until: release)
            let cancelled = Task { try await redis.send("PING") }
            let next = Task { try await redis.send("PING") }
            // Let both calls queue for the connection (a cancel that comes before the wait must end it at once too).
            try await Task.sleep(for: .milliseconds(200))
            let clock = ContinuousClock()
            let started = clock.now
            cancelled.cancel()
            // Without cancellation support the call would wait for the connection: free it after 5 s so that such
            // a failure is reported rather than hanging.
            let fallback = Task {
                try await Task.sleep(for: .seconds(5))
                release.open()
            }
            let outcome = await cancelled.result
            fallback.cancel()
            #expect(clock.now - started < .seconds(2))
            #expect(throws: CancellationError.self) { try outcome.get() }
            // The connection goes to the caller still waiting, not to the cancelled one.
            release.open()
            try await holder.value
            #expect(try await next.value == .status("PONG"))
            #expect(try await redis.send("PING") == .status("PONG"))
        }
    }

    @Test func aPoolWaitTimesOutWithAnErrorNamingThePoolSize() async throws {
        try await withRedisServer { server in
            let redis = RedisClient(
                configuration: .init(url: server.url, maximumConnections: 1, poolTimeout: .milliseconds(300))
            )
            defer { redis.shutdown() }
            let release = Gate()
            let holder = await holdTheOnlyConnection(redis, until: release)
            let clock = ContinuousClock()
            let started = clock.now
            let error = await #expect(throws: RedisClientError.self) { try await redis.send("PING") }
            #expect(clock.now - started >= .milliseconds(250))
            #expect(error?.code == .timeout)
            let message = error?.message ?? ""
            #expect(message.contains("all 1 connection") && message.contains("maximumConnections"), "\(message)")
            release.open()
            try await holder.value
            #expect(try await redis.send("PING") == .status("PONG"))
        }
    }

    @Test func thePoolTimeoutDefaultsToTheConnectPlusTheCommandTimeout() throws {
        let url = try RedisURL("redis://127.0.0.1:6379")
        #expect(RedisClient.Configuration(url: url).poolTimeout == .seconds(7))
        let custom = RedisClient.Configuration(url: url, connectTimeout: .seconds(1), commandTimeout: .seconds(2))
        #expect(custom.poolTimeout == .seconds(3))
    }
}
