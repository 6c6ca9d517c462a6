import Foundation
import RedisClient

/// The origin document's `JobService`, under Swift names: `create`, `get`, `get_pending`, `mark_processing`,
/// `mark_completed`, `mark_failed`, `get_by_reference`, `cleanup_completed` and `get_failed_retryable`.
extension JobQueue {
    /// Creates a job and returns it (the origin's `create`).
    ///
    /// - Parameters:
    ///   - type: The job type.
    ///   - payload: The payload, encoded as JSON.
    ///   - reference: The entity the job is about (`reference_type`/`reference_id`).
    ///   - maxRetries: Retries allowed (3 by default).
    ///   - options: Everything else (queue, time, priority, …); its `reference` and `maxRetries` are overridden by
    ///     the parameters when given.
    /// - Returns: The stored job.
    /// - Throws: ``ConveyorError`` for invalid input or when Redis fails.
    public func create(
        type: String,
        payload: some Encodable & Sendable,
        reference: JobReference? = nil,
        maxRetries: Int? = nil,
        options: JobOptions = JobOptions()
    ) async throws -> Job {
        var options = options
        if let reference { options.reference = reference }
        if let maxRetries { options.maxRetries = maxRetries }
        let enqueued = try await enqueue(type, payload: payload, options: options)
        guard let job = try await get(enqueued.id) else {
            throw ConveyorError(
                .jobNotFound,
                "job \(enqueued.id) vanished right after it was created",
                jobID: enqueued.id
            )
        }
        return job
    }

