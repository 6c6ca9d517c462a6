import ConveyorTesting
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing

@testable import Conveyor

@Suite("A worker's embedded scheduler", .timeLimit(.minutes(1)))
struct WorkerSchedulerTests {
    @Test func aWorkerRunsRecurringJobsByDefaultAndGivesUpTheLeaseWhenItStops() async throws {
        try await withJobQueue { jobs, _ in
            let ticks = Mutex(0)
            var handlers = JobHandlers()
            handlers.register("tick") { (_: [String: Int], _: JobContext) in ticks.withLock { $0 += 1 } }
            try await jobs.upsert(try Schedule(name: "tick", type: "tick", rule: .every(.seconds(1))))
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                try await eventually(timeout: .seconds(20), "two fires of the recurring job") {
                    ticks.withLock { $0 } >= 2
                }
                // One process, one id: the leader is the worker itself.
                #expect(try await jobs.leader()?.node == worker.configuration.workerID)
            }
            #expect(try await jobs.leader() == nil, "the stopped worker still holds the leader lease")
        }
    }

    @Test func aGracefulShutdownReleasesTheJobsAndTheLeaseAndASecondCallEndsTheGrace() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register("long") { (_: [String: Int], _: JobContext) in try await Task.sleep(for: .seconds(60)) }
            var configuration = testWorkerConfiguration()
            configuration.gracePeriod = .seconds(60)
            let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration)
            let group = ServiceGroup(
                configuration: ServiceGroupConfiguration(services: [worker], logger: Logger(label: "test"))
            )
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                do {
                    let id = try await jobs.enqueue("long", payload: ["n": 1]).id
                    try await eventually(timeout: .seconds(20), "the job to run and the worker to lead") {
                        let running = try await jobs.get(id)?.status == .processing
                        let leading = try await jobs.leader()?.node == worker.configuration.workerID
                        return running && leading
                    }
                    await group.triggerGracefulShutdown()
                    try await eventually("the lease to be given up") { try await jobs.leader() == nil }
                    // The job is still within its grace period; a second shutdown ends it.
                    #expect(try await jobs.get(id)?.status == .processing)
                    let clock = ContinuousClock()
                    let second = clock.now
                    worker.shutdown(gracePeriod: .zero)
                    try await tasks.waitForAll()
                    #expect(clock.now - second < .seconds(10))
                    #expect(try await jobs.get(id)?.status == .pending)
                } catch {
                    worker.shutdown(gracePeriod: .zero)
                    try? await tasks.waitForAll()
                    throw error
                }
            }
        }
    }

    @Test func aWorkerConfiguredWithoutTheSchedulerTakesNoPartInTheElection() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register("tick") { (_: [String: Int], _: JobContext) in }
            try await jobs.upsert(try Schedule(name: "tick", type: "tick", rule: .every(.seconds(1))))
            var configuration = testWorkerConfiguration()
            configuration.runsScheduler = false
            let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration)
            try await withWorker(worker) {
                let id = try await jobs.enqueue("tick", payload: ["n": 1]).id
                #expect(try await jobs.result(of: id, timeout: .seconds(20)).status == .completed)
                // A scheduler would have taken the lease at once; wait past a fire time to be sure.
                try await Task.sleep(for: .seconds(1.5))
                #expect(try await jobs.leader() == nil)
                #expect(try await jobs.list(queue: "default", status: .completed).count == 1)
            }
        }
    }
}
