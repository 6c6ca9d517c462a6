import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// The job system over `rediss://`, against `redis-server`s that listen with TLS only.
@Suite("jobs over TLS", .timeLimit(.minutes(2)))
struct TLSJobTests {
    struct Greeting: Codable, Sendable {
        var name: String
    }

    /// Mutual TLS (`tls-auth-clients yes`): a producer enqueues, a worker in this process works the job, the result
    /// comes back; every connection (pool, the worker's blocking waits) goes through a tunnel.
    @Test func aWorkerWorksAJobOverMutualTLS() async throws {
        try await withTLSRedisServer(clientAuthentication: .yes) { (server, _) async throws in
            #expect(server.url.tls?.certificateFile != nil)
            let redis = server.makeClient()
            defer { redis.shutdown() }
            let jobs = JobQueue(redis: redis)
            try await jobs.installLibrary()
            var handlers = JobHandlers()
            handlers.register("greet") { (greeting: Greeting, _: JobContext) in "hello \(greeting.name) over TLS" }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                let ids = try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<20 {
                        group.addTask { try await jobs.enqueue("greet", payload: Greeting(name: "n\(index)")).id }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                for id in ids {
                    let job = try await jobs.result(of: id, timeout: .seconds(20))
                    #expect(job.status == .completed, "\(job)")
                    #expect(try job.decodeResult(as: String.self)?.hasPrefix("hello n") == true)
                }
            }
        }
    }

    /// The `conveyor` executable takes `rediss://` URLs like `redis://` ones: ping, enqueue, a worker process, wait;
    /// the system trust store comes from `SSL_CERT_FILE`; a wrong CA fails with one clear line.
    @Test func theCommandLineWorksOverTLS() async throws {
        try await withTLSRedisServer { (server, certificates) async throws in
            let url = server.url.description
            let redis = ["--redis", url]
            let installed = try await ConveyorExecutable.run(["install"] + redis)
            #expect(installed.status == 0, "\(installed.standardError)")

            let ping = try await ConveyorExecutable.run(["ping"] + redis)
            #expect(ping.status == 0, "\(ping.standardError)")
            #expect(
                ping.standardOutput.hasPrefix("PONG from rediss://127.0.0.1:\(server.port)"),
                "\(ping.standardOutput)"
            )

            let enqueued = try await ConveyorExecutable.run(
                ["enqueue", "echo", "--payload", #"{"tls":1}"#, "--queue", "tls"] + redis
            )
            #expect(enqueued.status == 0, "\(enqueued.standardError)")
            let id = enqueued.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            let worker = WorkerProcess(redis + ["--queue", "tls", "--example-handlers", "--no-scheduler"])
            let waited = try await ConveyorExecutable.run(["wait", id, "--timeout", "30s"] + redis)
            #expect(waited.status == 0 && waited.standardOutput.contains(#"{"tls":1}"#), "\(waited.standardError)")
            try await worker.signal(SIGTERM)
            #expect(try await worker.exit().status == 0)

            // No ca_file: the system trust store, which SSL_CERT_FILE replaces.
            let trusted = try await ConveyorExecutable.run(
                ["ping", "--redis", "rediss://127.0.0.1:\(server.port)"],
                environment: ["SSL_CERT_FILE": certificates.caFile]
            )
            #expect(trusted.status == 0, "\(trusted.standardError)")

            let refused = try await ConveyorExecutable.run(
                ["ping", "--redis", "rediss://127.0.0.1:\(server.port)?ca_file=\(certificates.otherCAFile)"]
            )
            #expect(refused.status == 1)
            #expect(refused.standardError.split(separator: "\n").count == 1, "\(refused.standardError)")
            #expect(refused.standardError.contains("is not signed by the CA in ca_file"), "\(refused.standardError)")
        }
    }
}
