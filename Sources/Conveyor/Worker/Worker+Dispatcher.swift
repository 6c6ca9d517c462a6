import Foundation
import Logging
import Metrics
import RedisClient
import Synchronization

/// An outcome a slot handed to the dispatcher, waiting to be sent.
struct PendingReport: Sendable {
    var outcome: ReportedOutcome
    var claimed: ClaimedJob
    var failure: JobFailure?
    var reportedAt: ContinuousClock.Instant
}

/// What the dispatcher knows about one queue between claims.
struct QueueWatch: Sendable {
    /// A claim found the queue empty (or paused) and no wake-up came since: claiming again would find nothing.
    var empty = false
    /// The earliest time a scheduled or retrying job may fall due, from the last claim.
    var nextDue: ContinuousClock.Instant?
}

// The dispatcher: the one task of a worker that talks to Redis for claims and outcomes. Slots hand it outcomes
// (PendingReport) and wait for jobs (JobHandoff); it sends them in one conveyor_report call per queue, claiming in
// the same call as many jobs as slots wait. When every queue is known to be empty it blocks (BLPOP) on the queues'
// wake lists and its own bell list; a finished job's outcome waits up to batchWindow for the next wake-up, so that
// at a steady rate one call records a job and claims the next.
extension Worker {
    /// How long an outcome may wait to share a round trip with the next claim when the worker's queues are empty.
    var batchWindow: Duration { configuration.batchWindow }

    /// Hands a finished job's outcome to the dispatcher.
    func post(_ report: PendingReport) {
        let ringRedis = state.withLock { state in
            state.outbox.append(report)
            defer { state.bellPushed = state.bellPushed || state.blockedLong }
            return state.blockedLong && !state.bellPushed
        }
        bell.ring()
        if ringRedis { ringRemoteBell() }
    }

    /// Ends the dispatcher's BLPOP from outside: pushes a token to the worker's own bell list.
    func ringRemoteBell() {
        // On a cluster the dispatcher blocks on a bell per queue (in the queue's slot): ring them all.
        let bells =
            queue.redis.isCluster
            ? queues.map { queue.keys.workerBell(configuration.workerID, queue: $0) }
            : [queue.keys.workerBell(configuration.workerID)]
        let redis = queue.redis
        Task {
            _ = try? await redis.pipeline(
                bells.flatMap { [RedisCommand("RPUSH", $0, "1"), RedisCommand("PEXPIRE", $0, 60_000)] }
            )
        }
    }

    func dispatchLoop() async {
        let connection = queue.redis.makeDedicatedConnection()
        defer {
            connection.close()
            for waiting in clusterWaits.withLock({ $0.values }) { waiting.close() }
        }
        if isStopping { handoff.close() }
        // On the connection's own thread: its BLPOP and report calls then run without a thread hop each way.
        _ = try? await connection.withPinnedTask { await dispatch(on: connection) }
    }

