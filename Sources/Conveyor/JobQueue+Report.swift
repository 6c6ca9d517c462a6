import Foundation
import RedisClient

/// One outcome a worker reports in a batch (``JobQueue/report(queue:outcomes:claim:lease:worker:on:)``).
enum ReportedOutcome: Sendable {
    /// The handler returned: the job completes with this result (JSON text, or none).
    case completed(id: String, token: String, result: String?)
    /// The handler failed: retry (after `delay`, or after the backoff) while retries are left, unless `retry` is
    /// false; `maxRetries` overrides the job's own limit.
    case failed(
        id: String,
        token: String,
        error: String,
        retry: Bool,
        delay: Duration?,
        backoff: Backoff,
        maxRetries: Int?
    )

    /// The full id of the job.
    var id: String {
        switch self {
        case .completed(let id, _, _), .failed(let id, _, _, _, _, _, _): id
        }
    }
}

/// What a batched report learnt: one status or error per outcome, in order, and the jobs claimed.
struct ReportReply: Sendable {
    /// The job's new status, or why the outcome was refused (a stale lease, a job removed meanwhile…).
    var statuses: [Result<JobStatus, ConveyorError>]
    /// The jobs claimed in the same call, the next due time and whether the queue is paused.
    var claim: ClaimResult
    /// How long until the next due time, by Redis's clock (`nil`: nothing scheduled or retrying).
    var nextDueIn: Duration?
}

extension JobQueue {
    /// Records many outcomes of one queue's jobs and claims up to `count` jobs of it, in one atomic call
    /// (`conveyor_report`): a busy worker's single round trip per batch.
    ///
    /// - Parameters:
    ///   - queue: The queue of every outcome, and the one claimed from.
    ///   - outcomes: At most 1000 outcomes.
    ///   - count: How many jobs to claim (0…1000).
    ///   - lease: The lease of the jobs claimed.
    ///   - worker: The worker id recorded on them.
    ///   - connection: A dedicated connection to send on (the pool when `nil`).
    /// - Returns: One status per outcome and the claim.
    /// - Throws: ``ConveyorError`` when Redis refuses the whole call (out of memory, a lost connection, bad input).
    func report(
        queue: String,
        outcomes: [ReportedOutcome],
        claim count: Int,
        lease: Duration,
        worker: String,
        on connection: RedisConnection? = nil
    ) async throws -> ReportReply {
        var arguments: [any RedisArgumentConvertible] = [worker, Self.milliseconds(lease), count, outcomes.count]
        for outcome in outcomes {
            switch outcome {
            case .completed(let id, let token, let result):
                arguments += ["completed", try split(id).localID, token, result ?? ""]
            case .failed(let id, let token, let error, let retry, let delay, let backoff, let maxRetries):
                arguments += [
                    "failed", try split(id).localID, token, error, retry ? "1" : "0",
                    delay.map { String(Self.milliseconds($0)) } ?? "",
                    Self.milliseconds(backoff.base), Self.milliseconds(backoff.cap),
                    backoff.jitter ? String(Double.random(in: 0..<1)) : "1",
                    maxRetries.map(String.init) ?? "",
                ]
            }
        }
        // Outcomes wait for the replicas (claims alone do not: a lost claim only runs a job again). A shortfall does
        // not undo the call, and its claims must not be dropped: it is logged instead.
        let reply = try await invoke(
            "conveyor_report",
            key: keys.prefix(queue),
            arguments,
            jobID: nil,
            on: connection,
            acknowledgement: outcomes.isEmpty ? nil : configuration.replicaAcknowledgement
        )
        guard let parts = reply.array, parts.count >= 5, let rawStatuses = parts[0].array,
            let rawJobs = parts[1].array, let nextDue = parts[2].int, let redisNow = parts[4].int
        else {
            throw ConveyorError(.redis, "unexpected reply to conveyor_report: \(reply)")
        }
        let statuses: [Result<JobStatus, ConveyorError>] = zip(outcomes, rawStatuses).map { outcome, raw in
            let text = raw.string ?? ""
            if let status = JobStatus(rawValue: text) { return .success(status) }
            return .failure(ConveyorError.fromReply(text, jobID: outcome.id))
        }
        var claimed: [ClaimedJob] = []
        for raw in rawJobs {
            // One string of NUL-separated names and values, or (a value held a NUL) the list.
            let flat: [RedisReply]
            if let list = raw.array {
                flat = list
            } else if let bytes = raw.bytes {
                flat = bytes.split(separator: 0, omittingEmptySubsequences: false).map { .bulkString(Array($0)) }
            } else {
                continue
            }
            do {
                let job = try Job(flat: flat, storedAs: nil)
                try Self.checkClaimed(job, queue: queue)
                claimed.append(ClaimedJob(job: job, leaseToken: job.leaseToken ?? ""))
            } catch {
                // Claimed in Redis but unreadable here: fail it for good with the reason rather than leave it
                // processing until its lease expires (and claim it again, for ever).
                let fields = Self.fields(flat)
                if let id = fields["id"], let token = fields["lease"] {
                    _ = try? await fail(id, leaseToken: token, error: "malformed job hash: \(error)", retry: false)
                }
            }
        }
        return ReportReply(
            statuses: statuses,
            claim: ClaimResult(
                jobs: claimed,
                nextDueAt: nextDue >= 0 ? Date(timeIntervalSince1970: Double(nextDue) / 1000) : nil,
                isPaused: parts[3].int == 1
            ),
            nextDueIn: nextDue >= 0 ? .milliseconds(max(0, nextDue - redisNow)) : nil
        )
    }

    /// Applies retention to a queue now: deletes finished jobs older than it keeps them or beyond the number it
    /// keeps (see ``setRetention(queue:status:maxAge:maxCount:)``), oldest first. Workers do this in their reclaim
    /// loop (every ``Worker/Configuration/reclaimInterval``), not on every completion, so completing a job costs the
    /// same however many finished jobs are kept.
    ///
    /// - Parameter queue: The queue (the default queue when `nil`).
    /// - Returns: How many jobs were deleted.
    /// - Throws: ``ConveyorError`` when Redis fails.
    @discardableResult
    public func applyRetention(queue: String? = nil) async throws -> Int {
        let queue = try queueName(queue)
        var total = 0
        while true {
            let deleted = try await invoke("conveyor_trim", queue: queue, [1000], jobID: nil).int ?? 0
            total += deleted
            if deleted == 0 { return total }
        }
    }
}
