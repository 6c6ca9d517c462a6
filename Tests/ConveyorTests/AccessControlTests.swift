import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Conveyor under least-privilege Redis users: the documented ACLs of `deploy/redis/users.acl`, and two tenants
/// confined to their own queues (issue 10, items 2 and 8).
@Suite("Redis users with least privilege", .timeLimit(.minutes(3)))
struct AccessControlTests {
    static var aclFile: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent("deploy/redis/users.acl").path
    }

    /// Applies the `user conveyor-…` lines of the ACL file, with `password` for every user (not the line that turns
    /// the default user off: the tests' own connections use it).
    static func applyDocumentedUsers(_ admin: RedisClient) async throws -> [String] {
        let text = try String(contentsOfFile: aclFile, encoding: .utf8)
        var names: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("user conveyor-") {
            var words = line.split(separator: " ").dropFirst().map(String.init)
            words = words.map { $0.hasPrefix(">CHANGE-ME") ? ">pw" : $0 }
            let reply = try await admin.send(RedisCommand("ACL", ["SETUSER"] + words))
            #expect(reply == .status("OK"), "\(line): \(reply)")
            names.append(words[0])
        }
        return names
    }

    static func client(_ server: LocalRedisServer, user: String) throws -> RedisClient {
        RedisClient(configuration: .init(url: try RedisURL("redis://\(user):pw@127.0.0.1:\(server.port)")))
    }

    @Test func producerWorkerAndCLIRunUnderTheDocumentedUsers() async throws {
        try await withRedisServer { server in
            let root = server.makeClient()
            defer { root.shutdown() }
            let users = try await Self.applyDocumentedUsers(root)
            #expect(users == ["conveyor-admin", "conveyor-producer", "conveyor-worker", "conveyor-reader"])
            func url(_ user: String) -> String { "redis://\(user):pw@127.0.0.1:\(server.port)" }

            // Only the admin may install; the producer gets a message naming the step.
            let refused = try await ConveyorExecutable.run(
                ["install"],
                environment: ["REDIS_URL": url("conveyor-producer")]
            )
            #expect(refused.status == 1)
            #expect(refused.standardError.contains("may not load functions"), "\(refused.standardError)")
            let notYet = try await ConveyorExecutable.run(
                ["enqueue", "echo", "--payload", "{}"],
                environment: ["REDIS_URL": url("conveyor-producer")]
            )
            #expect(notYet.status == 1 && notYet.standardError.contains("conveyor install"), "\(notYet.standardError)")
            let installed = try await ConveyorExecutable.run(
                ["install"],
                environment: ["REDIS_URL": url("conveyor-admin")]
            )
            #expect(installed.status == 0, "\(installed.standardError)")

            // A producer (CLI and library), a worker process, and a reader.
            let enqueued = try await ConveyorExecutable.run(
                ["enqueue", "echo", "--payload", #"{"n":1}"#, "--json"],
                environment: ["REDIS_URL": url("conveyor-producer")]
            )
            #expect(enqueued.status == 0, "\(enqueued.standardError)")
            let producer = JobQueue(redis: try Self.client(server, user: "conveyor-producer"))
            let id = try await producer.enqueue("echo", json: #"{"n":2}"#).id
            let worker = ConveyorProcess(
                ["worker", "--exec", "echo=cat", "--log-level", "warning"],
                environment: ["REDIS_URL": url("conveyor-worker")]
            )
            #expect(try await producer.result(of: id, timeout: .seconds(60)).status == .completed, "\(worker.output)")
            let stats = try await ConveyorExecutable.run(
                ["stats", "--json"],
                environment: ["REDIS_URL": url("conveyor-reader")]
            )
            #expect(stats.status == 0, "\(stats.standardError)")
            #expect(
                stats.standardOutput.contains(#""completed":2"#) || stats.standardOutput.contains(#""completed" : 2"#),
                "\(stats.standardOutput)"
            )
            let readerCannotWrite = try await ConveyorExecutable.run(
                ["enqueue", "echo", "--payload", "{}"],
                environment: ["REDIS_URL": url("conveyor-reader")]
            )
            #expect(readerCannotWrite.status != 0)
            // The producer can neither replace the library nor flush it.
            let load = try await Self.client(server, user: "conveyor-producer").send("FUNCTION", "FLUSH")
            #expect(load.errorMessage?.hasPrefix("NOPERM") == true)
            try await worker.signal(SIGTERM)
            #expect(try await worker.exit() == 0, "\(worker.output)")
        }
    }

    @Test func twoTenantsConfinedToTheirQueuesCannotReadWriteOrCompleteTheOthersJobs() async throws {
        try await withJobQueue { admin, server in
            for tenant in ["a", "b"] {
                let reply = try await admin.redis.send(
                    RedisCommand(
                        "ACL",
                        [
                            "SETUSER", "tenant-\(tenant)", "on", ">pw", "resetkeys", "~conveyor:{\(tenant)}",
                            "~conveyor:{\(tenant)}:*", "resetchannels", "-@all", "+@read", "+@write", "+@connection",
                            "-@dangerous", "-function", "+time", "+info", "+fcall", "+fcall_ro",
                        ]
                    )
                )
                #expect(reply == .status("OK"))
            }
            let a = JobQueue(redis: try Self.client(server, user: "tenant-a"), configuration: .init(defaultQueue: "a"))
            let b = JobQueue(redis: try Self.client(server, user: "tenant-b"), configuration: .init(defaultQueue: "b"))
            let victim = try await b.enqueue("work", json: #"{"secret":1}"#).id
            let own = try await a.enqueue("work", json: "{}").id
            let before = try await rawJob(admin, victim)

            await #expect(throws: ConveyorError.self) { _ = try await a.get(victim) }
            await #expect(throws: ConveyorError.self) { _ = try await a.cancel(victim) }
            await #expect(throws: ConveyorError.self) { _ = try await a.claim(queue: "b") }
            await #expect(throws: ConveyorError.self) { try await a.complete(victim, leaseToken: "1", result: "{}") }
            await #expect(throws: ConveyorError.self) {
                _ = try await a.enqueue("work", json: "{}", options: JobOptions(queue: "b"))
            }
            // Through its own queue's key, naming the other queue's job in an argument.
            await #expect(throws: ConveyorError.self) {
                _ = try await a.invoke("conveyor_cancel", queue: "a", [victim], jobID: victim)
            }
            // A forged hash in its own queue naming the other's job: a shared worker fails it and leaves b alone.
            _ = try await a.redis.send(
                "HSET",
                "conveyor:{a}:job:forged",
                "id",
                victim,
                "queue",
                "b",
                "type",
                "work",
                "status",
                "pending",
                "payload",
                "{}"
            )
            _ = try await a.redis.send("RPUSH", "conveyor:{a}:pending", "forged")
            let claimed = try await admin.claim(queue: "a", count: 10).jobs.map(\.job.id)
            #expect(claimed == [own])
            #expect(try await rawJob(admin, "a/forged")["status"] == "failed")
            #expect(try await rawJob(admin, victim) == before)
            // b's own worker still runs its job normally.
            let taken = try await b.claim(queue: "b")
            #expect(taken.jobs.map(\.job.id) == [victim])
            try await b.complete(victim, leaseToken: taken.jobs[0].leaseToken, result: #"{"ok":true}"#)
            #expect(try await b.get(victim)?.result == #"{"ok":true}"#)
        }
    }
}