    private func dispatch(on connection: RedisConnection) async {
        var watches = Dictionary(uniqueKeysWithValues: queues.map { ($0, QueueWatch()) })
        var errorDelay = Duration.milliseconds(100)
        var lastFullLook = ContinuousClock.now
        while true {
            let now = ContinuousClock.now
            let (reports, stopping, outOfMemory, slotsDone, recentStart) = state.withLock { state in
                (
                    state.outbox, state.stopping, state.outOfMemorySince != nil, state.slotsDone,
                    state.running.values.contains { now - $0.startedAt < batchWindow }
                )
            }
            if slotsDone && reports.isEmpty { return }
            if now - lastFullLook >= configuration.idleWait {
                // Now and then look at every queue, whatever the wake-ups said (a producer that wrote a job by
                // hand pushes no token).
                for name in queues { watches[name]?.empty = false }
                lastFullLook = now
            }
            for name in queues where watches[name]?.empty == true {
                if let due = watches[name]?.nextDue, due <= now { watches[name]?.empty = false }
            }
            let want = stopping || outOfMemory ? 0 : handoff.waiting
            let claimable = want > 0 ? queueOrder().filter { watches[$0]?.empty == false } : []
            if reports.isEmpty && claimable.isEmpty {
                if want > 0 {
                    await waitForWork(connection, &watches, until: recentStart ? now + batchWindow : nil)
                } else if !stopping, !outOfMemory, let (name, due) = earliestDue(watches), due <= now {
                    // Busy, but a scheduled or retrying job this worker knows of is due: promote it (a call that
                    // claims nothing), which wakes idle workers for it.
                    await promote(name, &watches, on: connection)
                } else {
                    var wait = outOfMemory ? .milliseconds(200) : configuration.idleWait
                    if !stopping, let (_, due) = earliestDue(watches) { wait = min(wait, due - now) }
                    await bell.wait(timeout: wait)
                }
                continue
            }
            if let oldest = reports.first?.reportedAt, claimable.isEmpty, want > 0, now - oldest < batchWindow {
                // Every queue is empty: let the outcome wait a moment for the next job, to go in the same call.
                await waitForWork(connection, &watches, until: oldest + batchWindow)
                continue
            }
            let sending = state.withLock { state in
                defer { state.outbox = [] }
                state.sending = state.outbox
                return state.outbox
            }
            do {
                try await send(sending, claimable: claimable, want: want, &watches, on: connection)
                state.withLock { $0.sending = [] }
                errorDelay = .milliseconds(100)
            } catch let error as ConveyorError where error.code == .invalidArgument {
                // Redis refused the whole call for one bad outcome: send them one by one, and drop (with the
                // reason) only those it refuses; their jobs run again once their leases expire.
                let unsent = state.withLock { state in
                    defer { state.sending = [] }
                    return state.sending
                }
                await isolate(unsent, on: connection)
            } catch {
                state.withLock { state in
                    state.outbox = state.sending + state.outbox
                    state.sending = []
                }
                if await giveUp(after: error, reports: sending) { return }
                try? await Task.sleep(for: errorDelay)
                errorDelay = min(errorDelay * 2, .seconds(5))
            }
        }
    }

    private func isolate(_ reports: [PendingReport], on connection: RedisConnection) async {
        for report in reports {
            do {
                let reply = try await queue.report(
                    queue: report.claimed.job.queue,
                    outcomes: [report.outcome],
                    claim: 0,
                    lease: configuration.lease,
                    worker: configuration.workerID,
                    on: connection
                )
                var watches: [String: QueueWatch] = [:]
                _ = handle(reply, of: [report], from: report.claimed.job.queue, asked: 0, &watches)
            } catch let refusal as ConveyorError where refusal.code == .invalidArgument {
                logger.error(
                    "Redis refused the outcome of job \(report.claimed.job.id): \(refusal.message); it runs again once its lease expires"
                )
            } catch {
                state.withLock { $0.outbox.append(report) }
            }
        }
    }

    /// The queue whose next scheduled or retrying job falls due first, by the replies this worker had.
    private func earliestDue(_ watches: [String: QueueWatch]) -> (String, ContinuousClock.Instant)? {
        watches.compactMap { name, watch in watch.nextDue.map { (name, $0) } }.min { $0.1 < $1.1 }
    }

    private func promote(_ name: String, _ watches: inout [String: QueueWatch], on connection: RedisConnection) async {
        do {
            let reply = try await queue.report(
                queue: name,
                outcomes: [],
                claim: 0,
                lease: configuration.lease,
                worker: configuration.workerID,
                on: connection
            )
            watches[name]?.nextDue = reply.nextDueIn.map { .now + $0 }
            failures.succeeded("promotion", logger: logger)
        } catch {
            failures.failed(
                "promotion",
                "promoting due jobs of queue \(name) failed: \(error)",
                logger: logger,
                metadata: ["conveyor.queue": "\(name)"]
            )
            watches[name]?.nextDue = .now + .seconds(1)
        }
    }