    /// Pending jobs, in run order, optionally of one type (the origin's `get_pending`; includes jobs whose
    /// scheduled or retry time has passed but that no worker has promoted yet).
    ///
    /// - Parameters:
    ///   - type: Only jobs of this type, when given.
    ///   - queue: One queue, or every known queue when `nil`.
    ///   - limit: Jobs to return at most.
    /// - Returns: The jobs.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func pending(type: String? = nil, queue: String? = nil, limit: Int = 100) async throws -> [Job] {
        let queues: [String]
        if let queue {
            queues = [queue]
        } else {
            queues = try await self.queues()
        }
        var jobs: [Job] = []
        for queue in queues where jobs.count < limit {
            jobs += try await list(queue: queue, status: .pending, type: type, limit: limit - jobs.count)
        }
        return jobs
    }

    /// Claims one given job for a caller that drives processing itself (the origin's `mark_processing`).
    ///
    /// - Parameter id: The full job id.
    /// - Returns: The job in `processing`, with its ``Job/leaseToken``. This `JobQueue` remembers the token for
    ///   ``markCompleted(_:result:leaseToken:)`` and ``markFailed(_:error:retry:leaseToken:)``.
    /// - Throws: ``ConveyorError`` when the job is missing, processing or finished.
    public func markProcessing(_ id: String) async throws -> Job {
        try await take(id).job
    }

    /// Completes a job with a JSON result (the origin's `mark_completed`).
    ///
    /// - Parameters:
    ///   - id: The full job id.
    ///   - result: The result, encoded as JSON.
    ///   - leaseToken: The claim's token; `nil` uses the one this `JobQueue` got from ``markProcessing(_:)``, else
    ///     the job's current token (no fencing: another process's claim would be overwritten).
    /// - Throws: ``ConveyorError`` as for ``complete(_:leaseToken:result:)``.
    public func markCompleted(_ id: String, result: some Encodable & Sendable, leaseToken: String? = nil) async throws {
        let json: String
        do {
            json = String(decoding: try JSONEncoder().encode(result), as: UTF8.self)
        } catch {
            throw ConveyorError(.invalidArgument, "the result cannot be encoded as JSON: \(error)", jobID: id)
        }
        try await complete(id, leaseToken: try await token(for: id, given: leaseToken), result: json)
    }

    /// Records a failure (the origin's `mark_failed`): with `retry`, the job retries after a backoff while retries
    /// are left; otherwise, or when they are used up, it fails for good.
    ///
    /// - Parameters:
    ///   - id: The full job id.
    ///   - error: What went wrong.
    ///   - retry: Whether to retry.
    ///   - leaseToken: As for ``markCompleted(_:result:leaseToken:)``.
    /// - Returns: The new status.
    /// - Throws: ``ConveyorError`` as for ``fail(_:leaseToken:error:retry:delay:maxRetries:backoff:)``.
    @discardableResult
    public func markFailed(
        _ id: String,
        error: String,
        retry: Bool = true,
        leaseToken: String? = nil
    ) async throws
        -> JobStatus
    {
        try await fail(id, leaseToken: try await token(for: id, given: leaseToken), error: error, retry: retry)
    }

    /// Every job, in any queue, that refers to one entity (the origin's `get_by_reference`), oldest first.
    ///
    /// - Parameters:
    ///   - referenceType: The kind of entity, such as `file_upload`.
    ///   - referenceID: The entity's id.
    /// - Returns: The jobs.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func jobs(referenceType: String, referenceID: String) async throws -> [Job] {
        let queues = try await queues()
        guard !queues.isEmpty else { return [] }
        let sets = try await pipeline(
            queues.map { RedisCommand("SMEMBERS", keys.reference($0, type: referenceType, id: referenceID)) }
        )
        let ids = sets.flatMap { ($0.array ?? []).compactMap(\.string) }
        var jobs: [Job] = []
        for id in ids {
            if let job = try? await get(id) { jobs.append(job) }
        }
        return jobs.sorted { ($0.createdAt ?? .distantPast, $0.id) < ($1.createdAt ?? .distantPast, $1.id) }
    }

    /// Deletes completed jobs that finished more than `olderThan` ago, in every queue (the origin's
    /// `cleanup_completed(days)`: pass `.seconds(days * 86_400)`).
    ///
    /// - Parameter olderThan: How long ago they must have finished.
    /// - Returns: How many jobs were deleted.
    /// - Throws: ``ConveyorError`` when Redis fails.
    @discardableResult
    public func cleanupCompleted(olderThan: Duration) async throws -> Int {
        var total = 0
        for queue in try await queues() {
            total += try await cleanup(queue: queue, status: .completed, olderThan: olderThan)
        }
        return total
    }

    /// Jobs that can still be retried (the origin's `get_failed_retryable`): jobs waiting to retry, and failed jobs
    /// with retries left, in every queue; not jobs that failed for good (an error that said not to retry, such as
    /// exit status 65 or ``JobFailure/permanent(_:)``).
    ///
    /// - Parameter limit: Jobs to return at most.
    /// - Returns: The jobs, retrying ones first.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func failedRetryable(limit: Int = 100) async throws -> [Job] {
        var jobs: [Job] = []
        let queues = try await queues()
        for queue in queues where jobs.count < limit {
            jobs += try await list(queue: queue, status: .retrying, limit: limit - jobs.count)
        }
        for queue in queues where jobs.count < limit {
            var offset = 0
            while jobs.count < limit {
                let page = try await list(queue: queue, status: .failed, offset: offset, limit: 500)
                if page.isEmpty { break }
                offset += page.count
                jobs += page.filter { $0.retryCount < $0.maxRetries && !$0.failedPermanently }.prefix(
                    limit - jobs.count
                )
            }
        }
        return jobs
    }

    private func token(for id: String, given: String?) async throws -> String {
        if let given { return given }
        if let remembered = rememberedLease(id) { return remembered }
        guard let job = try await get(id) else {
            throw ConveyorError(.jobNotFound, "no job \(id)", jobID: id)
        }
        guard let token = job.leaseToken else {
            throw ConveyorError(.invalidState, "job \(id) is \(job.status.rawValue) and was never claimed", jobID: id)
        }
        return token
    }
}
