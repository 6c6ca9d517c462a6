import ConveyorTesting
import Foundation
import RedisClient
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
            var worker = testWorkerConfiguration()
            worker.schedulerLease = .seconds(3)
            let manager = JobManager(queue: jobs, handlers: handlers, worker: worker)
            let held = try await manager.addScheduledJob(
                "note",
                payload: ["what": "held"],
                runAt: Date().addingTimeInterval(0.5)
            )
            try await manager.pauseJob(held)
            #expect(try await jobs.get(held)?.status == .scheduled)
            try await manager.start()
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

    @Test func everyKindOfJobAndTheWorkerUseTheConfiguredDefaultQueue() async throws {
        try await withJobQueue(JobQueue.Configuration(defaultQueue: "app")) { jobs, _ in
            let ran = Mutex<[String]>([])
            var handlers = JobHandlers()
            handlers.register("note") { (_: [String: String], context: JobContext) in
                ran.withLock { $0.append(context.job.id) }
            }
            // Worker settings that name no queue: the manager's worker serves the job store's default queue.
            let manager = JobManager(
                queue: jobs,
                handlers: handlers,
                worker: Worker.Configuration(
                    concurrency: 2,
                    lease: .seconds(3),
                    heartbeatInterval: .milliseconds(100),
                    reclaimInterval: .milliseconds(200),
                    idleWait: .seconds(1)
                )
            )
            try await manager.start()
            let now = try await manager.addImmediateJob("note", payload: ["what": "now"])
            let later = try await manager.addScheduledJob(
                "note",
                payload: ["what": "later"],
                runAt: Date().addingTimeInterval(0.5)
            )
            try await manager.addRecurringJob("note", payload: ["what": "tick"], interval: .seconds(1), name: "tick")
            #expect(now.hasPrefix("app/") && later.hasPrefix("app/"))
            #expect(try await jobs.schedules().map(\.schedule.queue) == ["app"])
            try await eventually(timeout: .seconds(20), "the immediate, scheduled and recurring jobs to run") {
                let ids = ran.withLock { $0 }
                return ids.contains(now) && ids.contains(later) && ids.contains { $0.hasPrefix("app/tick@") }
            }
            await manager.shutdown(wait: true)
            #expect(ran.withLock { $0 }.allSatisfy { $0.hasPrefix("app/") })
            #expect(try await jobs.queues() == ["app"])
        }
    }

    @Test func startFailsWithAClearErrorWhenRedisIsUnreachable() async throws {
        let port = try RefusingPort()
        let url = try RedisURL("redis://127.0.0.1:\(port.port)")
        let redis = RedisClient(configuration: .init(url: url, connectTimeout: .milliseconds(300)))
        defer { redis.shutdown() }
        let manager = JobManager(queue: JobQueue(redis: redis), handlers: JobHandlers())
        do {
            try await manager.start()
            Issue.record("start() against an unreachable Redis did not fail")
        } catch let error as ConveyorError {
            #expect(error.code == .redis)
            #expect(error.message.contains("127.0.0.1:\(port.port)"), "\(error.message)")
            #expect(error.message.contains("JobManager could not start"), "\(error.message)")
        }
        await manager.shutdown(wait: false)
    }
}
