import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import RedisClient

@Suite("RedisConnection against a real redis-server")
struct RedisConnectionTests {
    @Test func everyReplyType() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient()
            #expect(try await redis.send("SET", "k", "v") == .status("OK"))
            #expect(try await redis.send("GET", "k") == .bulkString(Array("v".utf8)))
            #expect(try await redis.send("GET", "missing") == .null)
            #expect(try await redis.send("INCRBY", "n", 41) == .integer(41))
            #expect(try await redis.send("INCR", "n").int == 42)
            let error = try await redis.send("NOSUCHCOMMAND", "x")
            #expect(error.errorMessage?.hasPrefix("ERR unknown command") == true)
            _ = try await redis.send("RPUSH", "list", "a", "b")
            #expect(try await redis.send("LRANGE", "list", 0, -1) == .array([.bulkString([97]), .bulkString([98])]))
            #expect(try await redis.send("LRANGE", "nothing", 0, -1) == .array([]))
            #expect(try await redis.send("SET", "empty", "") == .status("OK"))
            #expect(try await redis.send("GET", "empty") == .bulkString([]))
            let nested = try await redis.evaluate(RedisScript("return {1, {'a', {2}}, redis.status_reply('fine')}"))
            #expect(
                nested == .array([.integer(1), .array([.bulkString([97]), .array([.integer(2)])]), .status("fine")])
            )
            #expect(try await redis.send("BLPOP", "none", "0.01") == .null)
        }
    }

    @Test func binarySafety() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient()
            let key: [UInt8] = [0x6B, 0x00, 0xFF]
            let value: [UInt8] = [0x00, 0xC3, 0x28, 0xFF, 0xFE, 0x0D, 0x0A, 0x00, 0x24, 0x2A]
            let stored = try await redis.send("SET", key, value)
            let read = try await redis.send("GET", key)
            let length = try await redis.send("STRLEN", key)
            #expect(stored == .status("OK"))
            #expect(read == .bulkString(value))
            #expect(length == .integer(value.count))
            var large = [UInt8](repeating: 0, count: 1_000_000)
            for index in large.indices { large[index] = UInt8(truncatingIfNeeded: index &* 31) }
            _ = try await redis.send("SET", "large", large)
            let readLarge = try await redis.send("GET", "large")
            #expect(readLarge == .bulkString(large))
            let echoed = try await redis.send("ECHO", "héllo ✓")
            #expect(echoed.string == "héllo ✓")
        }
    }

    @Test func tenThousandCommandPipeline() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient()
            let commands = (0..<10_000).map { RedisCommand("RPUSH", "pipe", "item-\($0)") }
            let replies = try await redis.pipeline(commands)
            #expect(replies.count == 10_000)
            #expect(replies == (1...10_000).map { RedisReply.integer($0) })
            #expect(try await redis.send("LINDEX", "pipe", 9_999).string == "item-9999")
            let mixed = try await redis.pipeline([
                RedisCommand("SET", "a", "1"), RedisCommand("BOGUS"), RedisCommand("GET", "a"),
            ])
            #expect(mixed[0] == .status("OK") && mixed[1].errorMessage != nil && mixed[2].string == "1")
        }
    }

    @Test func evalshaRecoversAfterScriptFlush() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient()
            let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
            #expect(try await redis.send("SCRIPT", "LOAD", script.source).string == script.sha1)
            #expect(try await redis.evaluate(script, keys: ["counter"], arguments: [5]) == .integer(5))
            #expect(try await redis.send("SCRIPT", "FLUSH") == .status("OK"))
            #expect(try await redis.send("SCRIPT", "EXISTS", script.sha1) == .array([.integer(0)]))
            #expect(try await redis.evaluate(script, keys: ["counter"], arguments: [5]) == .integer(10))
            #expect(try await redis.send("SCRIPT", "EXISTS", script.sha1) == .array([.integer(1)]))
            let failing = try await redis.evaluate(RedisScript("return redis.error_reply('NOPE bad')"))
            #expect(failing == .error("NOPE bad"))
        }
    }

    @Test func functionLibraryCall() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient()
            let library = RedisFunctionLibrary(
                name: "conveyortest",
                source: """
                    #!lua name=conveyortest
                    redis.register_function('double_it', function(keys, args)
                      return redis.call('INCRBY', keys[1], tonumber(args[1]) * 2)
                    end)
                    """
            )
            let first = try await redis.call("double_it", in: library, keys: ["d"], arguments: [3])
            #expect(first == .integer(6))
            _ = try await redis.send("FUNCTION", "FLUSH")
            let afterFlush = try await redis.call("double_it", in: library, keys: ["d"], arguments: [1])
            #expect(afterFlush == .integer(8))
            let broken = RedisFunctionLibrary(name: "broken", source: "#!lua name=broken\nthis is not lua")
            let refused = try await redis.call("nothing", in: broken)
            #expect(refused.errorMessage != nil)
        }
    }

    @Test func twoHundredConcurrentCallersShareOnePool() async throws {
        try await withRedisServer { server in
            let redis = RedisClient(
                configuration: .init(url: server.url, maximumConnections: 8, clientName: "pool-under-test")
            )
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<200 {
                    group.addTask {
                        for _ in 0..<10 {
                            let reply = try await redis.send("INCR", "shared")
                            #expect(reply.int != nil)
                        }
                        _ = try await redis.send("SADD", "callers", caller)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await redis.send("GET", "shared").int == 2_000)
            #expect(try await redis.send("SCARD", "callers") == .integer(200))
            let clients = try await redis.send("CLIENT", "LIST").string ?? ""
            let pooled = clients.split(separator: "\n").filter { $0.contains("name=pool-under-test") }
            #expect(pooled.count >= 1 && pooled.count <= 8)
        }
    }

    @Test func blpopIsWokenByAnotherClient() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient()
            let waiter = redis.makeDedicatedConnection()
            async let popped = waiter.send(RedisCommand("BLPOP", "jobs", 10), blockingFor: .seconds(10))
            try await eventually("BLPOP to block") { try await blockedClients(redis) == 1 }
            _ = try await redis.send("LPUSH", "jobs", "job-1")
            #expect(try await popped == .array([.bulkString(Array("jobs".utf8)), .bulkString(Array("job-1".utf8))]))
        }
    }

    @Test func blpopTimesOut() async throws {
        try await withRedisServer { server in
            let connection = RedisConnection(configuration: .init(url: server.url, commandTimeout: .milliseconds(500)))
            let clock = ContinuousClock()
            let started = clock.now
            // The command blocks longer than the command timeout: the socket timeout must cover it.
            let reply = try await connection.send(
                RedisCommand("BLPOP", "empty", "0.8"),
                blockingFor: .milliseconds(800)
            )
            #expect(reply == .null)
            #expect(clock.now - started >= .milliseconds(750))
            #expect(try await connection.send("PING") == .status("PONG"))
        }
    }

    @Test func blockingCallIsInterruptedByShutdown() async throws {
        try await withRedisServer { server in
            let observer = server.makeClient()
            let redis = server.makeClient()
            let waiter = redis.makeDedicatedConnection()
            let clock = ContinuousClock()
            let blocked = Task { try await waiter.send(RedisCommand("BLPOP", "never", 0), blockingFor: .zero) }
            try await eventually("BLPOP to block") { try await blockedClients(observer) == 1 }
            let started = clock.now
            redis.shutdown()
            let error = await #expect(throws: RedisClientError.self) { try await blocked.value }
            #expect(error?.code == .closed)
            #expect(clock.now - started < .seconds(2))
            await #expect(throws: RedisClientError.self) { try await redis.send("PING") }
            try await eventually("the server to see the client go") { try await blockedClients(observer) == 0 }
        }
    }

    @Test func blockingCallIsInterruptedByTaskCancellation() async throws {
        try await withRedisServer { server in
            let observer = server.makeClient()
            let waiter = RedisConnection(configuration: .init(url: server.url))
            let blocked = Task { try await waiter.send(RedisCommand("BLPOP", "never", 0), blockingFor: .zero) }
            try await eventually("BLPOP to block") { try await blockedClients(observer) == 1 }
            blocked.cancel()
            let error = await #expect(throws: RedisClientError.self) { try await blocked.value }
            #expect(error?.code == .closed)
            // The connection is usable again: it reconnects.
            #expect(try await waiter.send("PING") == .status("PONG"))
        }
    }

    @Test func reconnectsAfterClientKill() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient(maximumConnections: 1)
            _ = try await redis.send("CLIENT", "SETNAME", "victim")
            let killer = server.makeClient()
            #expect(try await killer.send("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes").int ?? 0 >= 1)
            try await eventually("the kill to reach the socket") {
                (try await killer.send("CLIENT", "LIST").string ?? "").contains("name=victim") == false
            }
            #expect(try await redis.send("PING") == .status("PONG"))
            #expect(try await redis.send("CLIENT", "GETNAME") == .null)
        }
    }

    @Test func reconnectsAfterServerRestartOnTheSamePort() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient(maximumConnections: 4)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { _ = try await redis.send("PING") } }
                try await group.waitForAll()
            }
            let port = server.port
            try await server.restart()
            #expect(server.port == port)
            for _ in 0..<8 {
                #expect(try await redis.send("PING") == .status("PONG"))
            }
        }
    }

    @Test func callDuringRestartWaitsForTheServerWithinTheConnectTimeout() async throws {
        try await withRedisServer { server in
            let redis = RedisClient(configuration: .init(url: server.url, connectTimeout: .seconds(5)))
            _ = try await redis.send("PING")
            await server.kill()
            async let reply = redis.send("PING")
            try await Task.sleep(for: .milliseconds(100))
            try await server.restart()
            #expect(try await reply == .status("PONG"))
        }
    }

    @Test func aclUserRightAndWrongPassword() async throws {
        try await withRedisServer { server in
            let admin = server.makeClient()
            #expect(
                try await admin.send("ACL", "SETUSER", "alice", "on", ">wonderland", "~*", "+@all") == .status("OK")
            )
            let alice = try RedisClient(url: "redis://alice:wonderland@127.0.0.1:\(server.port)")
            #expect(try await alice.send("ACL", "WHOAMI").string == "alice")
            let intruder = try RedisClient(url: "redis://alice:guess@127.0.0.1:\(server.port)")
            let error = try await #require(throws: RedisClientError.self) { try await intruder.send("PING") }
            #expect(error.code == .connectionFailed)
            #expect(error.message.contains("AUTH"))
            #expect(error.message.contains("redis://alice:***@127.0.0.1:\(server.port)"))
            #expect(!error.message.contains("guess"))
        }
    }

    @Test func passwordOnlyAuthSelectAndClientName() async throws {
        try await withRedisServer(.init(arguments: ["--requirepass", "s3cret"])) { server in
            var configuration = RedisClient.Configuration(
                url: try RedisURL("redis://:s3cret@127.0.0.1:\(server.port)/3")
            )
            configuration.clientName = "conveyor-test"
            let redis = RedisClient(configuration: configuration)
            #expect(try await redis.send("CLIENT", "GETNAME").string == "conveyor-test")
            #expect(try await redis.send("SET", "in-db-3", "yes") == .status("OK"))
            let info = try await redis.send("CLIENT", "INFO").string ?? ""
            #expect(info.contains("db=3"))
            let noPassword = try RedisClient(url: "redis://127.0.0.1:\(server.port)")
            #expect(try await noPassword.send("PING").errorMessage?.hasPrefix("NOAUTH") == true)
            let badDatabase = try RedisClient(url: "redis://:s3cret@127.0.0.1:\(server.port)/99")
            let error = try await #require(throws: RedisClientError.self) { try await badDatabase.send("PING") }
            #expect(error.message.contains("SELECT"))
        }
    }

    @Test func unixSocket() async throws {
        try await withRedisServer(.init(unixSocket: true)) { server in
            let redis = try RedisClient(url: "unix://\(server.socketPath)?db=2")
            #expect(try await redis.send("SET", "over-unix", "1") == .status("OK"))
            let tcp = try RedisClient(url: "redis://127.0.0.1:\(server.port)/2")
            #expect(try await tcp.send("GET", "over-unix").string == "1")
        }
    }

    @Test func unreachableServerFailsFastWithAClearError() async throws {
        let port = try LocalRedisServer.freeLoopbackPort()
        let redis = try RedisClient(url: "redis://:pw@127.0.0.1:\(port)")
        let error = try await #require(throws: RedisClientError.self) { try await redis.send("PING") }
        #expect(error.code == .connectionFailed)
        #expect(error.message.contains("redis://:***@127.0.0.1:\(port)"))
        #expect(error.message.contains("refused"))
        #expect(error.message.contains("check that redis-server is running"))
    }

    @Test func serverThatNeverAnswersTimesOut() async throws {
        // A socket that listens but never accepts: the kernel completes the handshake, nothing ever replies.
        let listener = try SilentListener()
        defer { listener.close() }
        let redis = RedisClient(
            configuration: .init(
                url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: listener.port)),
                connectTimeout: .milliseconds(300),
                commandTimeout: .milliseconds(300)
            )
        )
        let clock = ContinuousClock()
        let started = clock.now
        let error = try await #require(throws: RedisClientError.self) { try await redis.send("PING") }
        #expect(error.code == .timeout)
        #expect(error.message.contains("127.0.0.1:\(listener.port)"))
        #expect(clock.now - started < .seconds(3))
    }

    @Test func deadServerFailsWithinTheTimeout() async throws {
        try await withRedisServer { server in
            let redis = RedisClient(configuration: .init(url: server.url, connectTimeout: .milliseconds(400)))
            _ = try await redis.send("PING")
            await server.kill()
            let clock = ContinuousClock()
            let started = clock.now
            let error = try await #require(throws: RedisClientError.self) { try await redis.send("PING") }
            #expect([.connectionFailed, .connectionLost].contains(error.code))
            #expect(error.message.contains("127.0.0.1:\(server.port)"))
            #expect(clock.now - started < .seconds(3))
        }
    }
}
