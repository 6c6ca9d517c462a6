import Foundation
public import Logging
import Metrics
import RedisClient
public import ServiceLifecycle
import Synchronization

/// Runs jobs from Redis: claims them from its queues, runs their handlers, and records the outcome.
///
/// Any number of workers, in any number of processes on any number of nodes, can serve the same queues. A worker
/// never holds a job only in memory: a claim moves the job to `processing` with a lease, a heartbeat renews the
/// leases of running jobs, and a reclaim loop on every worker returns the jobs of workers that died to pending.
///
/// Unless ``Configuration/runsScheduler`` is off, a worker also runs a ``Scheduler`` beside its slots, so that
/// recurring jobs fire as long as any worker runs (one elected leader fires them; see ``Scheduler``).
///
/// Run it in a `ServiceGroup` (SIGTERM and SIGINT shut it down gracefully), or call ``run()`` yourself:
///
/// ```swift
/// var handlers = JobHandlers()
/// handlers.register("send_email") { (email: Email, context) in try await mailer.send(email) }
/// let worker = Worker(queue: jobs, handlers: handlers, configuration: .init(queues: ["emails"], concurrency: 8))
/// let group = ServiceGroup(services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
///
/// On shutdown the worker stops claiming at once, lets running handlers finish within
/// ``Configuration/gracePeriod``, then cancels the rest and gives their jobs back to pending right away; its
/// scheduler stops at once and gives up the leader lease.
public final class Worker: Service, Sendable {
    /// How a worker serves its queues.
    public struct Configuration: Sendable {
        /// The queues to serve, in priority order; `nil`: the job store's default queue
        /// (``JobQueue/Configuration/defaultQueue``). A ``Worker`` made with `nil` reports the queue it chose.
        public var queues: [String]?
        /// How to choose among the queues for each claim.
        public var order: QueueOrder
        /// How many jobs run at once.
        public var concurrency: Int
        /// How long a claim holds a job without a heartbeat (30 s).
        public var lease: Duration
        /// How often running jobs' leases are renewed (10 s; at most a third of the lease).
        public var heartbeatInterval: Duration
        /// How often expired leases of any worker are reclaimed (15 s; also once at start).
        public var reclaimInterval: Duration
        /// How long running handlers may go on after a shutdown starts (25 s).
        public var gracePeriod: Duration
        /// Lease expiries a job may have before it fails (3).
        public var maxStalls: Int
        /// Whether a job of a type this worker has no handler for is retried (so another worker can take it).
        public var retryUnknownTypes: Bool
        /// The time limit of an attempt when neither the job nor its handler sets one (`nil`: none).
        public var defaultTimeout: Duration?
        /// How long an idle worker waits on Redis before it looks again, when no wake-up comes (5 s).
        public var idleWait: Duration
        /// How long a finished job's outcome may wait, when the worker's queues are empty, to go to Redis in the
        /// same call as the next claim (10 ms): at a steady rate a job then costs one call to record it and claim
        /// the next. A job's result becomes visible up to this much later; a busy worker never waits.
        public var batchWindow: Duration
        /// This worker's id, recorded on jobs and in the worker registry (`host:pid:random`); also its scheduler's
        /// node id, so `conveyor leader` names the worker that leads.
        public var workerID: String
        /// Whether the worker also runs the recurring-job ``Scheduler`` (on by default, as `conveyor worker` does):
        /// every worker takes part in the leader election, and the leader fires the schedules.
        public var runsScheduler: Bool
        /// The lease of the scheduler's leader election (10 s; 1 s to 1 h): a dead leader is replaced within it.
        public var schedulerLease: Duration

