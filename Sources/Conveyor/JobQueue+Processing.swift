public import Foundation
import RedisClient

/// A job claimed for processing, with the lease token that proves the claim.
public struct ClaimedJob: Sendable, Hashable {
    /// The job, in `processing`.
    public var job: Job
    /// The token to present to ``JobQueue/complete(_:leaseToken:result:)``, ``JobQueue/fail(_:leaseToken:error:retry:delay:maxRetries:backoff:)``
    /// and ``JobQueue/heartbeat(queue:leases:lease:)``.
    public var leaseToken: String
}

/// What a claim found.
public struct ClaimResult: Sendable {
    /// The jobs taken (none when the queue is empty or paused).
    public var jobs: [ClaimedJob]
    /// When the next scheduled or retrying job falls due, if any: how long an idle worker may block.
    public var nextDueAt: Date?
    /// Whether the queue is paused.
    public var isPaused: Bool
}

/// What a heartbeat learnt about one lease.
public enum LeaseStatus: String, Sendable, Hashable {
    /// The lease was extended.
    case extended
    /// The lease was extended, and a cancel was requested: stop the handler and report with `fail`.
    case cancelRequested
    /// The lease is gone (another worker or a reclaim took the job): stop, and do not write a result.
    case lost
}

extension JobQueue {
    /// Claims up to `count` jobs of a queue: due scheduled and retrying jobs are promoted first, then pending jobs
    /// are taken by priority, oldest first, each with a fresh lease.
    ///
    /// - Parameters:
    ///   - queue: The queue (the default queue when `nil`).
    ///   - count: How many jobs to take at most (1…1000).
    ///   - lease: How long the claim holds (``Configuration/lease`` when `nil`).
    ///   - worker: The worker name recorded on the jobs (``Configuration/workerID`` when `nil`).
    /// - Returns: The jobs, when the next one falls due, and whether the queue is paused.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func claim(
        queue: String? = nil,
        count: Int = 1,
        lease: Duration? = nil,
        worker: String? = nil
    ) async throws -> ClaimResult {
        let queue = try queueName(queue)
        let leaseMilliseconds = Self.milliseconds(lease ?? configuration.lease)
        let reply = try await invoke(
            "conveyor_claim",
            queue: queue,
            [worker ?? configuration.workerID, leaseMilliseconds, count],
            jobID: nil
        )
        guard let parts = reply.array, parts.count == 3, let rawJobs = parts[0].array, let nextDue = parts[1].int else {
            throw ConveyorError(.redis, "unexpected reply to claim: \(reply)")
        }
        var claimed: [ClaimedJob] = []
        for raw in rawJobs {
            guard let flat = raw.array else { continue }
            let job = try Job(flat: flat, storedAs: nil)
            try Self.checkClaimed(job, queue: queue)
            claimed.append(ClaimedJob(job: job, leaseToken: job.leaseToken ?? ""))
        }
        return ClaimResult(
            jobs: claimed,
            nextDueAt: nextDue >= 0 ? Date(timeIntervalSince1970: Double(nextDue) / 1000) : nil,
            isPaused: parts[2].int == 1
        )
    }

    /// Claims one given job now, from pending, scheduled or retrying.
    ///
    /// - Parameters:
    ///   - id: The full job id.
    ///   - lease: How long the claim holds (``Configuration/lease`` when `nil`).
    ///   - worker: The worker name recorded on the job.
    /// - Returns: The job in `processing`, with its lease token.
    /// - Throws: ``ConveyorError``: ``ConveyorError/Code/jobNotFound``, or ``ConveyorError/Code/invalidState`` when
    ///   the job is processing or finished.
    public func take(_ id: String, lease: Duration? = nil, worker: String? = nil) async throws -> ClaimedJob {
        let (queue, localID) = try split(id)
        let reply = try await invoke(
            "conveyor_take",
            queue: queue,
            [localID, worker ?? configuration.workerID, Self.milliseconds(lease ?? configuration.lease)],
            jobID: id
        )
        guard let job = try Self.job(from: reply, id: id), let token = job.leaseToken else {
            throw ConveyorError(.redis, "unexpected reply to take: \(reply)", jobID: id)
        }
        rememberLease(id, token)
        return ClaimedJob(job: job, leaseToken: token)
    }

    /// Extends leases, and learns which were lost and which jobs were asked to cancel.
    ///
    /// - Parameters:
    ///   - queue: The queue of the jobs.
    ///   - leases: Full job ids with their lease tokens.
    ///   - lease: The new lease length from now (``Configuration/lease`` when `nil`).
    /// - Returns: One status per lease, in order.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func heartbeat(
        queue: String,
        leases: [(id: String, token: String)],
        lease: Duration? = nil
    ) async throws -> [LeaseStatus] {
        guard !leases.isEmpty else { return [] }
        var arguments: [any RedisArgumentConvertible] = [Self.milliseconds(lease ?? configuration.lease)]
        for (id, token) in leases {
            arguments.append(try split(id).localID)
            arguments.append(token)
        }
        let reply = try await invoke("conveyor_heartbeat", queue: try queueName(queue), arguments, jobID: nil)
        return (reply.array ?? []).map { status in
            switch status.string {
            case "ok": .extended
            case "cancel": .cancelRequested
            default: .lost
            }
        }
    }

    /// Completes a processing job with an optional JSON result; the caller must hold its lease.
    ///
    /// - Parameters:
    ///   - id: The full job id.
    ///   - leaseToken: The token from the claim.
    ///   - result: The result as JSON text, or `nil`.
    /// - Throws: ``ConveyorError``: ``ConveyorError/Code/staleLease`` when the lease was lost,
    ///   ``ConveyorError/Code/invalidState`` when the job is not processing, ``ConveyorError/Code/jobNotFound``.
    public func complete(_ id: String, leaseToken: String, result: String? = nil) async throws {
        let (queue, localID) = try split(id)
        _ = try await invoke(
            "conveyor_complete",
            key: keys.prefix(queue),
            [localID, leaseToken, result ?? ""],
            jobID: id,
            acknowledgement: configuration.replicaAcknowledgement
        )
        rememberLease(id, nil)
    }

    /// Records a failed attempt of a processing job: it retries later while retries are left (and `retry` is
    /// true), else it fails for good; the caller must hold its lease.
    ///
    /// - Parameters:
    ///   - id: The full job id.
    ///   - leaseToken: The token from the claim.
    ///   - error: What went wrong.
    ///   - retry: `false` for an error that retrying cannot fix.
    ///   - delay: The retry delay; `nil` uses `backoff`.
    ///   - maxRetries: Use this limit instead of the job's `maxRetries` (a worker's per-type setting).
    ///   - backoff: The backoff when no delay is given; `nil` uses ``Configuration/backoff``.
    /// - Returns: The new status: ``JobStatus/retrying``, ``JobStatus/failed``, or ``JobStatus/cancelled`` when a
    ///   cancel was requested.
    /// - Throws: ``ConveyorError`` as for ``complete(_:leaseToken:result:)``.
    @discardableResult
    public func fail(
        _ id: String,
        leaseToken: String,
        error: String,
        retry: Bool = true,
        delay: Duration? = nil,
        maxRetries: Int? = nil,
        backoff: Backoff? = nil
    ) async throws -> JobStatus {
        let (queue, localID) = try split(id)
        var arguments: [any RedisArgumentConvertible] = [localID, leaseToken, error, "retry", retry ? "1" : "0"]
        if let delay {
            arguments += ["delay_ms", Self.milliseconds(delay)]
        } else {
            arguments += (backoff ?? configuration.backoff).failOptions
        }
        if let maxRetries { arguments += ["max_retries", maxRetries] }
        let reply = try await invoke(
            "conveyor_fail",
            key: keys.prefix(queue),
            arguments,
            jobID: id,
            acknowledgement: configuration.replicaAcknowledgement
        )
        guard let status = reply.string.flatMap(JobStatus.init(rawValue:)) else {
            throw ConveyorError(.redis, "unexpected reply to fail: \(reply)", jobID: id)
        }
        rememberLease(id, nil)
        return status
    }

    /// Returns jobs whose lease expired (their worker died or stalled) to pending, or fails them after too many
    /// expiries; bounded per call.
    ///
    /// - Parameters:
    ///   - queue: The queue.
    ///   - limit: How many expired leases to handle at most.
    ///   - maxStalls: Lease expiries a job may have before it fails.
    /// - Returns: How many jobs were handled.
    /// - Throws: ``ConveyorError`` when Redis fails.
    @discardableResult
    public func reclaimExpired(queue: String? = nil, limit: Int = 1000, maxStalls: Int = 3) async throws -> Int {
        try await reclaimAndTrim(queue: queue, limit: limit, maxStalls: maxStalls).handled
    }

    /// ``reclaimExpired(queue:limit:maxStalls:)``, which also applies retention (at most 1000 jobs per status),
    /// and says how many finished jobs that deleted.
    func reclaimAndTrim(queue: String?, limit: Int, maxStalls: Int) async throws -> (handled: Int, trimmed: Int) {
        let reply = try await invoke("conveyor_reclaim", queue: try queueName(queue), [limit, maxStalls], jobID: nil)
        let parts = reply.array ?? []
        return (parts.first?.int ?? 0, parts.count > 2 ? parts[2].int ?? 0 : 0)
    }
}

extension JobQueue {
    /// A claimed job is addressed by the queue it was claimed from: the Lua functions check the hash's `id` field
    /// against its key, and this refuses a reply that breaks that promise instead of acting on another queue's job.
    static func checkClaimed(_ job: Job, queue: String) throws {
        guard job.id.hasPrefix("\(queue)/") else {
            throw ConveyorError(
                .malformedJob,
                "a job claimed from queue \(queue) names itself \(job.id); the conveyor library on the server is "
                    + "not this version's: run conveyor install",
                jobID: job.id
            )
        }
    }
}
