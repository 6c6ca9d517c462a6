import Foundation

extension JobQueue {
    /// Enqueues a typed job: `payload` must be the job's `Payload` type, or the call does not compile.
    ///
    /// - Parameters:
    ///   - job: The job's name and types.
    ///   - payload: Its payload.
    ///   - options: Queue, id, time, priority, retries, timeout, reference, uniqueness.
    /// - Returns: The job's id and status, and whether it was created.
    /// - Throws: ``ConveyorError`` for invalid input (nothing is stored) or when Redis fails.
    @discardableResult
    public func enqueue<Payload, Output>(
        _ job: JobName<Payload, Output>,
        _ payload: Payload,
        options: JobOptions = JobOptions()
    ) async throws -> EnqueuedJob {
        try await enqueue(job.rawValue, payload: payload, options: options)
    }

    /// Waits for a typed job to finish and returns its result, decoded as the job's `Output`.
    ///
    /// - Parameters:
    ///   - enqueued: What ``enqueue(_:_:options:)`` returned (or any job of that type).
    ///   - job: The job's name and types.
    ///   - timeout: How long to wait.
    /// - Returns: The result (``NoResult`` for a job without one).
    /// - Throws: ``ConveyorError``: ``ConveyorError/Code/jobFailed`` with the job's error when it failed or was
    ///   cancelled, ``ConveyorError/Code/invalidArgument`` when the job is of another type,
    ///   ``ConveyorError/Code/malformedJob`` when its result is not an `Output`, and those of
    ///   ``result(of:timeout:)``.
    public func result<Payload, Output>(
        of enqueued: EnqueuedJob,
        as job: JobName<Payload, Output>,
        timeout: Duration
    ) async throws -> Output {
        let finished = try await result(of: enqueued.id, timeout: timeout)
        guard finished.type == job.rawValue else {
            throw ConveyorError(
                .invalidArgument,
                "job \(finished.id) is a \(finished.type) job, not \(job.rawValue)",
                jobID: finished.id
            )
        }
        guard finished.status == .completed else {
            throw ConveyorError(
                .jobFailed,
                "job \(finished.id) ended \(finished.status.rawValue)" + (finished.error.map { ": \($0)" } ?? ""),
                jobID: finished.id
            )
        }
        if Output.self == NoResult.self, let none = NoResult() as? Output { return none }
        do {
            return try JSONDecoder().decode(Output.self, from: Data((finished.result ?? "null").utf8))
        } catch let error as DecodingError {
            throw ConveyorError(
                .malformedJob,
                "the result of job \(finished.id) is not \(JobHandlers.article(Output.self)): "
                    + JobHandlers.describe(error),
                jobID: finished.id
            )
        }
    }
}

extension NewJob {
    /// A typed job for ``JobQueue/enqueueMany(_:)``.
    ///
    /// - Parameters:
    ///   - job: The job's name and types.
    ///   - payload: Its payload.
    ///   - options: Queue, id, time, priority, retries, timeout, reference, uniqueness.
    /// - Throws: `EncodingError` when the payload does not encode.
    public init<Payload, Output>(
        _ job: JobName<Payload, Output>,
        _ payload: Payload,
        options: JobOptions = JobOptions()
    ) throws {
        try self.init(job.rawValue, payload: payload, options: options)
    }
}
