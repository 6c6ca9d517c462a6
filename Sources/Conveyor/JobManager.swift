public import Foundation
public import Logging
import RedisClient
import ServiceLifecycle
import Synchronization

/// The origin document's `JobManager`, in Conveyor: immediate, scheduled and recurring jobs, and the runtime that
/// runs them (a ``Worker``, which runs the ``Scheduler`` beside its slots).
///
/// | origin | Conveyor |
/// | --- | --- |
/// | `add_immediate_job(func, job_id=…)` | ``addImmediateJob(_:payload:id:queue:)`` |
/// | `add_scheduled_job(func, run_at=…)` | ``addScheduledJob(_:payload:runAt:id:queue:)`` |
/// | `add_recurring_job(func, interval_seconds=…)` | ``addRecurringJob(_:payload:interval:name:queue:)`` |
/// | (cron) | ``addRecurringJob(_:payload:cron:timeZone:name:queue:)`` |
/// | `remove_job`, `get_job`, `get_jobs` | ``removeJob(_:)``, ``getJob(_:)``, ``getJobs()`` |
/// | `pause_job`, `resume_job` | ``pauseJob(_:)``, ``resumeJob(_:)`` |
/// | `start()`, `shutdown(wait=True)` | ``start()``, ``shutdown(wait:)`` |
///
/// Functions are job types here: register a handler for each type in the ``JobHandlers`` given to the manager.
/// Recurring jobs are schedules, named by their id; one-off jobs have full ids `<queue>/<id>`. Every job goes to the
/// job store's default queue (``JobQueue/Configuration/defaultQueue``) unless a call names another, and the worker
/// serves that queue unless its configuration names queues.
public final class JobManager: Sendable {
    /// A job or a schedule, as ``getJob(_:)`` and ``getJobs()`` return them.
    public enum Entry: Sendable, Hashable {
        /// A one-off job.
        case job(Job)
        /// A recurring job.
        case recurring(StoredSchedule)
    }

    /// The job store.
    public let queue: JobQueue
    private let worker: Worker
    private let logger: Logger
    private let running = Mutex<(group: ServiceGroup, task: Task<Void, any Error>)?>(nil)

    /// Creates a manager; nothing runs until ``start()``.
    ///
    /// - Parameters:
    ///   - queue: The job store.
    ///   - handlers: The handlers by job type.
    ///   - worker: Worker settings (queues, concurrency, …, and its scheduler: ``Worker/Configuration/runsScheduler``,
    ///     ``Worker/Configuration/schedulerLease``).
    ///   - logger: Where it logs.
    public init(
        queue: JobQueue,
        handlers: JobHandlers,
        worker: Worker.Configuration = Worker.Configuration(),
        logger: Logger = Logger(label: "conveyor.manager")
    ) {
        self.queue = queue
        self.worker = Worker(queue: queue, handlers: handlers, configuration: worker, logger: logger)
        self.logger = logger
    }

    /// Enqueues a job to run now (`add_immediate_job`).
    ///
    /// - Returns: The job's full id.
    /// - Throws: ``ConveyorError`` for bad input or when Redis fails.
    @discardableResult
    public func addImmediateJob(
        _ type: String,
        payload: some Encodable & Sendable,
        id: String? = nil,
        queue name: String? = nil
    ) async throws -> String {
        try await queue.enqueue(type, payload: payload, options: JobOptions(queue: name, id: id)).id
    }

    /// Enqueues a job to run at a time (`add_scheduled_job`).
    ///
    /// - Returns: The job's full id.
    /// - Throws: ``ConveyorError`` for bad input or when Redis fails.
    @discardableResult
    public func addScheduledJob(
        _ type: String,
        payload: some Encodable & Sendable,
        runAt: Date,
        id: String? = nil,
        queue name: String? = nil
    ) async throws -> String {
        try await queue.enqueue(type, payload: payload, options: JobOptions(queue: name, id: id, runAt: runAt)).id
    }

    /// Adds (or updates) a job that runs every interval (`add_recurring_job(interval_seconds=…)`), in `queue` or
    /// the job store's default queue.
    ///
    /// - Returns: The schedule's name.
    /// - Throws: ``ConveyorError`` for bad input (an interval below 1 s) or when Redis fails.
    @discardableResult
    public func addRecurringJob(
        _ type: String,
        payload: some Encodable & Sendable,
        interval: Duration,
        name: String,
        queue queueName: String? = nil
    ) async throws -> String {
        let json = String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
        let target = queueName ?? queue.configuration.defaultQueue
        try await queue.upsert(
            try Schedule(name: name, type: type, payload: json, queue: target, rule: .every(interval))
        )
        return name
    }

