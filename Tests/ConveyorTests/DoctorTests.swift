import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Issue 14, item 7: `conveyor doctor` against a good Redis, and against one with each problem an operator must fix.
@Suite("conveyor doctor", .timeLimit(.minutes(2)))
struct DoctorTests {
    /// The finding named `name` (the first one).
    static func check(_ checks: [DoctorCheck], _ name: String) -> DoctorCheck? {
        checks.first { $0.name == name }
    }

    @Test func aGoodRedisPassesEveryCheckAndTheCommandExitsZero() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient()
            defer { redis.shutdown() }
            #expect(try await redis.send("CONFIG", "SET", "appendonly", "yes") == .status("OK"))
            let jobs = JobQueue(redis: redis)
            try await jobs.installLibrary()
            let checks = await jobs.doctor(role: .admin)
            let names = checks.map(\.name)
            // The round trip is timed: on a loaded machine it may warn (over 10 ms), but it never fails.
            #expect(Self.check(checks, "round trip").map { $0.status != .fail } == true, "\(checks)")
            for name in [
                "redis version", "maxmemory-policy", "persistence", "function library", "clock",
                "permissions (admin)",
            ] {
                #expect(Self.check(checks, name)?.status == .pass, "\(name): \(checks)")
            }
            // No replica is a warning, not a failure; nothing fails; no cluster check on a single server.
            #expect(Self.check(checks, "replication")?.status == .warn)
            #expect(!checks.contains { $0.status == .fail }, "\(checks)")
            #expect(!names.contains("cluster"))
            let result = try await ConveyorExecutable.run(["doctor", "--redis", "redis://127.0.0.1:\(server.port)"])
            #expect(result.status == 0, "\(result.standardOutput)\(result.standardError)")
            #expect(result.standardOutput.contains("PASS  maxmemory-policy: noeviction"))
        }
    }

    @Test func evictionNoPersistenceAndAnOldLibraryAreEachCaughtWithTheirFix() async throws {
        try await withRedisServer { server in
            let redis = server.makeClient()
            defer { redis.shutdown() }
            #expect(try await redis.send("CONFIG", "SET", "maxmemory-policy", "allkeys-lru") == .status("OK"))
            // An older release's library: another version behind the same name.
            let old =
                "#!lua name=conveyor_2\nredis.register_function('conveyor_version', function() return 'deadbeef' end)"
            #expect(try await redis.send("FUNCTION", "LOAD", old) == .bulkString(Array("conveyor_2".utf8)))
            let checks = await JobQueue(redis: redis).doctor()
            let eviction = try #require(Self.check(checks, "maxmemory-policy"))
            #expect(eviction.status == .fail && eviction.fix?.contains("noeviction") == true)
            let persistence = try #require(Self.check(checks, "persistence"))
            #expect(persistence.status == .fail && persistence.fix?.contains("appendonly yes") == true)
            let library = try #require(Self.check(checks, "function library"))
            #expect(library.status == .fail && library.detail.contains("deadbeef"))
            #expect(library.fix?.contains("conveyor install") == true)
            // The command says the same, one line each, and exits 1.
            let result = try await ConveyorExecutable.run(
                ["doctor", "--json", "--redis", "redis://127.0.0.1:\(server.port)"]
            )
            #expect(result.status == 1)
            let decoded = try JSONDecoder().decode([DoctorCheck].self, from: Data(result.standardOutput.utf8))
            #expect(
                Set(decoded.filter { $0.status == .fail }.map(\.name))
                    .isSuperset(of: ["maxmemory-policy", "persistence", "function library"])
            )
            // Nothing was changed by the checks.
            #expect(try await redis.send("CONFIG", "GET", "maxmemory-policy").array?.last?.string == "allkeys-lru")
            #expect(try await redis.send("FCALL", "conveyor_version", 0).string == "deadbeef")
        }
    }

    @Test func aCredentialMissingAPermissionIsNamedWithTheFix() async throws {
        try await withRedisServer { server in
            let root = server.makeClient()
            defer { root.shutdown() }
            _ = try await AccessControlTests.applyDocumentedUsers(root)
            try await JobQueue(redis: root).installLibrary()
            // A worker user like the documented one, but without the leader's key.
            let text = try String(contentsOfFile: AccessControlTests.aclFile, encoding: .utf8)
            let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("user conveyor-worker ") })
            var words: [String] = []
            for word in line.split(separator: " ").dropFirst().map(String.init) where word != "~conveyor:leader" {
                if word.hasPrefix(">CHANGE-ME") {
                    words.append(">pw")
                } else {
                    words.append(word == "conveyor-worker" ? "lame-worker" : word)
                }
            }
            #expect(try await root.send(RedisCommand("ACL", ["SETUSER"] + words)) == .status("OK"))
            let lame = try AccessControlTests.client(server, user: "lame-worker")
            defer { lame.shutdown() }
            let checks = await JobQueue(redis: lame).doctor(role: .worker)
            let refused = checks.filter { $0.name == "permissions (worker)" && $0.status == .fail }
            #expect(refused.count == 1, "\(checks)")
            #expect(refused.first?.detail.contains("conveyor:leader") == true, "\(refused)")
            #expect(refused.first?.fix?.contains("deploy/redis/users.acl") == true)
            // The documented worker passes the same probes; the reader passes its own, and fails a worker's.
            let worker = try AccessControlTests.client(server, user: "conveyor-worker")
            defer { worker.shutdown() }
            let good = await JobQueue(redis: worker).doctor(role: .worker)
            #expect(Self.check(good, "permissions (worker)")?.status == .pass, "\(good)")
            let reader = try AccessControlTests.client(server, user: "conveyor-reader")
            defer { reader.shutdown() }
            #expect(
                Self.check(await JobQueue(redis: reader).doctor(role: .reader), "permissions (reader)")?.status == .pass
            )
            #expect(
                Self.check(await JobQueue(redis: reader).doctor(role: .worker), "permissions (worker)")?.status == .fail
            )
        }
    }

    @Test func aBadRoleIsRefusedAndAnUnreachableServerFailsOneCheck() async throws {
        let bad = try await ConveyorExecutable.run(["doctor", "--role", "boss", "--redis", "redis://127.0.0.1:1"])
        #expect(bad.status == 64 && bad.standardError.contains("--role must be producer, worker, reader or admin"))
        let down = try await ConveyorExecutable.run(["doctor", "--redis", "redis://127.0.0.1:1"])
        #expect(down.status == 1)
        #expect(down.standardOutput.contains("FAIL  connection:"), "\(down.standardOutput)\(down.standardError)")
    }
}
