import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Issue 15: `deploy/redis/redis.conf` with `users.acl` starts a server that `conveyor doctor` reports healthy for
/// every role, and `sentinel.conf` starts a Sentinel that watches it.
@Suite("deploy/redis: redis.conf, users.acl, sentinel.conf", .timeLimit(.minutes(3)))
struct DeployRedisConfigurationTests {
    static func deployFile(_ path: String) throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent("deploy/redis/\(path)"), encoding: .utf8)
    }

    /// redis.conf as shipped, but for its ACL file's path (a copy of users.acl in `folder`). The port, address,
    /// data folder and log file are given on the command line after it, as every test server's are.
    static func serverOptions(in folder: String) throws -> LocalRedisServer.Options {
        let acl = folder + "/users.acl"
        try Data(try deployFile("users.acl").utf8).write(to: URL(fileURLWithPath: acl))
        let configuration = try deployFile("redis.conf")
        #expect(configuration.contains("aclfile /etc/redis/users.acl\n"))
        var options = LocalRedisServer.Options(
            configurationFile: configuration.replacingOccurrences(
                of: "aclfile /etc/redis/users.acl",
                with: "aclfile \(acl)"
            )
        )
        options.keepsConfiguredPersistence = true
        return options
    }

    static func url(_ server: LocalRedisServer, _ user: String, _ password: String) -> String {
        "redis://\(user):\(password)@127.0.0.1:\(server.port)"
    }

    @Test func redisConfStartsAServerThatDoctorReportsHealthyForEveryRole() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("redis-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await withRedisServer(try Self.serverOptions(in: folder.path)) { server in
            // The default user is off: a client without a user is refused.
            let anonymous = RedisConnection(configuration: .init(url: server.url))
            defer { anonymous.close() }
            let refused = try await anonymous.send("GET", "x")
            #expect(refused.errorMessage?.hasPrefix("NOAUTH") == true, "\(refused)")

            let admin = Self.url(server, "conveyor-admin", "CHANGE-ME-admin")
            let client = RedisClient(configuration: .init(url: try RedisURL(admin)))
            defer { client.shutdown() }
            let config = try await client.send("CONFIG", "GET", "*").array?.compactMap(\.string) ?? []
            let settings = Dictionary(
                stride(from: 0, to: config.count - 1, by: 2).map { (config[$0], config[$0 + 1]) },
                uniquingKeysWith: { first, _ in first }
            )
            #expect(settings["maxmemory-policy"] == "noeviction" && settings["appendonly"] == "yes")
            #expect(settings["appendfsync"] == "everysec" && settings["maxmemory"] == String(2 << 30))

            let installed = try await ConveyorExecutable.run(["install", "--redis", admin])
            #expect(installed.status == 0, "\(installed.standardOutput)\(installed.standardError)")
            for (user, role) in [
                ("conveyor-admin", "admin"), ("conveyor-producer", "producer"), ("conveyor-worker", "worker"),
                ("conveyor-reader", "reader"),
            ] {
                let password = "CHANGE-ME-" + (role == "reader" ? "reader" : role)
                let doctor = try await ConveyorExecutable.run([
                    "doctor", "--role", role, "--redis", Self.url(server, user, password),
                ])
                let report = doctor.standardOutput + doctor.standardError
                #expect(doctor.status == 0, "\(role):\n\(report)")
                #expect(!report.contains("FAIL"), "\(role):\n\(report)")
                #expect(report.contains("PASS  permissions (\(role))"), "\(role):\n\(report)")
                if role == "admin" {
                    #expect(report.contains("PASS  maxmemory-policy: noeviction"), "\(report)")
                    #expect(report.contains("PASS  persistence"), "\(report)")
                }
            }
            // Persistence is on for real: the append-only file is written in the data folder.
            _ = try await client.send("SET", "conveyor:probe", "1")
            try await eventually("the AOF folder to exist") {
                FileManager.default.fileExists(atPath: server.directory + "/appendonlydir")
            }
        }
    }

    @Test func sentinelConfWatchesThePrimaryWithTheAdminCredential() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("sentinel-conf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        try await withRedisServer(try Self.serverOptions(in: folder.path)) { primary in
            // The file as shipped, with this test's primary in place of the example address and a quorum of one
            // (one Sentinel here; three in production).
            let shipped = try Self.deployFile("sentinel.conf")
            #expect(shipped.contains("sentinel monitor conveyor 10.0.0.11 6379 2\n"))
            let configuration = shipped.replacingOccurrences(
                of: "sentinel monitor conveyor 10.0.0.11 6379 2",
                with: "sentinel monitor conveyor 127.0.0.1 \(primary.port) 1"
            )
            try await withRedisServer(.init(arguments: ["--sentinel"], configurationFile: configuration)) { sentinel in
                let connection = RedisConnection(configuration: .init(url: sentinel.url))
                defer { connection.close() }
                // role-reported comes from INFO, which the primary answers only to an authenticated Sentinel.
                try await eventually(timeout: .seconds(20), "the Sentinel to read the primary's INFO") {
                    let fields =
                        try await connection.send("SENTINEL", "MASTER", "conveyor").array?.compactMap(\.string)
                        ?? []
                    let info = Dictionary(
                        stride(from: 0, to: fields.count - 1, by: 2).map { (fields[$0], fields[$0 + 1]) },
                        uniquingKeysWith: { first, _ in first }
                    )
                    return info["role-reported"] == "master" && info["flags"] == "master"
                        && info["port"] == String(primary.port)
                }
                let address = try await connection.send("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "conveyor")
                #expect(address.array?.compactMap(\.string) == ["127.0.0.1", String(primary.port)])
            }
        }
    }
}
