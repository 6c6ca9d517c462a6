import Foundation
import RedisClient

extension JobQueue {
    /// Waits until a job finishes (completed, failed or cancelled) and returns it.
    ///
    /// Waits share one reader per queue: however many calls wait at once, a queue they wait on costs one thread and
    /// one Redis connection, which block on the queue's event stream (`XREAD BLOCK`, no polling loop) and wake the
    /// calls whose job finished. The call reads the job itself once it is registered, so a job that finished before
    /// the call returns at once; and the reader reads the status of every job waited for once a second, so waiting
    /// also works when events are turned off or trimmed. The reader stops when no call waits on its queue.
    ///
    /// - Parameters:
    ///   - id: The full job id.
    ///   - timeout: How long to wait.
    /// - Returns: The finished job; check ``Job/status``, ``Job/result`` and ``Job/error``.
    /// - Throws: ``ConveyorError``: ``ConveyorError/Code/timeout`` when the job did not finish in time,
    ///   ``ConveyorError/Code/jobNotFound`` when there is no such job (or it was removed while waiting),
    ///   ``ConveyorError/Code/redis`` when Redis cannot be reached; `CancellationError` at once when the calling task
    ///   is cancelled.
    public func result(of id: String, timeout: Duration) async throws -> Job {
        let (queue, localID) = try split(id)
        let deadline = ContinuousClock.now + timeout
        while true {
            try Task.checkCancellation()
            let registration = resultWaiter.register(queue: queue, jobID: id, localID: localID)
            let token: UInt64
            switch registration {
            case .readTheJob(let registered):
                token = registered
                let job: Job?
                do {
                    job = try await get(id)
                } catch {
                    resultWaiter.remove(token)
                    throw error
                }
                guard let job else {
                    resultWaiter.remove(token)
                    throw ConveyorError(.jobNotFound, "no job \(id)", jobID: id)
                }
                if job.status.isFinished {
                    resultWaiter.remove(token)
                    return job
                }
            case .readerWillRead(let registered):
                token = registered
            }
            switch await resultWaiter.wait(token, until: deadline) {
            case .finished:
                guard let job = try await get(id) else {
                    throw ConveyorError(.jobNotFound, "no job \(id) (it was removed while waiting)", jobID: id)
                }
                if job.status.isFinished { return job }
            case .timedOut:
                guard let job = try await get(id) else {
                    throw ConveyorError(.jobNotFound, "no job \(id)", jobID: id)
                }
                if job.status.isFinished { return job }
                throw ConveyorError(
                    .timeout,
                    "job \(id) did not finish within \(timeout); it is \(job.status.rawValue)",
                    jobID: id
                )
            case .cancelled:
                throw CancellationError()
            case .failed(let error):
                throw ConveyorError(error.code, error.message, jobID: id)
            }
        }
    }
}
