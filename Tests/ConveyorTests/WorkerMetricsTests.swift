import ConveyorTesting
import Foundation
import Metrics
import MetricsTestKit
import Testing

@testable import Conveyor

/// The process-wide test metrics backend (the metrics system can be bootstrapped once per process).
let testMetrics: TestMetrics = {
    let metrics = TestMetrics()
    MetricsSystem.bootstrap(metrics)
    return metrics
}()

@Suite("Worker metrics", .timeLimit(.minutes(1)))
struct WorkerMetricsTests {
    @Test func countersAndTimersCarryQueueAndType() async throws {
        let metrics = testMetrics
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register("measured") { (_: [String: Int], _: JobContext) in }
            handlers.register("broken") { (_: [String: Int], _: JobContext) in throw JobFailure.permanent("no") }
            let worker = Worker(
                queue: jobs,
                handlers: handlers,
                configuration: testWorkerConfiguration(queues: ["metered"])
            )
            try await withWorker(worker) {
                let ok = try await jobs.enqueue("measured", payload: ["n": 1], options: JobOptions(queue: "metered")).id
                let bad = try await jobs.enqueue("broken", payload: ["n": 1], options: JobOptions(queue: "metered")).id
                _ = try await jobs.result(of: ok, timeout: .seconds(20))
                _ = try await jobs.result(of: bad, timeout: .seconds(20))
            }
            let dimensions = [("queue", "metered"), ("type", "measured")]
            #expect(try metrics.expectCounter("conveyor_jobs_enqueued_total", dimensions).totalValue == 1)
            #expect(try metrics.expectCounter("conveyor_jobs_started_total", dimensions).totalValue == 1)
            #expect(try metrics.expectCounter("conveyor_jobs_completed_total", dimensions).totalValue == 1)
            #expect(try metrics.expectTimer("conveyor_job_duration_seconds", dimensions).values.count == 1)
            let failed = [("queue", "metered"), ("type", "broken")]
            #expect(try metrics.expectCounter("conveyor_jobs_failed_total", failed).totalValue == 1)
        }
    }
}
