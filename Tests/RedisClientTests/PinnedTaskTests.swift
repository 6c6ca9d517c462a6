import ConveyorTesting
import LocalRedis
import Testing

@testable import RedisClient

@Suite("RedisConnection.withPinnedTask")
struct PinnedTaskTests {
    @Test func commandsRunInlineOnTheConnectionThreadAndInterleaveWithOtherCallers() async throws {
        try await withRedisServer { server in
            let connection = RedisConnection(configuration: .init(url: server.url))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await connection.withPinnedTask {
                        for _ in 0..<500 { _ = try await connection.send("INCR", "pinned") }
                        let replies = try await connection.pipeline(
                            (0..<100).map { _ in RedisCommand("INCR", "pinned") }
                        )
                        #expect(replies.last == .integer(600))
                    }
                }
                group.addTask {
                    for _ in 0..<500 { _ = try await connection.send("INCR", "unpinned") }
                }
                try await group.waitForAll()
            }
            let counts = try await connection.pipeline([RedisCommand("GET", "pinned"), RedisCommand("GET", "unpinned")])
            #expect(counts.map(\.int) == [600, 500])
        }
    }

    @Test func pinnedBlockingCallIsInterruptedByCancellation() async throws {
        try await withRedisServer { server in
            let observer = server.makeClient()
            let connection = RedisConnection(configuration: .init(url: server.url))
            let blocked = Task {
                try await connection.withPinnedTask {
                    try await connection.send(RedisCommand("BLPOP", "never", 0), blockingFor: .zero)
                }
            }
            try await eventually("BLPOP to block") { try await blockedClients(observer) == 1 }
            blocked.cancel()
            let error = await #expect(throws: RedisClientError.self) { try await blocked.value }
            #expect(error?.code == .closed)
        }
    }

    @Test func pinnedTaskOnAClosedConnectionStillRunsAndFailsCleanly() async throws {
        try await withRedisServer { server in
            let connection = RedisConnection(configuration: .init(url: server.url))
            _ = try await connection.send("PING")
            connection.close()
            let error = try await #require(throws: RedisClientError.self) {
                try await connection.withPinnedTask { try await connection.send("PING") }
            }
            #expect(error.code == .closed)
        }
    }
}

@Suite("RedisClient.withPinnedConnection")
struct PinnedConnectionTests {
    @Test func everyCommandInTheScopeUsesTheSameConnection() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient(maximumConnections: 1)
            let ids = try await redis.withPinnedConnection {
                var ids: Set<Int> = []
                for _ in 0..<50 { ids.insert(try await redis.send("CLIENT", "ID").int ?? -1) }
                // Nested use of the pool does not wait for the (only) connection it already holds.
                let nested = try await redis.withConnection { try await $0.send("CLIENT", "ID").int ?? -1 }
                ids.insert(nested)
                return ids
            }
            #expect(ids.count == 1)
            // Outside the scope, the pool works as before.
            #expect(try await redis.send("PING") == .status("PONG"))
        }
    }
}
