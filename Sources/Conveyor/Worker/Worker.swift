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
        /// How long an idle worker waits on Redis before it looks again, when no event wakes it (5 s).
        public var idleWait: Duration
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
        ///   - idleWait: Longest idle wait without an event (5 s).
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
    let state: Mutex<State>
    private let idle: IdleSlots
    private let startedAt = Date()

    struct Running: Sendable {
        var job: Job
        var token: String
        var signal: StopSignal
    }

    struct State: Sendable {
        var running: [String: Running] = [:]
        /// Jobs claimed in a batch for slots that were idle, not started yet (their leases are renewed too).
        var claimed: [ClaimedJob] = []
        var stopping = false
        var graceDeadline: ContinuousClock.Instant?
        var watcher: RedisConnection?
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
        self.idle = IdleSlots(limit: configuration.concurrency)
    }

    /// The full ids of the jobs running now.
    public var runningJobs: [String] { state.withLock { $0.running.values.map(\.job.id) }.sorted() }

    private var isStopping: Bool { state.withLock { $0.stopping } }

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
        await withGracefulShutdownHandler {
            // The scheduler is not in the group that is cancelled once the slots are done: it stops when the
            // shutdown starts, and must be left to give up its lease in Redis (a cancelled call would not run).
            await withDiscardingTaskGroup { outer in
                if let scheduler { outer.addTask { await self.runScheduler(scheduler) } }
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.heartbeatLoop() }
                    group.addTask { await self.presenceLoop() }
                    group.addTask { await self.reclaimLoop() }
                    group.addTask { await self.watchLoop() }
                    group.addTask { await self.graceLoop() }
                    await withDiscardingTaskGroup { slots in
                        for _ in 0..<configuration.concurrency {
                            slots.addTask { await self.slotLoop() }
                        }
                    }
                    await releaseClaimed()
                    group.cancelAll()
                }
                scheduler?.stop()
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
        try? await queue.deregister(worker: configuration.workerID)
        logger.info("worker stopped")
    }

    /// Starts a graceful shutdown: no more claims; running handlers get `gracePeriod` to finish, then they are
    /// cancelled and their jobs go back to pending. The scheduler, if the worker runs one, stops at once and gives up
    /// the leader lease. Calling it again can shorten the grace period (a second SIGTERM
    /// calls it with `.zero`).
    ///
    /// - Parameter gracePeriod: How long running handlers may go on (``Configuration/gracePeriod`` when `nil`).
    public func shutdown(gracePeriod: Duration? = nil) {
        let deadline = ContinuousClock.now + (gracePeriod ?? configuration.gracePeriod)
        let watcher: RedisConnection? = state.withLock { state in
            state.stopping = true
            state.graceDeadline = min(state.graceDeadline ?? deadline, deadline)
            return state.watcher
        }
        idle.close()
        watcher?.interrupt()
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
        var next: ClaimedJob?
        var errorDelay = Duration.milliseconds(100)
        while !isStopping && !Task.isCancelled {
            if next == nil {
                // A worker whose completions Redis refuses for memory claims nothing more until they succeed.
                if state.withLock({ $0.outOfMemorySince != nil }) {
                    try? await Task.sleep(for: .milliseconds(200))
                    continue
                }
                do {
                    next = try await claimOne()
                    errorDelay = .milliseconds(100)
                } catch {
                    logger.error("claim failed: \(error)")
                    try? await Task.sleep(for: errorDelay)
                    errorDelay = min(errorDelay * 2, .seconds(2))
                    continue
                }
            }
            guard let claimed = next else {
                await idle.wait()
                continue
            }
            // There may be more: let another idle slot look.
            if idle.hasWaiters { idle.wakeOne() }
            next = await process(claimed)
        }
        if let next {
            _ = try? await queue.release(next.job.id, leaseToken: next.leaseToken, unstarted: true)
        }
    }

    private func queueOrder() -> [String] {
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

    /// The next job for a slot: one claimed earlier for an idle slot, or a fresh claim. When other slots are idle,
    /// the claim takes a job for each of them too, in the same call, and wakes them.
    private func claimOne() async throws -> ClaimedJob? {
        if let ready = state.withLock({ $0.claimed.isEmpty ? nil : $0.claimed.removeFirst() }) { return ready }
        let count = min(100, 1 + idle.waiting)
        for name in queueOrder() {
            let result = try await queue.claim(
                queue: name,
                count: count,
                lease: configuration.lease,
                worker: configuration.workerID
            )
            guard let first = result.jobs.first else { continue }
            let extra = result.jobs.dropFirst()
            if !extra.isEmpty {
                let stopping = state.withLock { state in
                    state.claimed += extra
                    return state.stopping
                }
                if stopping {
                    await releaseClaimed()
                } else {
                    for _ in extra { idle.wakeOne() }
                }
            }
            return first
        }
        return nil
    }

    /// Gives back jobs claimed for slots that never started them (at shutdown).
    private func releaseClaimed() async {
        let leftovers = state.withLock { state in
            defer { state.claimed = [] }
            return state.claimed
        }
        for job in leftovers {
            _ = try? await queue.release(job.job.id, leaseToken: job.leaseToken, unstarted: true)
        }
    }

    /// Runs one claimed job and records its outcome; returns the next job when it could claim one in the same round
    /// trip.
    private func process(_ claimed: ClaimedJob) async -> ClaimedJob? {
        let signal = StopSignal()
        // Keyed by claim, not by job: a worker may still run a stale attempt of a job it claimed again.
        let claim = "\(claimed.job.id)#\(claimed.leaseToken)"
        state.withLock { $0.running[claim] = Running(job: claimed.job, token: claimed.leaseToken, signal: signal) }
        defer { state.withLock { _ = $0.running.removeValue(forKey: claim) } }
        let dimensions = [("queue", claimed.job.queue), ("type", claimed.job.type)]
        Counter(label: "conveyor_jobs_started_total", dimensions: dimensions).increment()
        if let due = claimed.job.runAt, let started = claimed.job.startedAt {
            Metrics.Timer(label: "conveyor_job_queue_latency_seconds", dimensions: dimensions)
                .recordNanoseconds(Int64(max(0, started.timeIntervalSince(due)) * 1e9))
        }
        let clock = ContinuousClock()
        let began = clock.now
        let outcome = await execute(claimed, signal: signal)
        Metrics.Timer(label: "conveyor_job_duration_seconds", dimensions: dimensions)
            .recordNanoseconds(Self.nanoseconds(clock.now - began))
        return await record(outcome, of: claimed, dimensions: dimensions)
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
        return await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do {
                    return .completed(try await entry.run(context))
                } catch {
                    if let reason = signal.reason { return .stopped(reason) }
                    if error is CancellationError || Task.isCancelled { return .stopped(.shutdown) }
                    let failure = error as? JobFailure ?? JobFailure(String(describing: error))
                    return .failed(message: failure.message, retryable: failure.isRetryable, error: failure)
                }
            }
            group.addTask {
                await signal.wait(timeout: timeout).map { .stopped($0) }
            }
            while let result = await group.next() {
                if let outcome = result {
                    group.cancelAll()
                    return outcome
                }
            }
            return .stopped(.shutdown)
        }
    }

    private func record(_ outcome: Outcome, of claimed: ClaimedJob, dimensions: [(String, String)]) async -> ClaimedJob?
    {
        let job = claimed.job
        let options = handlers.entries[job.type]?.options ?? HandlerOptions()
        do {
            switch outcome {
            case .completed(let result):
                let next = try await throughMemoryPressure(job.id) {
                    try await queue.complete(
                        job.id,
                        leaseToken: claimed.leaseToken,
                        result: result,
                        thenClaim: isStopping ? nil : queueOrder().first,
                        lease: configuration.lease,
                        worker: configuration.workerID
                    )
                }
                Counter(label: "conveyor_jobs_completed_total", dimensions: dimensions).increment()
                return next
            case .failed(let message, let retryable, let failure):
                try await throughMemoryPressure(job.id) {
                    try await fail(job, claimed.leaseToken, message, retryable: retryable, options, failure, dimensions)
                }
            case .stopped(.timedOut(let limit)):
                let message = "timed out after \(Self.seconds(limit)) s"
                try await fail(
                    job,
                    claimed.leaseToken,
                    message,
                    retryable: true,
                    options,
                    JobFailure(message),
                    dimensions
                )
            case .stopped(.cancelRequested):
                try await queue.fail(
                    job.id,
                    leaseToken: claimed.leaseToken,
                    error: "cancelled while running",
                    retry: false
                )
                Counter(label: "conveyor_jobs_cancelled_total", dimensions: dimensions).increment()
            case .stopped(.leaseLost):
                logger.warning(
                    "lost the lease of job \(job.id): another worker or a reclaim took it; its result is dropped"
                )
            case .stopped(.shutdown):
                try await queue.release(job.id, leaseToken: claimed.leaseToken)
                logger.info("gave job \(job.id) back to pending at shutdown")
            }
        } catch let error as ConveyorError where error.code == .staleLease || error.code == .invalidState {
            logger.warning("job \(job.id) moved on while it ran: \(error.message)")
        } catch let error as ConveyorError where error.code == .jobNotFound {
            logger.warning("job \(job.id) was removed while it ran")
        } catch {
            logger.error(
                "could not record the outcome of job \(job.id): \(error); its lease will expire and it will run again"
            )
        }
        return nil
    }

    private func fail(
        _ job: Job,
        _ token: String,
        _ message: String,
        retryable: Bool,
        _ options: HandlerOptions,
        _ failure: JobFailure,
        _ dimensions: [(String, String)]
    ) async throws {
        var retry = retryable
        var delay: Duration?
        var backoff: Backoff?
        switch options.retry {
        case .backoff(let configured): backoff = configured
        case .fixed(let fixed): delay = fixed
        case .custom(let strategy):
            if retry {
                delay = strategy(job.retryCount, failure)
                retry = delay != nil
            }
        case nil: break
        }
        let status = try await queue.fail(
            job.id,
            leaseToken: token,
            error: message,
            retry: retry,
            delay: delay,
            maxRetries: options.maxRetries,
            backoff: backoff
        )
        let label = status == .retrying ? "conveyor_jobs_retried_total" : "conveyor_jobs_failed_total"
        Counter(label: label, dimensions: dimensions).increment()
        logger.info("job \(job.id) failed (\(status.rawValue)): \(message)")
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
        let (running, waiting) = state.withLock { (Array($0.running.values), $0.claimed) }
        var leases = running.map { (job: $0.job, token: $0.token, signal: Optional($0.signal)) }
        leases += waiting.map { (job: $0.job, token: $0.leaseToken, signal: nil) }
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
                    } else if status != .extended {
                        // Claimed for an idle slot but not started: drop it, and end it if a cancel was asked for.
                        let taken = state.withLock { state in
                            let before = state.claimed.count
                            state.claimed.removeAll { $0.job.id == job.job.id && $0.leaseToken == job.token }
                            return state.claimed.count < before
                        }
                        if taken && status == .cancelRequested {
                            _ = try? await queue.fail(
                                job.job.id,
                                leaseToken: job.token,
                                error: "cancelled",
                                retry: false
                            )
                        }
                    }
                }
            } catch {
                logger.error("heartbeat failed: \(error)")
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
                repeat {
                    handled = try await queue.reclaimExpired(
                        queue: name,
                        limit: 1000,
                        maxStalls: configuration.maxStalls
                    )
                    if handled > 0 {
                        Counter(label: "conveyor_jobs_stalled_total", dimensions: [("queue", name)]).increment(
                            by: handled
                        )
                        logger.info("reclaimed \(handled) jobs with expired leases in queue \(name)")
                    }
                } while handled == 1000
            } catch {
                logger.error("reclaim failed in queue \(name): \(error)")
            }
        }
    }

    /// Blocks on the queues' event streams and wakes an idle slot when work may be there: a new pending job, or the
    /// time of the next scheduled or retrying job.
    private func watchLoop() async {
        let connection = queue.redis.makeDedicatedConnection()
        defer { connection.close() }
        let isStopping = state.withLock { state in
            state.watcher = connection
            return state.stopping
        }
        if isStopping { return }
        let keys = queue.keys
        let names = queues
        var cursors = [String](repeating: "$", count: names.count)
        var nextDue: Date?
        var refreshDue = true
        while !self.isStopping && !Task.isCancelled {
            do {
                if cursors.contains("$") {
                    // Resolve "$" to real ids once, before the first look at due times, so no event is missed.
                    for (index, name) in names.enumerated() where cursors[index] == "$" {
                        let last = try await connection.send("XREVRANGE", keys.events(name), "+", "-", "COUNT", 1)
                        cursors[index] = last.array?.first?.array?.first?.string ?? "0-0"
                    }
                }
                if refreshDue {
                    let firsts = try await connection.pipeline(
                        names.flatMap { name in
                            [JobStatus.scheduled, .retrying].map {
                                RedisCommand("ZRANGE", keys.index(name, $0), 0, 0, "WITHSCORES")
                            }
                        }
                    )
                    nextDue = firsts.compactMap { $0.array?.last?.int }.min()
                        .map { Date(timeIntervalSince1970: Double($0) / 1000) }
                    refreshDue = false
                }
                var wait = configuration.idleWait
                if let nextDue {
                    wait = min(wait, max(.milliseconds(1), .milliseconds(Int64(nextDue.timeIntervalSinceNow * 1000))))
                }
                let reply = try await connection.send(
                    RedisCommand(
                        "XREAD",
                        ["COUNT", 200, "BLOCK", max(1, JobQueue.milliseconds(wait)), "STREAMS"]
                            + names.map { keys.events($0) } + cursors
                    ),
                    blockingFor: wait
                )
                guard let streams = reply.array else {
                    // Timed out: something may have fallen due. Look at the due times again either way, since a
                    // job may have been scheduled before this loop read the streams' ends.
                    if let due = nextDue, due.timeIntervalSinceNow <= 0.001 { idle.wakeOne() }
                    refreshDue = true
                    continue
                }
                var wakes = 0
                for stream in streams {
                    guard let parts = stream.array, parts.count == 2, let key = parts[0].string,
                        let index = names.firstIndex(where: { keys.events($0) == key })
                    else { continue }
                    for entry in parts[1].array ?? [] {
                        guard let fields = entry.array, fields.count == 2, let id = fields[0].string else { continue }
                        cursors[index] = id
                        let values = JobQueue.fields(fields[1].array ?? [])
                        if values["queue_event"] == "resumed" { wakes += configuration.concurrency }
                        switch values["to"] {
                        case "pending": wakes += 1
                        case "scheduled", "retrying": refreshDue = true
                        default: break
                        }
                    }
                }
                for _ in 0..<min(wakes, configuration.concurrency) { idle.wakeOne() }
            } catch {
                if self.isStopping || Task.isCancelled { return }
                logger.error("waiting for events failed: \(error)")
                idle.wakeOne()
                try? await Task.sleep(for: .milliseconds(200))
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
