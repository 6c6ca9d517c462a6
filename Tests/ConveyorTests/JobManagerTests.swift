import ConveyorTesting
import Foundation
import Synchronization
import Testing

@testable import Conveyor

@Suite("The origin's JobManager API", .timeLimit(.minutes(1)))
struct JobManagerTests {
    @Test func immediateScheduledAndRecurringJobsRunAndCanBePausedAndRemoved() async throws {
        try await withJobQueue { jobs, _ in
            let ran = Ledger()
            var handlers = JobHandlers()
            handlers.register("note") { (payload: [String: String], _: JobContext) in
                ran.created.withLock { $0.append(payload["what"] ?? "?") }
            }
            let manager = JobManager(
                queue: jobs,
                handlers: handlers,
                worker: testWorkerConfiguration(),
                scheduler: .init(lease: .seconds(3))
            )
            let held = try await manager.addScheduledJob(
                "note",
                payload: ["what": "held"],
                runAt: Date().addingTimeInterval(0.5)
            )
            try await manager.pauseJob(held)
            #expect(try await jobs.get(held)?.status == .scheduled)
            manager.start()
            try await manager.addImmediateJob("note", payload: ["what": "now"], id: "ingest_1")
            try await manager.addScheduledJob("note", payload: ["what": "later"], runAt: Date().addingTimeInterval(0.5))
            try await manager.addRecurringJob(
                "note",
                payload: ["what": "tick"],
                interval: .seconds(1),
                name: "recurring_tick"
            )
            try await eventually(timeout: .seconds(15), "the immediate, scheduled and recurring jobs") {
                let notes = ran.created.withLock { $0 }
                return notes.contains("now") && notes.contains("later") && notes.contains("tick")
            }
            #expect(!ran.created.withLock { $0 }.contains("held"))
            guard case .recurring(let stored) = try await manager.getJob("recurring_tick") else {
                Issue.record("the recurring job is missing")
                return
            }
            #expect(stored.schedule.rule == .every(.seconds(1)))
            #expect(try await manager.getJobs().contains { if case .recurring = $0 { true } else { false } })
            try await manager.pauseJob("recurring_tick")
            #expect(try await jobs.schedules().first?.isPaused == true)
            try await manager.resumeJob(held)
            try await eventually(timeout: .seconds(10), "the released job") {
                ran.created.withLock { $0 }.contains("held")
            }
            try await manager.removeJob("recurring_tick")
            #expect(try await manager.getJob("recurring_tick") == nil)
            await manager.shutdown(wait: true)
            #expect(try await jobs.get("default/ingest_1")?.status == .completed)
            await #expect(throws: ConveyorError.self) { try await manager.removeJob("nothing") }
            await #expect(throws: ConveyorError.self) {
                try await manager.addRecurringJob("note", payload: ["what": "x"], cron: "61 * * * *", name: "bad")
            }
            await #expect(throws: ConveyorError.self) {
                try await manager.addRecurringJob(
                    "note",
                    payload: ["what": "x"],
                    cron: "0 * * * *",
                    timeZone: "Nowhere/Land",
                    name: "bad"
                )
            }
        }
    }
}
