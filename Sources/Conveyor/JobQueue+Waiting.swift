import Foundation
import RedisClient

extension JobQueue {
    /// Waits until a job finishes (completed, failed or cancelled) and returns it.
    ///
    /// Waits on the queue's event stream with `XREAD BLOCK` on a connection of its own (no polling loop), and
    /// re-reads the job at least once a second, so it also works when events are turned off or trimmed.
    ///
    /// - Parameters:
    ///   - id: The full job id.
    ///   - timeout: How long to wait.
    /// - Returns: The finished job; check ``Job/status``, ``Job/result`` and ``Job/error``.
    /// - Throws: ``ConveyorError``: ``ConveyorError/Code/timeout`` when the job did not finish in time,
    ///   ``ConveyorError/Code/jobNotFound`` when there is no such job (or it was removed while waiting).
    public func result(of id: String, timeout: Duration) async throws -> Job {
        let (queue, _) = try split(id)
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        let events = keys.events(queue)
        let connection = redis.makeDedicatedConnection()
        defer { connection.close() }
        do {
            // Read the stream's last id before the job: a finish after that id is in the stream, one before it is
            // in the job hash.
            let last = try await connection.send("XREVRANGE", events, "+", "-", "COUNT", 1)
            var cursor = last.array?.first?.array?.first?.string ?? "0-0"
            while true {
                guard let job = try await get(id) else {
                    throw ConveyorError(.jobNotFound, "no job \(id)", jobID: id)
                }
                if job.status.isFinished { return job }
                // Block until an event of this job arrives, or a second passes (then the job is read again).
                var mentioned = false
                while !mentioned {
                    let remaining = deadline - clock.now
                    guard remaining > .zero else {
                        throw ConveyorError(
                            .timeout,
                            "job \(id) did not finish within \(timeout); it is \(job.status.rawValue)",
                            jobID: id
                        )
                    }
                    let wait = min(remaining, .seconds(1))
                    let reply = try await connection.send(
                        RedisCommand(
                            "XREAD",
                            "COUNT",
                            1000,
                            "BLOCK",
                            max(1, Self.milliseconds(wait)),
                            "STREAMS",
                            events,
                            cursor
                        ),
                        blockingFor: wait
                    )
                    guard let entries = reply.array?.first?.array?.last?.array else { break }
                    for entry in entries {
                        guard let parts = entry.array, parts.count == 2, let entryID = parts[0].string else { continue }
                        cursor = entryID
                        if Self.fields(parts[1].array ?? [])["id"] == id { mentioned = true }
                    }
                }
            }
        } catch let error as RedisClientError {
            throw ConveyorError(.redis, error.message, jobID: id)
        }
    }
}
