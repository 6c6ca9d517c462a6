import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import RedisClient

/// Issue 12: Sentinel discovery, following a failover, and the refusals that mean "not now" rather than "wrong".
@Suite("Redis Sentinel and failover-aware errors", .timeLimit(.minutes(3)))
struct SentinelTests {
    @Test func commandsGoToThePrimaryAndFollowASentinelFailoverWithoutAnErrorReply() async throws {
        try await withSentinelGroup { group in
            let redis = RedisClient(configuration: .init(url: group.url, failoverTimeout: .seconds(60)))
            defer { redis.shutdown() }
            let first = try #require(try await group.primary())
            #expect(try await port(of: redis) == first.port)
            let blocked = RedisConnection(configuration: .init(url: group.url, failoverTimeout: .seconds(60)))
            defer { blocked.close() }
            let popped = Task { try await blocked.send(RedisCommand("BLPOP", "wake", 60), blockingFor: .seconds(60)) }
            try await eventually("the BLPOP to block") { try await redis.send("LLEN", "wake") == .integer(0) && true }
            let sentinel = RedisConnection(configuration: .init(url: group.sentinels[0].url))
            defer { sentinel.close() }
            #expect(try await sentinel.send("SENTINEL", "FAILOVER", group.options.masterName) == .status("OK"))
            // Every write in the failover gets an integer: none sees READONLY as a value.
            try await eventually(timeout: .seconds(60), "the client to reach the new primary") {
                let reply = try await redis.send("INCR", "counter")
                #expect(reply.int != nil, "a write during the failover got \(reply)")
                return try await port(of: redis) != first.port
            }
            let second = try #require(try await group.primary())
            #expect(second.port != first.port)
            #expect(try await port(of: redis) == second.port)
            // The demotion ended the blocked BLPOP: with UNBLOCKED it is sent again to the new primary; when the
            // Sentinel killed its connection it fails as lost (it may have popped), and the next BLPOP on the same
            // connection goes to the new primary.
            _ = try await redis.send("RPUSH", "wake", "token")
            switch await popped.result {
            case .success(let reply):
                #expect(reply.array?.last?.string == "token")
            case .failure(let error):
                #expect((error as? RedisClientError)?.code == .connectionLost, "\(error)")
                let again = try await blocked.send(RedisCommand("BLPOP", "wake", 10), blockingFor: .seconds(10))
                #expect(again.array?.last?.string == "token")
            }
        }
    }

    @Test func aPlainURLAtAReplicaFailsWithUnavailableNamingTheCauseAfterTheFailoverTimeout() async throws {
        try await withSentinelGroup(.init(replicas: 1, sentinels: 1)) { (group) async throws in
            let replica = group.servers[1]
            let redis = RedisClient(configuration: .init(url: replica.url, failoverTimeout: .milliseconds(600)))
            defer { redis.shutdown() }
            #expect(try await redis.send("GET", "k") == .null, "reads work on a replica")
            let clock = ContinuousClock()
            let started = clock.now
            await #expect {
                _ = try await redis.send("SET", "k", "v")
            } throws: { error in
                let error = error as? RedisClientError
                return error?.code == .unavailable && error?.message.contains("read-only replica") == true
                    && error?.message.contains("READONLY") == true && error?.message.contains("redis+sentinel") == true
            }
            #expect(clock.now - started >= .milliseconds(500))
        }
    }

    @Test func aCommandRefusedWithBUSYWaitsForTheScriptToEndAndThenRuns() async throws {
        try await withRedisServer(.init(arguments: ["--busy-reply-threshold", "100"])) { server in
            let looping = RedisConnection(configuration: .init(url: server.url, commandTimeout: .seconds(30)))
            defer { looping.close() }
            let script = Task { try await looping.send("EVAL", "local i = 0 while true do i = i + 1 end", 0) }
            let redis = RedisClient(configuration: .init(url: server.url, failoverTimeout: .seconds(30)))
            defer { redis.shutdown() }
            // failoverTimeout zero: the probe sees BUSY at once instead of waiting it out.
            let killer = RedisConnection(configuration: .init(url: server.url, failoverTimeout: .zero))
            defer { killer.close() }
            try await eventually("the script to make the server busy") {
                do {
                    _ = try await killer.send("PING")
                    return false
                } catch let error as RedisClientError {
                    return error.code == .unavailable && error.message.contains("busy running a script")
                }
            }
            let write = Task { try await redis.send("SET", "after", "script") }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await killer.send("SCRIPT", "KILL") == .status("OK"))
            #expect(try await write.value == .status("OK"))
            _ = try? await script.value
        }
    }

    @Test func noReachableSentinelIsAClearErrorWithinTheConnectTimeout() async throws {
        let ports = try (0..<2).map { _ in try LocalRedisServer.freeLoopbackPort() }
        let url = try RedisURL("redis+sentinel://127.0.0.1:\(ports[0]),127.0.0.1:\(ports[1])/conveyor")
        let redis = RedisClient(configuration: .init(url: url, connectTimeout: .seconds(1)))
        defer { redis.shutdown() }
        let clock = ContinuousClock()
        let started = clock.now
        await #expect {
            _ = try await redis.send("PING")
        } throws: { error in
            let error = error as? RedisClientError
            return error?.code == .connectionFailed
                && error?.message.contains("cannot find the primary of 'conveyor'") == true
                && error?.message.contains("127.0.0.1:\(ports[0])") == true
                && error?.message.contains("127.0.0.1:\(ports[1])") == true
                && error?.message.contains("check the Sentinel addresses") == true
        }
        #expect(clock.now - started < .seconds(3))
    }

    @Test func anUnknownMasterNameIsAClearError() async throws {
        try await withSentinelGroup(.init(replicas: 0, sentinels: 1)) { (group) async throws in
            let sentinel = try #require(group.url.endpoint.sentinelAddresses.first)
            let url = try RedisURL("redis+sentinel://\(sentinel)/no-such-group")
            let redis = RedisClient(configuration: .init(url: url, connectTimeout: .seconds(1)))
            defer { redis.shutdown() }
            await #expect {
                _ = try await redis.send("PING")
            } throws: { error in
                let error = error as? RedisClientError
                return error?.code == .connectionFailed
                    && error?.message.contains("knows no master group 'no-such-group'") == true
                    && error?.message.contains("SENTINEL MASTERS") == true
            }
        }
    }

    @Test func aSentinelURLThatNamesARedisServerInsteadIsAClearError() async throws {
        try await withRedisServer { (server) async throws in
            let url = try RedisURL("redis+sentinel://127.0.0.1:\(server.port)/conveyor")
            let redis = RedisClient(configuration: .init(url: url, connectTimeout: .seconds(1)))
            defer { redis.shutdown() }
            await #expect {
                _ = try await redis.send("PING")
            } throws: { error in
                (error as? RedisClientError)?.message.contains("is this a Sentinel") == true
            }
        }
    }
}

/// The port of the server a client's connection is on.
private func port(of redis: RedisClient) async throws -> Int? {
    let info = try await redis.send("INFO", "server").string ?? ""
    for line in info.split(separator: "\r\n") where line.hasPrefix("tcp_port:") {
        return Int(line.dropFirst("tcp_port:".count))
    }
    return nil
}

extension RedisURL.Endpoint {
    fileprivate var sentinelAddresses: [RedisURL.Sentinel.Address] {
        guard case .sentinel(let sentinel) = self else { return [] }
        return sentinel.addresses
    }
}
