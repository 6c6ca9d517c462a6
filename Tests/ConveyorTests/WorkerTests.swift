import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Synchronization
import Testing

@testable import Conveyor

/// Counts and records from inside handlers.
final class Probe: Sendable {
    let attempts = Mutex<[String: Int]>([:])
    let cancelled = Mutex<Int>(0)

    func attempt(_ id: String) -> Int {
        attempts.withLock { counts in
            counts[id, default: 0] += 1
            return counts[id]!
        }
    }
}

/// Quick timings for tests: short leases and heartbeats, fast backoff.
func testWorkerConfiguration(
    queues: [String] = ["default"],
    concurrency: Int = 4,
    lease: Duration = .seconds(3),
    heartbeat: Duration = .milliseconds(100)
) -> Worker.Configuration {
    Worker.Configuration(
        queues: queues,
        concurrency: concurrency,
        lease: lease,
        heartbeatInterval: heartbeat,
        reclaimInterval: .milliseconds(200),
        gracePeriod: .seconds(5),
        idleWait: .seconds(1)
    )
}

@Suite("Worker against a real redis-server", .timeLimit(.minutes(1)))
struct WorkerTests {
    struct Greeting: Codable, Sendable {
        var name: String
    }

    struct Reply: Codable, Sendable, Equatable {
        var text: String
    }