    /// Handles a failed report call; returns true when the dispatcher should stop (a shutdown's grace period is
    /// over and Redis still refuses: the leases of those jobs expire and they run again).
    private func giveUp(after error: any Error, reports: [PendingReport]) async -> Bool {
        let (stopping, deadline) = state.withLock { ($0.stopping, $0.graceDeadline) }
        if let error = error as? ConveyorError, error.code == .outOfMemory {
            let first = state.withLock { state in
                defer { state.outOfMemorySince = state.outOfMemorySince ?? .now }
                return state.outOfMemorySince == nil
            }
            if first {
                logger.warning(
                    """
                    Redis is at maxmemory and refuses to record job outcomes: this worker claims nothing more \
                    and retries until it can (raise maxmemory or clean up old jobs)
                    """,
                    metadata: ["conveyor.job": "\(reports.first?.claimed.job.id ?? "")"]
                )
            }
        } else {
            failures.failed("report", "recording outcomes or claiming failed: \(error)", logger: logger)
        }
        if stopping, let deadline, ContinuousClock.now >= deadline {
            logger.error(
                "gave up recording \(reports.count) outcomes at shutdown: those jobs will run again once their leases expire"
            )
            state.withLock { $0.outbox = [] }
            return true
        }
        return false
    }

    /// One conveyor_report call per queue that has outcomes or is claimed from, claims in queue order.
    private func send(
        _ reports: [PendingReport],
        claimable: [String],
        want: Int,
        _ watches: inout [String: QueueWatch],
        on connection: RedisConnection
    ) async throws {
        var byQueue = Dictionary(grouping: reports, by: { $0.claimed.job.queue })
        var remaining = want
        for name in claimable where remaining > 0 {
            var own = byQueue.removeValue(forKey: name) ?? []
            if own.count > 1000 {
                byQueue[name] = Array(own.dropFirst(1000))
                own = Array(own.prefix(1000))
            }
            let count = min(remaining, 1000)
            let reply = try await queue.report(
                queue: name,
                outcomes: own.map(\.outcome),
                claim: count,
                lease: configuration.lease,
                worker: configuration.workerID,
                on: connection
            )
            for job in handle(reply, of: own, from: name, asked: count, &watches) {
                _ = try? await queue.release(job.job.id, leaseToken: job.leaseToken, unstarted: true)
            }
            remaining -= reply.claim.jobs.count
        }
        for (name, own) in byQueue {
            for start in stride(from: 0, to: own.count, by: 1000) {
                let part = Array(own[start..<min(own.count, start + 1000)])
                let reply = try await queue.report(
                    queue: name,
                    outcomes: part.map(\.outcome),
                    claim: 0,
                    lease: configuration.lease,
                    worker: configuration.workerID,
                    on: connection
                )
                _ = handle(reply, of: part, from: name, asked: 0, &watches)
            }
        }
    }

