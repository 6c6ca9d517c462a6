import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Issue 12: replicated acknowledgement (`WAIT`). A replica stopped with SIGSTOP cannot acknowledge anything, which
/// tells a call that waits from one that does not.
@Suite("Replicated acknowledgement", .timeLimit(.minutes(2)))
struct ReplicaAcknowledgementTests {
    @Test func anAcknowledgedEnqueueReturnsOnceTheReplicaHoldsTheJob() async throws {
        try await withPrimaryAndReplica { primary, replica in
            let redis = primary.makeClient()
            defer { redis.shutdown() }
            var configuration = JobQueue.Configuration(installsLibrary: true)
            configuration.replicaAcknowledgement = ReplicaAcknowledgement(replicas: 1, timeout: .seconds(5))
            let jobs = JobQueue(redis: redis, configuration: configuration)
            let onReplica = replica.makeClient()
            defer { onReplica.shutdown() }
            for index in 0..<20 {
                let job = try await jobs.enqueue("t", json: "{\"n\":\(index)}")
                let (queue, localID) = try jobs.split(job.id)
                #expect(try await onReplica.send("EXISTS", jobs.keys.job(queue, localID)) == .integer(1))
            }
        }
    }

    @Test func withTheReplicaStoppedAnAcknowledgedEnqueueFailsAndTheJobStaysOnThePrimary() async throws {
        try await withPrimaryAndReplica { primary, replica in
            let redis = primary.makeClient()
            defer { redis.shutdown() }
            let jobs = JobQueue(redis: redis, configuration: .init(installsLibrary: true))
            #expect(kill(replica.pid, SIGSTOP) == 0)
            defer { kill(replica.pid, SIGCONT) }
            // Without the option, the enqueue does not wait.
            let plain = try await jobs.enqueue("t", json: "{}")
            #expect(plain.outcome == .created)
            let options = JobOptions(
                id: "must-replicate",
                replicaAcknowledgement: ReplicaAcknowledgement(replicas: 1, timeout: .milliseconds(300))
            )
            let clock = ContinuousClock()
            let started = clock.now
            do {
                _ = try await jobs.enqueue("t", json: "{}", options: options)
                Issue.record("the enqueue returned although no replica could acknowledge it")
            } catch let error as ConveyorError {
                #expect(error.code == .notReplicated)
                #expect(error.jobID == "default/must-replicate")
                #expect(error.message.contains("only 0 of 1 replicas acknowledged it"), "\(error.message)")
                #expect(error.message.contains("retry with the same job id"), "\(error.message)")
            }
            #expect(clock.now - started >= .milliseconds(250))
            #expect(try await jobs.get("default/must-replicate")?.status == .pending)
            kill(replica.pid, SIGCONT)
            // Once the replica is back, the retry with the same id is acknowledged and creates nothing new.
            var retried: EnqueuedJob?
            try await eventually(timeout: .seconds(20), "the replica to acknowledge again") {
                retried = try? await jobs.enqueue("t", json: "{}", options: options)
                return retried != nil
            }
            #expect(retried?.outcome == .existing)
        }
    }

    @Test(arguments: [
        (ReplicaAcknowledgement(replicas: 0), "replicas must be 1 to 1000"),
        (ReplicaAcknowledgement(replicas: 1, timeout: .zero), "timeout must be more than zero"),
        (ReplicaAcknowledgement(replicas: 1, timeout: .seconds(61)), "at most 60 s"),
    ])
    func aBadAcknowledgementIsRefusedAndStoresNothing(
        _ acknowledgement: ReplicaAcknowledgement,
        _ reason: String
    )
        async throws
    {
        try await withJobQueue { jobs, _ in
            try await expectRejected(jobs, .invalidArgument, mentioning: reason) {
                _ = try await jobs.enqueue("t", json: "{}", options: .init(replicaAcknowledgement: acknowledgement))
            }
            try await expectRejected(jobs, .invalidArgument, mentioning: reason) {
                _ = try await jobs.enqueueMany([
                    NewJob("t", json: "{}", options: .init(replicaAcknowledgement: acknowledgement))
                ])
            }
        }
    }

    @Test func aWorkerWaitsForTheReplicaButCarriesOnWhenItCannotAcknowledge() async throws {
        try await withPrimaryAndReplica { primary, replica in
            let redis = primary.makeClient()
            defer { redis.shutdown() }
            var configuration = JobQueue.Configuration(installsLibrary: true)
            // Long enough for a replica on a loaded machine; with the replica stopped, each call waits it out.
            configuration.replicaAcknowledgement = ReplicaAcknowledgement(replicas: 1, timeout: .seconds(2))
            let jobs = JobQueue(redis: redis, configuration: configuration)
            var handlers = JobHandlers()
            handlers.register("t") { (_: [String: Int], _: JobContext) in }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                let first = try await jobs.enqueue("t", payload: ["n": 1]).id
                #expect(try await jobs.result(of: first, timeout: .seconds(20)).status == .completed)
                // The completion was acknowledged: the replica has it.
                let onReplica = replica.makeClient()
                defer { onReplica.shutdown() }
                let (queue, localID) = try jobs.split(first)
                #expect(
                    try await onReplica.send("HGET", jobs.keys.job(queue, localID), "status")
                        == .bulkString(
                            Array("completed".utf8)
                        )
                )
                // A replica that cannot acknowledge slows the worker down but does not stop it.
                #expect(kill(replica.pid, SIGSTOP) == 0)
                defer { kill(replica.pid, SIGCONT) }
                let producer = JobQueue(redis: redis)
                let second = try await producer.enqueue("t", payload: ["n": 2]).id
                #expect(try await jobs.result(of: second, timeout: .seconds(40)).status == .completed)
            }
        }
    }
}

/// Runs `body` with a primary and one replica whose link is up.
private func withPrimaryAndReplica(
    _ body: (LocalRedisServer, LocalRedisServer) async throws -> Void
) async throws {
    try await withRedisServer(.init(arguments: ["--repl-diskless-sync-delay", "0"])) { primary in
        try await withRedisServer(.init(arguments: ["--replicaof", "127.0.0.1", String(primary.port)])) { replica in
            let redis = replica.makeClient()
            defer { redis.shutdown() }
            try await eventually(timeout: .seconds(20), "the replica to sync") {
                (try await redis.send("INFO", "replication").string ?? "").contains("master_link_status:up")
            }
            try await body(primary, replica)
        }
    }
}