    @Test func handlerSuccessStoresTheResult() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register("greet") { (greeting: Greeting, context: JobContext) in
                Reply(text: "hello \(greeting.name), attempt \(context.attempt)")
            }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                let id = try await jobs.enqueue("greet", payload: Greeting(name: "Ada")).id
                let job = try await jobs.result(of: id, timeout: .seconds(20))
                #expect(job.status == .completed)
                #expect(try job.decodeResult(as: Reply.self) == Reply(text: "hello Ada, attempt 1"))
            }
        }
    }

    @Test func throwRetriesWithBackoffThenFails() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            let options = HandlerOptions(
                retry: .backoff(Backoff(base: .milliseconds(200), cap: .seconds(5), jitter: false))
            )
            handlers.register("flaky", options: options) { (_: [String: Int], _: JobContext) in
                throw JobFailure("the network is down")
            }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            let events = try await jobs.events()
            try await withWorker(worker) {
                let id = try await jobs.enqueue("flaky", payload: ["n": 1], options: JobOptions(maxRetries: 2)).id
                let job = try await jobs.result(of: id, timeout: .seconds(20))
                #expect(job.status == .failed && job.retryCount == 2 && job.attempts == 3)
                #expect(job.error == "the network is down")
                var starts: [Date] = []
                for try await event in events where event.jobID == id {
                    if event.to == .processing { starts.append(event.at) }
                    if event.to == .failed { break }
                }
                #expect(starts.count == 3)
                let gaps = zip(starts.dropFirst(), starts).map { $0.timeIntervalSince($1) }
                #expect(gaps[0] >= 0.19 && gaps[0] < 3, "gaps \(gaps)")
                #expect(gaps[1] >= 0.39 && gaps[1] < 3, "gaps \(gaps)")
            }
        }
    }

    @Test func permanentFailureDoesNotRetry() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register("strict") { (_: [String: Int], _: JobContext) in
                throw JobFailure.permanent("the file is not a PDF")
            }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                let id = try await jobs.enqueue("strict", payload: ["n": 1], options: JobOptions(maxRetries: 5)).id
                let job = try await jobs.result(of: id, timeout: .seconds(20))
                #expect(job.status == .failed && job.attempts == 1 && job.error == "the file is not a PDF")
            }
        }
    }

    @Test func timeoutCancelsTheHandlerAndFailsTheAttempt() async throws {
        try await withJobQueue { jobs, _ in
            let probe = Probe()
            var handlers = JobHandlers()
            handlers.register("slow") { (_: [String: Int], _: JobContext) in
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    probe.cancelled.withLock { $0 += 1 }
                    throw error
                }
            }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                let options = JobOptions(maxRetries: 0, timeout: .milliseconds(300))
                let id = try await jobs.enqueue("slow", payload: ["n": 1], options: options).id
                let job = try await jobs.result(of: id, timeout: .seconds(20))
                #expect(job.status == .failed && job.error == "timed out after 0.3 s")
                #expect(probe.cancelled.withLock { $0 } == 1)
            }
        }
    }

    @Test func cancelAPendingAndARunningJob() async throws {
        try await withJobQueue { jobs, _ in
            let pending = try await jobs.enqueue("wait", payload: ["n": 1]).id
            try await jobs.cancel(pending)
            let probe = Probe()
            var handlers = JobHandlers()
            handlers.register("wait") { (_: [String: Int], context: JobContext) in
                _ = probe.attempt(context.id)
                while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
                probe.cancelled.withLock { $0 += 1 }
                throw CancellationError()
            }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                let running = try await jobs.enqueue("wait", payload: ["n": 2]).id
                try await eventually("the job to start") { try await jobs.get(running)?.status == .processing }
                let clock = ContinuousClock()
                let started = clock.now
                #expect(try await jobs.cancel(running) == .processing)
                let job = try await jobs.result(of: running, timeout: .seconds(20))
                #expect(job.status == .cancelled)
                #expect(clock.now - started < .seconds(5))
                #expect(probe.cancelled.withLock { $0 } == 1)
            }
            #expect(try await jobs.get(pending)?.status == .cancelled)
            #expect(probe.attempts.withLock { $0[pending] } == nil)
        }
    }

    @Test func unknownTypeIsRetriedForAnotherWorkerOrFailed() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register("known") { (_: [String: Int], _: JobContext) in }
            var configuration = testWorkerConfiguration()
            configuration.retryUnknownTypes = false
            let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration)
            try await withWorker(worker) {
                let id = try await jobs.enqueue("mystery", payload: ["n": 1]).id
                let job = try await jobs.result(of: id, timeout: .seconds(20))
                #expect(job.status == .failed)
                #expect(job.error?.contains("no handler for type mystery on this worker") == true)
                #expect(job.error?.contains("it handles: known") == true)
            }
            let retrying = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(retrying) {
                let id = try await jobs.enqueue("mystery", payload: ["n": 2]).id
                try await eventually("a retry") { try await jobs.get(id)?.status == .retrying }
            }
        }
    }

    @Test func lostLeaseStopsTheHandlerAndItsResultIsNotWritten() async throws {
        try await withJobQueue { jobs, _ in
            let probe = Probe()
            var handlers = JobHandlers()
            handlers.register("once") { (_: [String: Int], context: JobContext) -> Reply in
                _ = probe.attempt(context.id)
                while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }
                probe.cancelled.withLock { $0 += 1 }
                return Reply(text: "from the stale attempt")
            }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration(concurrency: 2))
            try await withWorker(worker) {
                let id = try await jobs.enqueue("once", payload: ["n": 1]).id
                try await eventually("the first attempt") { probe.attempts.withLock { $0[id] } == 1 }
                // Another worker took the job over (as after a reclaim): the lease token is no longer ours.
                let localID = try jobs.split(id).localID
                _ = try await jobs.redis.send("HSET", "conveyor:{default}:job:\(localID)", "lease", "stolen")
                try await eventually("the stale handler to stop") { probe.cancelled.withLock { $0 } == 1 }
                try await Task.sleep(for: .milliseconds(200))
                let job = try #require(try await jobs.get(id))
                #expect(job.status == .processing && job.result == nil)
                try await jobs.complete(id, leaseToken: "stolen", result: #"{"text":"from the new owner"}"#)
                #expect(try await jobs.get(id)?.result == #"{"text":"from the new owner"}"#)
            }
        }
    }

    @Test func progressIsVisibleWhileTheJobRuns() async throws {
        try await withJobQueue { jobs, _ in
            let gate = Probe()
            var handlers = JobHandlers()
            handlers.register("long") { (_: [String: Int], context: JobContext) in
                try await context.reportProgress(["done": 5, "of": 10])
                while gate.cancelled.withLock({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(10)) }
            }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                let id = try await jobs.enqueue("long", payload: ["n": 1]).id
                try await eventually("progress") { try await jobs.progress(of: id) != nil }
                let progress = try #require(try await jobs.progress(of: id))
                #expect(
                    try JSONDecoder().decode([String: Int].self, from: Data(progress.utf8)) == ["done": 5, "of": 10]
                )
                gate.cancelled.withLock { $0 = 1 }
                #expect(try await jobs.result(of: id, timeout: .seconds(20)).status == .completed)
            }
        }
    }

    @Test func eventsArriveInOrder() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register("quick") { (_: [String: Int], _: JobContext) in }
            let events = try await jobs.events()
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                let id = try await jobs.enqueue("quick", payload: ["n": 1]).id
                var seen: [String] = []
                for try await event in events where event.jobID == id {
                    seen.append("\(event.from?.rawValue ?? "new")→\(event.to?.rawValue ?? "removed")")
                    if event.to == .completed { break }
                }
                #expect(seen == ["new→pending", "pending→processing", "processing→completed"])
            }
        }
    }

    @Test func scheduledJobStartsSoonAfterItsTimeWithoutPolling() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register("tick") { (_: [String: Int], _: JobContext) in }
            var configuration = testWorkerConfiguration()
            configuration.idleWait = .seconds(30)
            let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration)
            try await withWorker(worker) {
                try await Task.sleep(for: .milliseconds(200))
                let id = try await jobs.enqueue(
                    "tick",
                    payload: ["n": 1],
                    options: JobOptions(delay: .milliseconds(500))
                ).id
                let job = try await jobs.result(of: id, timeout: .seconds(20))
                let lateness = try #require(job.startedAt).timeIntervalSince(try #require(job.runAt))
                // Far below the 30 s idle wait: the worker woke for it (slack for a slow, shared machine).
                #expect(lateness >= 0 && lateness < 5.0, "started \(lateness) s after its time")
            }
        }
    }

    @Test func shutdownGivesUnfinishedJobsBackAtOnce() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register("stuck") { (_: [String: Int], _: JobContext) in
                try await Task.sleep(for: .seconds(60))
            }
            var configuration = testWorkerConfiguration(concurrency: 3, lease: .seconds(60), heartbeat: .seconds(5))
            configuration.gracePeriod = .milliseconds(300)
            let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration)
            let clock = ContinuousClock()
            var stoppedAfter: Duration = .zero
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await worker.run() }
                for index in 0..<3 { try await jobs.enqueue("stuck", payload: ["n": index]) }
                try await eventually("three running jobs") { try await jobs.counts()[.processing] == 3 }
                try await eventually("three running handlers") { worker.runningJobs.count == 3 }
                #expect(try await jobs.workers().map(\.id) == [worker.configuration.workerID])
                let started = clock.now
                worker.shutdown()
                try await group.waitForAll()
                stoppedAfter = clock.now - started
            }
            #expect(stoppedAfter < .seconds(5))
            let counts = try await jobs.counts()
            #expect(counts[.pending] == 3 && counts[.processing] == 0)
            #expect(try await jobs.workers().isEmpty)
        }
    }

    @Test func concurrencyAndQueuePriority() async throws {
        try await withJobQueue { jobs, _ in
            let order = Mutex<[String]>([])
            var handlers = JobHandlers()
            handlers.register("note") { (_: [String: Int], context: JobContext) in
                order.withLock { $0.append(context.job.queue) }
            }
            for index in 0..<5 {
                try await jobs.enqueue("note", payload: ["n": index], options: JobOptions(queue: "low"))
            }
            for index in 0..<5 {
                try await jobs.enqueue("note", payload: ["n": index], options: JobOptions(queue: "high"))
            }
            let worker = Worker(
                queue: jobs,
                handlers: handlers,
                configuration: testWorkerConfiguration(queues: ["high", "low"], concurrency: 1)
            )
            try await withWorker(worker) {
                try await eventually("all ten jobs") { order.withLock { $0.count } == 10 }
            }
            #expect(order.withLock { $0 } == Array(repeating: "high", count: 5) + Array(repeating: "low", count: 5))
        }
    }
}
