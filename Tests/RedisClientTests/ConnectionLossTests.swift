import ConveyorTesting
import Foundation
import LocalRedis
import Synchronization
import Testing

@testable import RedisClient

@Suite("connections the server closes", .timeLimit(.minutes(2)))
struct ConnectionLossTests {
    /// At `maxclients` the server accepts, writes an error and closes. The handshake once reconnected from inside
    /// itself, without bound, and returned a context the nested call had freed.
    @Test(arguments: [nil, "conveyor-test"])
    func atMaxclientsACallFailsOnceWithAnErrorNamingTheLimit(clientName: String?) async throws {
        try await withRedisServer { server in
            let admin = server.makeClient(maximumConnections: 1)
            defer { admin.shutdown() }
            #expect(try await admin.send("CONFIG", "SET", "maxclients", 1) == .status("OK"))
            let redis = RedisClient(
                configuration: .init(url: server.url, connectTimeout: .milliseconds(500), clientName: clientName)
            )
            defer { redis.shutdown() }
            for _ in 0..<3 {
                do {
                    let reply = try await redis.send("PING")
                    Issue.record("PING at maxclients answered \(reply)")
                } catch let error as RedisClientError {
                    #expect(error.code == .connectionFailed)
                    #expect(error.message.contains("maxclients"), "\(error.message)")
                    #expect(!error.message.contains("client name"), "\(error.message)")
                    #expect(error.message.components(separatedBy: "Redis at").count == 2, "\(error.message)")
                }
            }
            #expect(try await admin.send("CONFIG", "SET", "maxclients", 100) == .status("OK"))
            #expect(try await redis.send("PING") == .status("PONG"))
        }
    }

    /// Callers with a client name (so every connect has a handshake) keep sending while every connection is
    /// killed every few milliseconds: each call answers or fails with a transport error, and nothing crashes (run
    /// under AddressSanitizer too: see the README).
    @Test func callersSurviveConnectionsKilledEveryFewMilliseconds() async throws {
        try await withRedisServer { server in
            let redis = RedisClient(
                configuration: .init(url: server.url, maximumConnections: 8, clientName: "conveyor-victim")
            )
            defer { redis.shutdown() }
            let killer = server.makeClient(maximumConnections: 1)
            defer { killer.shutdown() }
            let answered = Tally()
            let failed = Tally()
            let clock = ContinuousClock()
            let end = clock.now + .seconds(3)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for caller in 0..<4 {
                    group.addTask {
                        while clock.now < end {
                            do {
                                let reply = try await redis.send("SET", "k\(caller)", "v")
                                #expect(reply == .status("OK"))
                                answered.add()
                            } catch let error as RedisClientError {
                                #expect(
                                    [.connectionLost, .connectionFailed, .timeout].contains(error.code),
                                    "\(error.message)"
                                )
                                failed.add()
                            }
                        }
                    }
                }
                group.addTask {
                    while clock.now < end {
                        _ = try await killer.send("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                        try await Task.sleep(for: .milliseconds(5))
                    }
                }
                try await group.waitForAll()
            }
            print("connection kills: \(answered.count) answered, \(failed.count) failed")
            #expect(answered.count > 0)
            #expect(try await redis.send("PING") == .status("PONG"))
        }
    }
}

/// A count shared by concurrent tasks.
final class Tally: Sendable {
    private let value = Atomic<Int>(0)

    var count: Int { value.load(ordering: .relaxed) }

    func add() {
        value.add(1, ordering: .relaxed)
    }
}