    /// Adds (or updates) a job that runs on a cron expression in a time zone, in `queue` or the job store's default
    /// queue.
    ///
    /// - Returns: The schedule's name.
    /// - Throws: ``ConveyorError`` for an invalid expression or time zone, or when Redis fails.
    @discardableResult
    public func addRecurringJob(
        _ type: String,
        payload: some Encodable & Sendable,
        cron: String,
        timeZone: String = "UTC",
        name: String,
        queue queueName: String? = nil
    ) async throws -> String {
        let json = String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
        let rule = Schedule.Rule.cron(try CronExpression(cron), timeZone: try Schedule.timeZone(timeZone))
        let target = queueName ?? queue.configuration.defaultQueue
        try await queue.upsert(try Schedule(name: name, type: type, payload: json, queue: target, rule: rule))
        return name
    }

    /// Removes a one-off job (by its full id) or a recurring job (by its name).
    ///
    /// - Throws: ``ConveyorError`` (``ConveyorError/Code/jobNotFound`` when there is neither).
    public func removeJob(_ id: String) async throws {
        if id.contains("/") {
            try await queue.remove(id, force: true)
        } else if let stored = try await schedule(id) {
            try await queue.removeSchedule(id, queue: stored.schedule.queue)
        } else {
            throw ConveyorError(.jobNotFound, "no job or recurring job '\(id)'")
        }
    }

    /// A one-off job (full id) or a recurring job (name).
    ///
    /// - Returns: The entry, or `nil`.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func getJob(_ id: String) async throws -> Entry? {
        if id.contains("/") { return try await queue.get(id).map(Entry.job) }
        return try await schedule(id).map(Entry.recurring)
    }

    /// Every recurring job, then the one-off jobs that have not run yet (scheduled and pending) in every queue.
    ///
    /// - Returns: The entries.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func getJobs() async throws -> [Entry] {
        var entries = try await queue.schedules().map(Entry.recurring)
        for name in try await queue.queues() {
            for status in [JobStatus.scheduled, .pending] {
                entries += try await queue.list(queue: name, status: status, limit: 1000).map(Entry.job)
            }
        }
        return entries
    }

    /// Pauses a recurring job (it stops firing) or holds a pending or scheduled one-off job (it does not run).
    ///
    /// - Throws: ``ConveyorError`` when there is no such job, or it is running or finished.
    public func pauseJob(_ id: String) async throws {
        if id.contains("/") {
            let (name, localID) = try queue.split(id)
            _ = try await queue.invoke("conveyor_hold", queue: name, [localID], jobID: id)
        } else if let stored = try await schedule(id) {
            try await queue.pauseSchedule(id, queue: stored.schedule.queue)
        } else {
            throw ConveyorError(.jobNotFound, "no job or recurring job '\(id)'")
        }
    }

    /// Resumes a paused recurring job or releases a held one-off job.
    ///
    /// - Throws: ``ConveyorError`` when there is no such job.
    public func resumeJob(_ id: String) async throws {
        if id.contains("/") {
            let (name, localID) = try queue.split(id)
            _ = try await queue.invoke("conveyor_unhold", queue: name, [localID], jobID: id)
        } else if let stored = try await schedule(id) {
            try await queue.resumeSchedule(id, queue: stored.schedule.queue)
        } else {
            throw ConveyorError(.jobNotFound, "no job or recurring job '\(id)'")
        }
    }

    /// Starts running jobs and recurring schedules in the background (the worker, with its scheduler, in a service
    /// group owned by the manager), once it has checked the worker's settings and that Redis answers and holds
    /// Conveyor's function library. Calling it again does nothing.
    ///
    /// - Throws: ``ConveyorError``: ``ConveyorError/Code/invalidArgument`` for worker settings out of range,
    ///   ``ConveyorError/Code/redis`` when Redis cannot be reached, ``ConveyorError/Code/libraryMismatch`` when the
    ///   library is missing (run `conveyor install`). Nothing runs then. A failure after the start is logged as an
    ///   error.
    public func start() async throws {
        if running.withLock({ $0 != nil }) { return }
        try worker.configuration.validate()
        do {
            try await queue.prepare()
        } catch let error as ConveyorError {
            throw ConveyorError(error.code, "JobManager could not start: " + error.message)
        } catch let error as RedisClientError {
            throw ConveyorError(.redis, "JobManager could not start: " + error.message)
        }
        let logger = self.logger
        running.withLock { running in
            guard running == nil else { return }
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [worker], logger: logger))
            let task = Task {
                do {
                    try await group.run()
                } catch {
                    logger.error("JobManager stopped running jobs: \(error)")
                    throw error
                }
            }
            running = (group, task)
        }
    }

    /// Stops: no more claims or ticks; with `wait`, running jobs get the worker's grace period to finish and this
    /// returns when everything stopped; without, they are given back to pending at once.
    ///
    /// - Parameter wait: Whether to let running jobs finish.
    public func shutdown(wait: Bool = true) async {
        let current = running.withLock { running in
            defer { running = nil }
            return running
        }
        guard let current else { return }
        await current.group.triggerGracefulShutdown()
        if !wait { worker.shutdown(gracePeriod: .zero) }
        _ = try? await current.task.value
    }

    private func schedule(_ name: String) async throws -> StoredSchedule? {
        try await queue.schedules().first { $0.schedule.name == name }
    }
}