    /// Logs and counts the outcomes of a reply, and hands its jobs to waiting slots; returns those no slot took (a
    /// shutdown started meanwhile), for the caller to give back.
    private func handle(
        _ reply: ReportReply,
        of reports: [PendingReport],
        from name: String,
        asked: Int,
        _ watches: inout [String: QueueWatch]
    ) -> [ClaimedJob] {
        let since = state.withLock { state in
            defer { state.outOfMemorySince = nil }
            if reports.count >= state.sending.count {
                // The common case, one queue: everything being sent was in this call.
                state.sending = []
            } else if !reports.isEmpty {
                let sent = Set(reports.map { "\($0.claimed.job.id)#\($0.claimed.leaseToken)" })
                state.sending.removeAll { sent.contains("\($0.claimed.job.id)#\($0.claimed.leaseToken)") }
            }
            return state.outOfMemorySince
        }
        if let since {
            logger.warning("Redis accepts writes again after \(ContinuousClock.now - since); claiming again")
        }
        failures.succeeded("report", logger: logger)
        for (report, status) in zip(reports, reply.statuses) {
            let job = report.claimed.job
            switch status {
            case .success(let status):
                metrics.outcome(status, queue: job.queue, type: job.type).increment()
                if status != .completed, case .failed(_, _, let message, _, _, _, _) = report.outcome {
                    // A failed job is the application's business (its error is in the job, the events and the
                    // metrics), not the operator's: debug, as swift-log asks of libraries.
                    logger.debug(
                        "job \(job.id) failed (\(status.rawValue)): \(message)",
                        metadata: ["conveyor.job": "\(job.id)", "conveyor.queue": "\(job.queue)"]
                    )
                }
            case .failure(let error) where error.code == .staleLease || error.code == .invalidState:
                // Its result is dropped and another attempt ran or runs it: a duplicate run, worth a warning.
                logger.warning(
                    "job \(job.id) moved on while it ran: \(error.message)",
                    metadata: ["conveyor.job": "\(job.id)", "conveyor.queue": "\(job.queue)"]
                )
            case .failure(let error) where error.code == .jobNotFound:
                logger.debug(
                    "job \(job.id) was removed while it ran",
                    metadata: ["conveyor.job": "\(job.id)", "conveyor.queue": "\(job.queue)"]
                )
            case .failure(let error):
                logger.error(
                    "could not record the outcome of job \(job.id): \(error)",
                    metadata: ["conveyor.job": "\(job.id)", "conveyor.queue": "\(job.queue)"]
                )
            }
        }
        var watch = watches[name] ?? QueueWatch()
        if asked > 0 { watch.empty = reply.claim.isPaused || reply.claim.jobs.count < asked }
        // By Redis's clock (the reply says how far off the due time is), not this node's.
        watch.nextDue = reply.nextDueIn.map { .now + $0 }
        watches[name] = watch
        return handoff.deliver(reply.claim.jobs)
    }

    /// Blocks on the wake lists of the worker's queues and its own bell until a token comes, the next due time or
    /// `deadline` passes (rung by a timer: BLPOP's own timeout is only as precise as the server's clock tick), or
    /// ``Configuration/idleWait`` passes.
    private func waitForWork(
        _ connection: RedisConnection,
        _ watches: inout [String: QueueWatch],
        until deadline: ContinuousClock.Instant?
    ) async {
        let keys = queue.keys
        let bellKey = keys.workerBell(configuration.workerID)
        let due = watches.values.compactMap(\.nextDue).min()
        let wakeAt = [deadline, due].compactMap { $0 }.min()
        let blockedLong = deadline == nil
        let proceed = state.withLock { state in
            if state.stopping || !state.outbox.isEmpty && blockedLong { return false }
            state.blockedLong = blockedLong
            state.bellPushed = false
            return true
        }
        guard proceed else { return }
        let timer: Task<Void, Never>? = wakeAt.map { at in
            Task {
                do {
                    try await Task.sleep(until: at, clock: .continuous)
                } catch {
                    return
                }
                let ring = self.state.withLock { state in
                    defer { state.bellPushed = true }
                    return !state.bellPushed
                }
                if ring { self.ringRemoteBell() }
            }
        }
        defer { timer?.cancel() }
        let timeout = configuration.idleWait
        if queue.redis.isCluster {
            return await waitForWorkPerQueue(&watches, timeout: timeout)
        }
        do {
            let reply = try await connection.send(
                RedisCommand(
                    "BLPOP",
                    queues.map { keys.wake($0) } + [
                        bellKey, String(format: "%.3f", Double(JobQueue.milliseconds(timeout)) / 1000),
                    ]
                ),
                blockingFor: timeout
            )
            state.withLock { $0.blockedLong = false }
            failures.succeeded("wait", logger: logger)
            if let name = reply.array?.first?.string, name != bellKey,
                let woken = queues.first(where: { keys.wake($0) == name })
            {
                watches[woken]?.empty = false
                if isStopping || handoff.waiting == 0 {
                    // No slot here can take it: leave the token for another worker.
                    _ = try? await queue.redis.send("RPUSH", name, "1")
                }
            } else if reply.isNull {
                for name in queues { watches[name]?.empty = false }
            }
        } catch {
            state.withLock { $0.blockedLong = false }
            if isStopping || Task.isCancelled { return }
            failures.failed("wait", "waiting for jobs failed: \(error)", logger: logger)
            for name in queues { watches[name]?.empty = false }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}
