import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// The threads of this process now (`/proc/self/task`).
func threadCount() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? 0
}

/// The connections the server has now (`CLIENT LIST`), the caller's own included.
func connectionCount(_ redis: RedisClient) async throws -> Int {
    let list = try await redis.send("CLIENT", "LIST").string ?? ""
    return list.split(separator: "\n").count
}

/// The clients blocked in a blocking command on the server now.
func blockedClients(_ redis: RedisClient) async throws -> Int {
    let info = try await redis.send("INFO", "clients").string ?? ""
    for line in info.split(separator: "\r\n") where line.hasPrefix("blocked_clients:") {
        return Int(line.dropFirst("blocked_clients:".count)) ?? 0
    }
    return 0
}

@Suite("Waiting for results: one shared reader per queue", .timeLimit(.minutes(2)))
struct ResultWaiterTests {
    @Test func aThousandWaitersShareABoundedNumberOfConnectionsAndThreads() async throws {
        try await withJobQueue { jobs, server in
            let observer = server.makeClient(maximumConnections: 1)
            defer { observer.shutdown() }
            let ids = try await jobs.enqueueMany((0..<1000).map { NewJob("t", json: #"{"n":\#($0)}"#) }).map(\.id)
            let threadsBefore = threadCount()
            let connectionsBefore = try await connectionCount(observer)
            try await withThrowingTaskGroup(of: Job.self) { group in
                for id in ids {
                    group.addTask { try await jobs.result(of: id, timeout: .seconds(60)) }
                }
                // Until every call waits, and a little longer; then finish the jobs.
                var threads = 0
                var connections = 0
                let clock = ContinuousClock()
                var settledAt: ContinuousClock.Instant?
                while settledAt.map({ clock.now - $0 < .milliseconds(300) }) ?? true {
                    threads = max(threads, threadCount())
                    connections = max(connections, try await connectionCount(observer))
                    if settledAt == nil, jobs.resultWaiter.count == ids.count {
                        settledAt = clock.now
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                print(
                    "1000 waiters: \(connections) connections (\(connectionsBefore) before), "
                        + "\(threads) threads (\(threadsBefore) before)"
                )
                // The pool (16) plus the reader, the observer and the connection that enqueued.
                #expect(connections <= jobs.redis.configuration.maximumConnections + 4)
                // Other tests of this process run meanwhile and have threads of their own: a bound well under 1000.
                #expect(threads - threadsBefore <= 100)
                while let claimed = try await jobs.claim(count: 100).jobs.nilIfEmpty {
                    for job in claimed {
                        try await jobs.complete(job.job.id, leaseToken: job.leaseToken, result: #"{"ok":true}"#)
                    }
                }
                var finished = 0
                for try await job in group {
                    #expect(job.status == .completed && job.result == #"{"ok":true}"#)
                    finished += 1
                }
                #expect(finished == ids.count)
            }
        }
    }

    @Test func aCancelledWaitEndsAtOnceAndTheReaderStopsWhenNobodyWaits() async throws {
        try await withJobQueue { jobs, server in
            let observer = server.makeClient(maximumConnections: 1)
            defer { observer.shutdown() }
            let id = try await jobs.enqueue("t", json: "{}").id
            let waiting = Task { try await jobs.result(of: id, timeout: .seconds(60)) }
            try await eventually("the reader to block") { try await blockedClients(observer) == 1 }
            #expect(jobs.resultWaiter.readingQueues == ["default"])
            let clock = ContinuousClock()
            let started = clock.now
            waiting.cancel()
            await #expect(throws: CancellationError.self) { try await waiting.value }
            #expect(clock.now - started < .seconds(2))
            #expect(jobs.resultWaiter.count == 0 && jobs.resultWaiter.readingQueues.isEmpty)
            try await eventually("the reader's connection to go") { try await blockedClients(observer) == 0 }
            // A later wait starts a new reader, and a job finished before the wait is seen at once.
            let claimed = try #require(try await jobs.claim().jobs.first)
            try await jobs.complete(id, leaseToken: claimed.leaseToken)
            #expect(try await jobs.result(of: id, timeout: .zero).status == .completed)
        }
    }

    @Test func waitsOnSeveralQueuesAndWithEventsTurnedOff() async throws {
        try await withJobQueue { jobs, _ in
            // No events in queue "quiet": its waits end through the reader's once-a-second read of the status.
            _ = try await jobs.redis.send("HSET", jobs.keys.prefix("quiet") + ":meta", "events_max", 0)
            let loud = try await jobs.enqueue("t", json: "{}", options: JobOptions(queue: "loud")).id
            let quiet = try await jobs.enqueue("t", json: "{}", options: JobOptions(queue: "quiet")).id
            async let loudResult = jobs.result(of: loud, timeout: .seconds(30))
            async let quietResult = jobs.result(of: quiet, timeout: .seconds(30))
            try await eventually("both readers") { jobs.resultWaiter.readingQueues == ["loud", "quiet"] }
            for queue in ["loud", "quiet"] {
                let claimed = try #require(try await jobs.claim(queue: queue).jobs.first)
                try await jobs.complete(claimed.job.id, leaseToken: claimed.leaseToken, result: #""\#(queue)""#)
            }
            #expect(try await loudResult.result == #""loud""#)
            #expect(try await quietResult.result == #""quiet""#)
            #expect(jobs.resultWaiter.readingQueues.isEmpty)
        }
    }

    @Test func aWaitForAJobRemovedMeanwhileFailsWithJobNotFound() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let waited = Task { try await jobs.result(of: id, timeout: .seconds(30)) }
            try await eventually("the wait to register") { jobs.resultWaiter.count == 1 }
            try await jobs.remove(id)
            let error = await #expect(throws: ConveyorError.self) { try await waited.value }
            #expect(error?.code == .jobNotFound)
        }
    }

    @Test func aWaitEndsWithARedisErrorWhenTheClientShutsDown() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let waited = Task { try await jobs.result(of: id, timeout: .seconds(30)) }
            try await eventually("the reader to start") { !jobs.resultWaiter.readingQueues.isEmpty }
            jobs.redis.shutdown()
            let error = await #expect(throws: ConveyorError.self) { try await waited.value }
            #expect(error?.code == .redis)
        }
    }
}