        /// Creates a configuration; every parameter has a default.
        ///
        /// - Parameters:
        ///   - queues: Queues in priority order (`nil`: the job store's default queue).
        ///   - order: Strict priority (default) or weights.
        ///   - concurrency: Jobs at once (10).
        ///   - lease: Claim lease (30 s).
        ///   - heartbeatInterval: Lease renewal interval (10 s).
        ///   - reclaimInterval: Reclaim interval (15 s).
        ///   - gracePeriod: Shutdown grace period (25 s).
        ///   - maxStalls: Lease expiries before failing (3).
        ///   - retryUnknownTypes: Retry jobs of unknown types (true).
        ///   - defaultTimeout: Default time limit per attempt (none).
        ///   - idleWait: Longest idle wait without a wake-up (5 s).
        ///   - batchWindow: How long an outcome may wait for the next claim (10 ms).
        ///   - workerID: Worker id (`host:pid:random`).
        ///   - runsScheduler: Run the recurring-job scheduler too (true).
        ///   - schedulerLease: Leader lease of that scheduler (10 s).
        public init(
            queues: [String]? = nil,
            order: QueueOrder = .strict,
            concurrency: Int = 10,
            lease: Duration = .seconds(30),
            heartbeatInterval: Duration = .seconds(10),
            reclaimInterval: Duration = .seconds(15),
            gracePeriod: Duration = .seconds(25),
            maxStalls: Int = 3,
            retryUnknownTypes: Bool = true,
            defaultTimeout: Duration? = nil,
            idleWait: Duration = .seconds(5),
            batchWindow: Duration = .milliseconds(10),
            workerID: String? = nil,
            runsScheduler: Bool = true,
            schedulerLease: Duration = .seconds(10)
        ) {
            self.queues = queues
            self.order = order
            self.concurrency = max(1, concurrency)
            self.lease = lease
            self.heartbeatInterval = min(heartbeatInterval, lease / 3)
            self.reclaimInterval = reclaimInterval
            self.gracePeriod = gracePeriod
            self.maxStalls = maxStalls
            self.retryUnknownTypes = retryUnknownTypes
            self.defaultTimeout = defaultTimeout
            self.idleWait = idleWait
            self.batchWindow = batchWindow
            self.workerID =
                workerID
                ?? "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):"
                + String(UInt32.random(in: 0...UInt32.max), radix: 16)
            self.runsScheduler = runsScheduler
            self.schedulerLease = schedulerLease
        }
    }

    /// How a worker picks the queue of its next claim.
    public enum QueueOrder: Sendable, Hashable {
        /// Always the first queue that has a job (earlier queues starve later ones while busy).
        case strict
        /// Queues tried in a random order weighted per queue: over many claims each queue that has jobs gets a share
        /// proportional to its weight. A queue missing from the map weighs 1; a weight of 0 (or less) makes the
        /// queue a fallback, tried after every weighted queue, so it is served only when they have no job.
        case weighted([String: Int])
    }

    /// The job store the worker serves.
    public let queue: JobQueue
    /// The settings it was made with (``Configuration/queues`` filled in with the job store's default queue when
    /// it was `nil`).
    public let configuration: Configuration
    /// The queues served, in priority order.
    let queues: [String]
    /// The recurring-job scheduler run beside the slots, unless ``Configuration/runsScheduler`` is off.
    let scheduler: Scheduler?
    let handlers: JobHandlers
    let logger: Logger
    /// Failures that repeat while Redis is unreachable, logged once in a while instead of every time.
    let failures = RepeatedFailureLog()
    let state: Mutex<State>
    /// Wakes the dispatcher when a slot hands it an outcome or starts waiting, or at shutdown.
    let bell = Doorbell()
    /// On a Redis Cluster, the dispatcher's blocking connection per queue (see `waitForWorkPerQueue`).
    let clusterWaits = Mutex<[String: RedisConnection]>([:])
    /// Claimed jobs go from the dispatcher to idle slots through it.
    let handoff: JobHandoff
    var metrics: MetricHandles { queue.metrics }
    private let startedAt = Date()

    struct Running: Sendable {
        var job: Job
        var token: String
        var signal: StopSignal
        var startedAt: ContinuousClock.Instant
    }

    struct State: Sendable {
        var running: [String: Running] = [:]
        /// Outcomes handed to the dispatcher, not sent yet, and those being sent (their leases are renewed too).
        var outbox: [PendingReport] = []
        var sending: [PendingReport] = []
        var stopping = false
        /// Every slot has ended (a shutdown): the dispatcher sends what is left and stops.
        var slotsDone = false
        var graceDeadline: ContinuousClock.Instant?
        /// The dispatcher blocks on Redis with no deadline of its own: an outcome must ring the bell list.
        var blockedLong = false
        /// A token was pushed to the bell list during the current block.
        var bellPushed = false
        /// Since when Redis has refused to record an outcome for lack of memory; no slot claims meanwhile.
        var outOfMemorySince: ContinuousClock.Instant?
    }

