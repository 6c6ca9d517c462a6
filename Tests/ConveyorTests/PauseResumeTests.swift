import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

@Suite("pausing and resuming a queue", .timeLimit(.minutes(1)))
struct PauseResumeTests {
    /// Issue 10, item 11: an idle worker once needed an unrelated enqueue to notice a resume (jobs stayed pending
    /// for its whole idle wait, 30 s); the resume is an event that wakes it.
    @Test func anIdleWorkerStartsAtOnceWhenItsQueueIsResumed() async throws {
        try await withJobQueue { jobs, server in
            try await jobs.pause()
            let ids = try await jobs.enqueueMany((0..<7).map { NewJob("t", json: #"{"n":\#($0)}"#) }).map(\.id)
            var handlers = JobHandlers()
            handlers.register("t") { (_: [String: Int], _: JobContext) in }
            var configuration = testWorkerConfiguration()
            configuration.idleWait = .seconds(60)
            let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration)
            try await withWorker(worker) {
                try await Task.sleep(for: .seconds(1))
                #expect(try await jobs.counts()[.pending] == 7)
                let resumed = try await ConveyorExecutable.run([
                    "resume", "default", "--redis", "redis://127.0.0.1:\(server.port)",
                ])
                #expect(resumed.status == 0, "\(resumed.standardError)")
                let clock = ContinuousClock()
                let start = clock.now
                for id in ids { #expect(try await jobs.result(of: id, timeout: .seconds(30)).status == .completed) }
                #expect(clock.now - start < .seconds(20), "the jobs waited \(clock.now - start) after the resume")
            }
            // The queue's events do not show up as job events.
            let events = try await jobs.redis.send("XRANGE", jobs.keys.events("default"), "-", "+")
            let kinds = (events.array ?? []).compactMap { JobQueue.fields($0.array?.last?.array ?? [])["queue_event"] }
            #expect(kinds == ["paused", "resumed"])
        }
    }
}

@Suite("the queue registry", .timeLimit(.minutes(1)))
struct QueueRegistryTests {
    /// Issue 10, item 17: one bad name in `<ns>:queues` made stats and list fail for every queue (exit 64).
    @Test func aBadNameInTheRegistryIsSkippedAndNamed() async throws {
        try await withJobQueue { jobs, server in
            let id = try await jobs.enqueue("t", json: "{}", options: JobOptions(queue: "good")).id
            _ = try await jobs.redis.send("SADD", jobs.keys.queues, "bad name!")
            #expect(try await jobs.queues() == ["good"])
            #expect(try await jobs.unusableQueueNames() == ["bad name!"])
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            for arguments in [["stats"], ["list"], ["stats", "--json"], ["list", "--json"]] {
                let result = try await ConveyorExecutable.run(arguments + redis)
                #expect(result.status == 0, "\(arguments): \(result.standardError)")
                #expect(
                    result.standardOutput.contains(arguments.first == "stats" ? "good" : id),
                    "\(result.standardOutput)"
                )
                #expect(result.standardError.contains("'bad name!'"), "\(arguments): \(result.standardError)")
                #expect(result.standardError.contains("SREM conveyor:queues"), "\(result.standardError)")
            }
        }
    }
}
