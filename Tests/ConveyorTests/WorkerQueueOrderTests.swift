import ConveyorTesting
import Foundation
import Synchronization
import Testing

@testable import Conveyor

@Suite("Worker: weighted queue order", .timeLimit(.minutes(2)))
struct WorkerQueueOrderTests {
    /// Runs one worker over `queues` with `order` (one job at a time, so every claim is one choice of queue) until
    /// `count` jobs ran, and returns the queue of each, in the order they ran. Every queue holds more than `count`
    /// jobs, so none runs out.
    func runOrder(_ order: Worker.QueueOrder, queues: [String], count: Int, stock: Int) async throws -> [String] {
        let ran = Mutex<[String]>([])
        let (done, finish) = AsyncStream<Void>.makeStream()
        try await withJobQueue { jobs, _ in
            for queue in queues {
                _ = try await jobs.enqueueMany(
                    (0..<stock).map { _ in NewJob("t", json: "{}", options: JobOptions(queue: queue)) }
                )
            }
            var handlers = JobHandlers()
            handlers.registerJSON("t") { context in
                let total = ran.withLock { ran in
                    if ran.count < count { ran.append(context.job.queue) }
                    return ran.count
                }
                if total == count { finish.yield() }
                return nil
            }
            var configuration = testWorkerConfiguration(queues: queues, concurrency: 1)
            configuration.order = order
            let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration)
            try await withWorker(worker) {
                var iterator = done.makeAsyncIterator()
                await iterator.next()
            }
        }
        return ran.withLock { $0 }
    }

    func ratio(_ ran: [String], _ first: String, _ second: String) -> Double {
        Double(ran.filter { $0 == first }.count) / Double(max(1, ran.filter { $0 == second }.count))
    }

    @Test func threeToOneWeightsTakeJobsThreeToOne() async throws {
        let ran = try await runOrder(.weighted(["a": 3, "b": 1]), queues: ["a", "b"], count: 2000, stock: 2100)
        // Expected 3; 2 and 4.5 are each more than 7 standard deviations away over 2 000 claims.
        let observed = ratio(ran, "a", "b")
        print("weighted 3:1 over \(ran.count) jobs: ratio \(observed)")
        #expect(ran.count == 2000)
        #expect(observed > 2 && observed < 4.5, "a:b = \(observed)")
    }

    @Test func aQueueMissingFromTheWeightsWeighsOne() async throws {
        let ran = try await runOrder(.weighted(["a": 3]), queues: ["a", "b"], count: 2000, stock: 2100)
        let observed = ratio(ran, "a", "b")
        print("weighted 3:(missing) over \(ran.count) jobs: ratio \(observed)")
        #expect(observed > 2 && observed < 4.5, "a:b = \(observed)")
    }

    @Test func aWeightOfZeroIsServedOnlyWhenTheOtherQueuesAreEmpty() async throws {
        // b has 100 jobs and weighs 1, a weighs 0: the first 100 jobs run are b's, then a's.
        let ran = Mutex<[String]>([])
        let (done, finish) = AsyncStream<Void>.makeStream()
        try await withJobQueue { jobs, _ in
            _ = try await jobs.enqueueMany(
                (0..<100).map { _ in NewJob("t", json: "{}", options: JobOptions(queue: "a")) }
            )
            _ = try await jobs.enqueueMany(
                (0..<100).map { _ in NewJob("t", json: "{}", options: JobOptions(queue: "b")) }
            )
            var handlers = JobHandlers()
            handlers.registerJSON("t") { context in
                let total = ran.withLock { ran in
                    ran.append(context.job.queue)
                    return ran.count
                }
                if total == 150 { finish.yield() }
                return nil
            }
            var configuration = testWorkerConfiguration(queues: ["a", "b"], concurrency: 1)
            configuration.order = .weighted(["a": 0, "b": 1])
            let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration)
            try await withWorker(worker) {
                var iterator = done.makeAsyncIterator()
                await iterator.next()
            }
        }
        let order = ran.withLock { $0 }
        #expect(order.prefix(100).allSatisfy { $0 == "b" }, "a weight-0 queue ran before b was empty: \(order)")
        #expect(order.dropFirst(100).prefix(50).allSatisfy { $0 == "a" })
    }
}