    /// Creates a worker.
    ///
    /// - Parameters:
    ///   - queue: The job store (its Redis client and namespace).
    ///   - handlers: The handlers by job type.
    ///   - configuration: Queues, concurrency, leases, intervals.
    ///   - logger: Where the worker logs.
    public init(
        queue: JobQueue,
        handlers: JobHandlers,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "conveyor.worker")
    ) {
        let queues = configuration.queues ?? [queue.configuration.defaultQueue]
        self.queue = queue
        self.handlers = handlers
        var configuration = configuration
        configuration.queues = queues
        self.configuration = configuration
        self.queues = queues
        var logger = logger
        logger[metadataKey: "conveyor.worker"] = "\(configuration.workerID)"
        self.logger = logger
        self.scheduler =
            configuration.runsScheduler
            ? Scheduler(
                queue: queue,
                configuration: Scheduler.Configuration(
                    lease: configuration.schedulerLease,
                    nodeID: configuration.workerID
                ),
                logger: logger
            ) : nil
        self.state = Mutex(State())
        self.handoff = JobHandoff(bell: bell)
    }

    /// The full ids of the jobs running now.
    public var runningJobs: [String] { state.withLock { $0.running.values.map(\.job.id) }.sorted() }

    var isStopping: Bool { state.withLock { $0.stopping } }

    // MARK: - Running

    /// Runs until a graceful shutdown (from a `ServiceGroup` or ``shutdown(gracePeriod:)``) or task cancellation.
    ///
    /// - Throws: ``ConveyorError`` when the configuration is out of range (see ``Configuration/validate()``; nothing
    ///   is written then), or when the job store cannot be prepared at start (Redis unreachable).
    public func run() async throws {
        try configuration.validate()
        for name in queues { try JobQueue.validateQueue(name) }
        try await startingUp {
            for name in queues { try await queue.register(name) }
            try await queue.prepare()
            try await queue.register(worker: info(), ttl: presenceInterval * 3)
        }
        logger.info(
            "worker started",
            metadata: [
                "conveyor.queues": "\(queues.joined(separator: ","))",
                "conveyor.concurrency": "\(configuration.concurrency)",
            ]
        )
        await reclaimExpired()
        // Cancelling the worker's task (a service group that cancels its services) is a shutdown with no grace.
        await withTaskCancellationHandler {
            await runUntilShutdown()
        } onCancel: {
            self.shutdown(gracePeriod: .zero)
        }
        try? await queue.deregister(worker: configuration.workerID)
        logger.info("worker stopped")
    }

    private func runUntilShutdown() async {
        await withGracefulShutdownHandler {
            // The scheduler is not in the group that is cancelled once the slots are done: it stops when the
            // shutdown starts, and must be left to give up its lease in Redis (a cancelled call would not run).
            await withDiscardingTaskGroup { outer in
                if let scheduler { outer.addTask { await self.runScheduler(scheduler) } }
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.heartbeatLoop() }
                    group.addTask { await self.presenceLoop() }
                    group.addTask { await self.reclaimLoop() }
                    group.addTask { await self.graceLoop() }
                    await withDiscardingTaskGroup { work in
                        work.addTask { await self.dispatchLoop() }
                        await withDiscardingTaskGroup { slots in
                            for _ in 0..<configuration.concurrency {
                                slots.addTask { await self.slotLoop() }
                            }
                        }
                        // The dispatcher sends the outcomes left, then ends.
                        state.withLock { $0.slotsDone = true }
                        bell.ring()
                    }
                    group.cancelAll()
                }
                scheduler?.stop()
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    /// Starts a graceful shutdown: no more claims; running handlers get `gracePeriod` to finish, then they are
    /// cancelled and their jobs go back to pending. The scheduler, if the worker runs one, stops at once and gives up
    /// the leader lease. Calling it again can shorten the grace period (a second SIGTERM
    /// calls it with `.zero`).
    ///
    /// - Parameter gracePeriod: How long running handlers may go on (``Configuration/gracePeriod`` when `nil`).
    public func shutdown(gracePeriod: Duration? = nil) {
        let deadline = ContinuousClock.now + (gracePeriod ?? configuration.gracePeriod)
        state.withLock { state in
            state.stopping = true
            state.graceDeadline = min(state.graceDeadline ?? deadline, deadline)
        }
        handoff.close()
        bell.ring()
        // Ends the dispatcher's BLPOP, if it blocks; interrupting its connection could cut a report call whose
        // claimed jobs would then wait for their leases to expire.
        ringRemoteBell()
        scheduler?.stop()
        logger.info("worker shutting down", metadata: ["conveyor.grace": "\(gracePeriod ?? configuration.gracePeriod)"])
    }

    private func info() -> WorkerInfo {
        WorkerInfo(
            id: configuration.workerID,
            host: ProcessInfo.processInfo.hostName,
            pid: Int(ProcessInfo.processInfo.processIdentifier),
            queues: queues,
            concurrency: configuration.concurrency,
            inFlight: runningJobs,
            startedAt: startedAt,
            lastHeartbeat: Date()
        )
    }

    // MARK: - Slots

    private func slotLoop() async {
        // Waiting in the handoff tells the dispatcher that this slot wants a job.
        while let claimed = await handoff.next() {
            if isStopping {
                _ = try? await queue.release(claimed.job.id, leaseToken: claimed.leaseToken, unstarted: true)
                continue
            }
            _ = await process(claimed)
        }
    }

    func queueOrder() -> [String] {
        switch configuration.order {
        case .strict:
            return queues
        case .weighted(let weights):
            // Weighted random order without replacement (Efraimidis–Spirakis keys, in (0, 1)). A weight of 0 or less
            // gets a negative key: after every weighted queue, in configured order.
            return queues.enumerated().map { index, name in
                let weight = weights[name] ?? 1
                let key =
                    weight > 0 ? pow(Double.random(in: Double.ulpOfOne..<1), 1 / Double(weight)) : -Double(index + 1)
                return (name, key)
            }.sorted { $0.1 > $1.1 }.map(\.0)
        }
    }

    /// Runs one claimed job and hands its outcome to the dispatcher; returns false when there was none to hand
    /// (the job was cancelled, its lease lost, or it was given back at shutdown).
    private func process(_ claimed: ClaimedJob) async -> Bool {
        let signal = StopSignal()
        let clock = ContinuousClock()
        let began = clock.now
        // Keyed by claim, not by job: a worker may still run a stale attempt of a job it claimed again.
        let claim = "\(claimed.job.id)#\(claimed.leaseToken)"
        state.withLock {
            $0.running[claim] = Running(job: claimed.job, token: claimed.leaseToken, signal: signal, startedAt: began)
        }
        let job = claimed.job
        metrics.counter("conveyor_jobs_started_total", queue: job.queue, type: job.type).increment()
        if let due = job.runAt, let started = job.startedAt {
            metrics.timer("conveyor_job_queue_latency_seconds", queue: job.queue, type: job.type)
                .recordNanoseconds(Int64(max(0, started.timeIntervalSince(due)) * 1e9))
        }
        let outcome = await execute(claimed, signal: signal)
        metrics.timer("conveyor_job_duration_seconds", queue: job.queue, type: job.type)
            .recordNanoseconds(Self.nanoseconds(clock.now - began))
        // The outcome goes to the outbox before the job leaves `running`, so its lease is renewed throughout.
        let posted = await record(outcome, of: claimed)
        state.withLock { _ = $0.running.removeValue(forKey: claim) }
        return posted
    }

    enum Outcome: Sendable {
        case completed(String?)
        case failed(message: String, retryable: Bool, error: JobFailure)
        case stopped(StopReason)
    }

    private func execute(_ claimed: ClaimedJob, signal: StopSignal) async -> Outcome {
        let job = claimed.job
        guard let entry = handlers.entries[job.type] else {
            let message =
                "no handler for type \(job.type) on this worker (\(configuration.workerID)); it handles: "
                + (handlers.types.isEmpty ? "nothing" : handlers.types.joined(separator: ", "))
            return .failed(message: message, retryable: configuration.retryUnknownTypes, error: JobFailure(message))
        }
        var logger = self.logger
        logger[metadataKey: "conveyor.job"] = "\(job.id)"
        logger[metadataKey: "conveyor.type"] = "\(job.type)"
        logger[metadataKey: "conveyor.attempt"] = "\(job.attempts)"
        let queue = self.queue
        let token = claimed.leaseToken
        let context = JobContext(job: job, logger: logger) { json in
            try await queue.reportProgress(job.id, leaseToken: token, json: json)
        }
        let timeout = job.timeout ?? entry.options.timeout ?? configuration.defaultTimeout
        // One task per job (it inherits the slot's task-local values); a stop signal cancels it. A stop that came
        // before the handler returned wins over its result, as the lease or the time limit is gone.
        let work = Task { () -> Outcome in
            do {
                let result = try await entry.run(context)
                if let reason = signal.reason { return .stopped(reason) }
                return .completed(result)
            } catch {
                if let reason = signal.reason { return .stopped(reason) }
                if error is CancellationError || Task.isCancelled { return .stopped(.shutdown) }
                let failure = error as? JobFailure ?? JobFailure(String(describing: error))
                return .failed(message: failure.message, retryable: failure.isRetryable, error: failure)
            }
        }
        signal.onFire { work.cancel() }
        let timer: Task<Void, Never>? = timeout.map { limit in
            Task {
                do {
                    try await Task.sleep(for: limit)
                } catch {
                    return
                }
                signal.fire(.timedOut(limit))
            }
        }
        let outcome = await withTaskCancellationHandler {
            await work.value
        } onCancel: {
            work.cancel()
        }
        timer?.cancel()
        return outcome
    }

    private func record(_ outcome: Outcome, of claimed: ClaimedJob) async -> Bool {
        let job = claimed.job
        let options = handlers.entries[job.type]?.options ?? HandlerOptions()
        switch outcome {
        case .completed(let result):
            post(.completed(id: job.id, token: claimed.leaseToken, result: result), claimed, failure: nil)
            return true
        case .failed(let message, let retryable, let failure):
            postFailure(claimed, message, retryable: retryable, options, failure)
            return true
        case .stopped(.timedOut(let limit)):
            let message = "timed out after \(Self.seconds(limit)) s"
            postFailure(claimed, message, retryable: true, options, JobFailure(message))
            return true
        case .stopped(.cancelRequested):
            do {
                try await queue.fail(
                    job.id,
                    leaseToken: claimed.leaseToken,
                    error: "cancelled while running",
                    retry: false
                )
                metrics.outcome(.cancelled, queue: job.queue, type: job.type).increment()
            } catch {
                logger.warning("could not record the cancellation of job \(job.id): \(error)")
            }
        case .stopped(.leaseLost):
            logger.warning(
                "lost the lease of job \(job.id): another worker or a reclaim took it; its result is dropped"
            )
        case .stopped(.shutdown):
            do {
                try await queue.release(job.id, leaseToken: claimed.leaseToken)
                logger.debug(
                    "gave job \(job.id) back to pending at shutdown",
                    metadata: ["conveyor.job": "\(job.id)", "conveyor.queue": "\(job.queue)"]
                )
            } catch {
                logger.warning("could not give job \(job.id) back at shutdown (its lease will expire): \(error)")
            }
        }
        return false
    }

    private func post(_ outcome: ReportedOutcome, _ claimed: ClaimedJob, failure: JobFailure?) {
        post(PendingReport(outcome: outcome, claimed: claimed, failure: failure, reportedAt: .now))
    }

    private func postFailure(
        _ claimed: ClaimedJob,
        _ message: String,
        retryable: Bool,
        _ options: HandlerOptions,
        _ failure: JobFailure
    ) {
        var retry = retryable
        var delay: Duration?
        var backoff = queue.configuration.backoff
        switch options.retry {
        case .backoff(let configured): backoff = configured
        case .fixed(let fixed): delay = fixed
        case .custom(let strategy):
            if retry {
                delay = strategy(claimed.job.retryCount, failure)
                retry = delay != nil
            }
        case nil: break
        }
        // Values Redis would refuse (which would refuse the whole batch) are brought into its ranges.
        let longest = Duration.seconds(10 * 366 * 86_400)
        let clamp = { (value: Duration) in min(max(value, .zero), longest) }
        backoff.base = clamp(backoff.base)
        backoff.cap = clamp(backoff.cap)
        let outcome = ReportedOutcome.failed(
            id: claimed.job.id,
            token: claimed.leaseToken,
            error: message,
            retry: retry,
            delay: delay.map(clamp),
            backoff: backoff,
            maxRetries: options.maxRetries.map { min(max($0, 0), 10_000) }
        )
        post(outcome, claimed, failure: failure)
    }

    // MARK: - Heartbeat, reclaim, wake-ups, grace

    private func heartbeatLoop() async {
        while true {
            do {
                try await Task.sleep(for: configuration.heartbeatInterval)
            } catch {
                return
            }
            await heartbeat()
        }
    }

    /// Renews every lease this worker holds, and stops the handlers of jobs whose lease was lost or that were asked
    /// to cancel; refreshes the worker's registry record.
    func heartbeat() async {
        let (running, reported) = state.withLock { (Array($0.running.values), $0.outbox + $0.sending) }
        var leases = running.map { (job: $0.job, token: $0.token, signal: Optional($0.signal)) }
        let runningClaims = Set(running.map { "\($0.job.id)#\($0.token)" })
        leases += reported.filter { !runningClaims.contains("\($0.claimed.job.id)#\($0.claimed.leaseToken)") }.map {
            (job: $0.claimed.job, token: $0.claimed.leaseToken, signal: nil)
        }
        for (name, jobs) in Dictionary(grouping: leases, by: \.job.queue) {
            do {
                let statuses = try await queue.heartbeat(
                    queue: name,
                    leases: jobs.map { (id: $0.job.id, token: $0.token) },
                    lease: configuration.lease
                )
                for (job, status) in zip(jobs, statuses) {
                    if let signal = job.signal {
                        switch status {
                        case .extended: break
                        case .cancelRequested: signal.fire(.cancelRequested)
                        case .lost: signal.fire(.leaseLost)
                        }
                    }
                    // A job whose outcome waits to be sent keeps its lease; a cancel asked for meanwhile is
                    // applied by conveyor_report (a failure) or comes too late (a completion).
                }
                failures.succeeded("heartbeat", logger: logger)
            } catch {
                failures.failed(
                    "heartbeat",
                    "heartbeat failed (the leases of \(jobs.count) jobs in queue \(name) were not renewed): \(error)",
                    logger: logger,
                    metadata: ["conveyor.queue": "\(name)"]
                )
            }
        }
    }

    /// How often the worker record is refreshed: a dead worker's record expires after three of these.
    var presenceInterval: Duration { min(configuration.heartbeatInterval, .seconds(2)) }

    /// Refreshes the worker record, and now and then drops the ids of workers whose record expired.
    private func presenceLoop() async {
        var ticks = 0
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: presenceInterval)
            } catch {
                return
            }
            try? await queue.register(worker: info(), ttl: presenceInterval * 3)
            ticks += 1
            if ticks % 10 == 0 { _ = try? await queue.workers() }
        }
    }

    private func reclaimLoop() async {
        while true {
            do {
                try await Task.sleep(for: configuration.reclaimInterval)
            } catch {
                return
            }
            await reclaimExpired()
        }
    }

    private func reclaimExpired() async {
        for name in queues {
            do {
                var handled = 0
                var trimmed = 0
                repeat {
                    (handled, trimmed) = try await queue.reclaimAndTrim(
                        queue: name,
                        limit: 1000,
                        maxStalls: configuration.maxStalls
                    )
                    if handled > 0 {
                        metrics.counter("conveyor_jobs_stalled_total", queue: name, type: nil).increment(by: handled)
                        logger.notice(
                            "reclaimed \(handled) jobs with expired leases in queue \(name)",
                            metadata: ["conveyor.queue": "\(name)"]
                        )
                    }
                } while handled == 1000 || trimmed >= 1000
            } catch {
                failures.failed(
                    "reclaim",
                    "reclaim failed in queue \(name): \(error)",
                    logger: logger,
                    metadata: ["conveyor.queue": "\(name)"]
                )
            }
        }
    }

    /// After a shutdown starts, waits out the grace period, then stops every handler still running.
    private func graceLoop() async {
        while true {
            let (stopping, deadline) = state.withLock { ($0.stopping, $0.graceDeadline) }
            if stopping, let deadline, ContinuousClock.now >= deadline {
                let running = state.withLock { Array($0.running.values) }
                for job in running { job.signal.fire(.shutdown) }
                if running.isEmpty { return }
            }
            do {
                try await Task.sleep(for: .milliseconds(stopping ? 10 : 100))
            } catch {
                return
            }
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    static func seconds(_ duration: Duration) -> String {
        let value = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return value == value.rounded() ? String(Int(value)) : String(format: "%.3g", value)
    }
}
