import Foundation
import Logging
import RedisClient
import Synchronization

// Waiting for work on a Redis Cluster: a BLPOP cannot span slots, and every queue has a slot of its own, so the
// dispatcher blocks on each queue's wake list and its bell in that queue's slot, one connection per queue, all at
// once. The first to return rings the others' bells, so that they all end; the dispatcher then claims from every
// queue that a token came from.
extension Worker {
    /// Blocks on every queue's wake list and bell at once until a token comes or `timeout` passes.
    func waitForWorkPerQueue(_ watches: inout [String: QueueWatch], timeout: Duration) async {
        let keys = queue.keys
        let workerID = configuration.workerID
        let seconds = String(format: "%.3f", Double(JobQueue.milliseconds(timeout)) / 1000)
        let connections = clusterWaitConnections()
        let redis = queue.redis
        // Off the dispatcher's connection thread (its executor preference would otherwise host every child task).
        let outcomes = await withTaskExecutorPreference(globalConcurrentExecutor) {
            await withTaskGroup(of: WaitOutcome.self) { group in
                for name in queues {
                    let connection = connections[name]
                    group.addTask {
                        guard let connection else { return WaitOutcome(queue: name, reply: .null) }
                        let command = RedisCommand(
                            "BLPOP",
                            keys.wake(name),
                            keys.workerBell(workerID, queue: name),
                            seconds
                        )
                        do {
                            return WaitOutcome(
                                queue: name,
                                reply: try await connection.send(command, blockingFor: timeout)
                            )
                        } catch {
                            return WaitOutcome(queue: name, failure: "\(error)")
                        }
                    }
                }
                var outcomes: [WaitOutcome] = []
                for await outcome in group {
                    if outcomes.isEmpty, let reply = outcome.reply, !reply.isNull {
                        // One queue has work (or the bell rang): end the other waits.
                        let others = queues.filter { $0 != outcome.queue }.map { keys.workerBell(workerID, queue: $0) }
                        if !others.isEmpty {
                            _ = try? await redis.pipeline(
                                others.flatMap {
                                    [RedisCommand("RPUSH", $0, "1"), RedisCommand("PEXPIRE", $0, 60_000)]
                                }
                            )
                        }
                    }
                    outcomes.append(outcome)
                }
                return outcomes
            }
        }
        state.withLock { $0.blockedLong = false }
        var failure: String?
        var returned: [String] = []
        for outcome in outcomes {
            let name = outcome.queue
            if let reply = outcome.reply {
                if reply.isNull {
                    watches[name]?.empty = false
                } else if reply.array?.first?.string == keys.wake(name) {
                    watches[name]?.empty = false
                    returned.append(name)
                }
            } else {
                failure = outcome.failure
                watches[name]?.empty = false
            }
        }
        if !returned.isEmpty, isStopping || handoff.waiting == 0 {
            // No slot here can take them: leave the tokens for other workers.
            _ = try? await redis.pipeline(returned.map { RedisCommand("RPUSH", keys.wake($0), "1") })
        }
        if let failure {
            if isStopping || Task.isCancelled { return }
            failures.failed("wait", "waiting for jobs failed: \(failure)", logger: logger)
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// How one queue's wait ended: a reply (`.null` when it timed out) or why it failed.
    struct WaitOutcome: Sendable {
        var queue: String
        var reply: RedisReply?
        var failure: String?
    }

    /// The dispatcher's blocking connections on a cluster, one per queue, made on first use and closed with the
    /// worker's Redis client.
    private func clusterWaitConnections() -> [String: RedisConnection] {
        clusterWaits.withLock { connections in
            for name in queues where connections[name] == nil {
                connections[name] = queue.redis.makeDedicatedConnection()
            }
            return connections
        }
    }
}
