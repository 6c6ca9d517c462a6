import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

@Suite("workers under connection kills", .timeLimit(.minutes(4)))
struct ConnectionKillTests {
    /// Issue 10, item 1: `CLIENT KILL TYPE normal` every 150 ms for 30 s while two `--exec` workers drain; both
    /// survive (a nested reconnect inside the handshake once freed the context the outer call then used) and every
    /// job completes.
    @Test func workersSurviveConnectionsKilledEvery150msForThirtySeconds() async throws {
        try await withJobQueue { jobs, server in
            let url = "redis://127.0.0.1:\(server.port)"
            let arguments = [
                "--redis", url, "--concurrency", "4", "--lease", "5s", "--heartbeat", "1s", "--reclaim", "500ms",
                "--log-level", "critical", "--exec", "echo=cat",
            ]
            let workers = [WorkerProcess(arguments), WorkerProcess(arguments)]
            let killer = server.makeClient()
            defer { killer.shutdown() }
            let clock = ContinuousClock()
            let end = clock.now + .seconds(30)
            var kills = 0
            var enqueued = 0
            // Enqueue by caller-given id, so a call cut by a kill can be repeated without making a duplicate.
            while clock.now < end {
                let batch = (enqueued..<enqueued + 10).map {
                    NewJob("echo", json: #"{"n":\#($0)}"#, options: JobOptions(id: "job-\($0)"))
                }
                try await retryingOnConnectionLoss { _ = try await jobs.enqueueMany(batch) }
                enqueued += batch.count
                _ = try await killer.send("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                kills += 1
                try await Task.sleep(for: .milliseconds(150))
            }
            for worker in workers {
                let pid = try await worker.pid()
                #expect(kill(pid, 0) == 0, "worker \(pid) died under the connection kills")
            }
            let total = enqueued
            try await eventually(timeout: .seconds(120), "all \(total) jobs completed") {
                try await retryingOnConnectionLoss { try await jobs.counts()[.completed] ?? 0 } == total
            }
            let counts = try await jobs.counts()
            #expect(counts[.failed, default: 0] == 0 && counts[.pending, default: 0] == 0)
            print("connection kills: \(kills) kills, \(total) jobs completed")
            for worker in workers { try await worker.signal(SIGTERM) }
            for worker in workers {
                let exit = try await worker.exit()
                #expect(exit.status == 0, "\(String(decoding: exit.errorTail, as: UTF8.self))")
            }
        }
    }
}

/// Runs `body` again when the connection it used was killed (the client reconnects on the next call).
func retryingOnConnectionLoss<T>(_ body: () async throws -> T) async throws -> T {
    var attempt = 0
    while true {
        do {
            return try await body()
        } catch is RedisClientError where attempt < 20 {
            attempt += 1
        } catch let error as ConveyorError where error.code == .redis && attempt < 20 {
            attempt += 1
        }
    }
}
