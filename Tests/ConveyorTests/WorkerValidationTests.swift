import ConveyorTesting
import Foundation
import Testing

@testable import Conveyor

@Suite("Worker.Configuration validation", .timeLimit(.minutes(1)))
struct WorkerValidationTests {
    /// A configuration with one setting changed, and what the error must mention.
    static let invalid: [(String, @Sendable (inout Worker.Configuration) -> Void)] = [
        ("lease must be at least 1s", { $0.lease = .zero }),
        ("lease must be at least 1s", { $0.lease = .milliseconds(1) }),
        ("lease must be at most 1d", { $0.lease = .seconds(999 * 86_400) }),
        ("heartbeatInterval must be at least 100ms", { $0.heartbeatInterval = .zero }),
        ("heartbeatInterval must be shorter than the lease", { $0.heartbeatInterval = .seconds(30) }),
        ("reclaimInterval must be at least 100ms", { $0.reclaimInterval = .zero }),
        ("reclaimInterval must be at most 1d", { $0.reclaimInterval = .seconds(2 * 86_400) }),
        ("idleWait must be at least 100ms", { $0.idleWait = .zero }),
        ("batchWindow must be at most 1s", { $0.batchWindow = .seconds(2) }),
        ("batchWindow must be at least 0", { $0.batchWindow = .milliseconds(-1) }),
        ("gracePeriod must not be negative", { $0.gracePeriod = .seconds(-1) }),
        ("concurrency must be from 1 to 10000", { $0.concurrency = 0 }),
        ("concurrency must be from 1 to 10000", { $0.concurrency = Int.max }),
        ("maxStalls must be from 0 to 1000", { $0.maxStalls = -1 }),
        ("defaultTimeout must be positive", { $0.defaultTimeout = .zero }),
        ("give at least one queue", { $0.queues = [] }),
        ("schedulerLease must be at least 1s", { $0.schedulerLease = .milliseconds(500) }),
        ("schedulerLease must be at most 1h", { $0.schedulerLease = .seconds(7200) }),
        ("queue name 'a b'", { $0.queues = ["ok", "a b"] }),
    ]

    @Test func theDefaultsAndTheTestTimingsAreValid() throws {
        try Worker.Configuration().validate()
        try testWorkerConfiguration().validate()
    }

    @Test func outOfRangeSettingsAreRefusedWithAConveyorError() throws {
        for (mentions, change) in Self.invalid {
            var configuration = Worker.Configuration()
            change(&configuration)
            do {
                try configuration.validate()
                Issue.record("expected an error mentioning '\(mentions)'")
            } catch let error as ConveyorError {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains(mentions), "'\(error.message)' does not mention '\(mentions)'")
            }
        }
    }

    @Test func aWorkerWithAnInvalidConfigurationFailsBeforeWritingToRedis() async throws {
        try await withJobQueue { jobs, _ in
            let before = try await datasetDigest(jobs)
            var configuration = testWorkerConfiguration(queues: ["fine", "not fine"])
            configuration.reclaimInterval = .zero
            let worker = Worker(queue: jobs, handlers: JobHandlers(), configuration: configuration)
            await #expect(throws: ConveyorError.self) { try await worker.run() }
            #expect(try await datasetDigest(jobs) == before, "the refused worker wrote to Redis")
        }
    }
}
