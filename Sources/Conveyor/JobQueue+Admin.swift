import Foundation
import RedisClient

/// The order of a listing.
public enum ListOrder: Sendable, Hashable {
    /// Oldest first (for pending: the order in which jobs will run).
    case oldestFirst
    /// Newest first.
    case newestFirst
}

extension JobQueue {
    /// Cancels a job that has not finished.
    ///
    /// - Parameter id: The full job id.
    /// - Returns: ``JobStatus/cancelled``, or ``JobStatus/processing`` when the job is running: its worker learns of
    ///   the cancel at its next heartbeat, stops the handler, and the job ends cancelled.
    /// - Throws: ``ConveyorError``: ``ConveyorError/Code/invalidState`` for a completed or failed job,
    ///   ``ConveyorError/Code/jobNotFound``.
    @discardableResult
    public func cancel(_ id: String) async throws -> JobStatus {
        let (queue, localID) = try split(id)
        let reply = try await invoke("conveyor_cancel", queue: queue, [localID], jobID: id)
        return reply.string == "cancelling" ? .processing : .cancelled
    }

    /// Runs a failed, cancelled, scheduled or retrying job again now (a failed or cancelled job gets its full
    /// retries again).
    ///
    /// - Parameter id: The full job id.
    /// - Throws: ``ConveyorError``: ``ConveyorError/Code/invalidState`` for a processing or completed job,
    ///   ``ConveyorError/Code/duplicate`` when another live job holds its uniqueness key, ``ConveyorError/Code/jobNotFound``.
    public func retry(_ id: String) async throws {
        let (queue, localID) = try split(id)
        _ = try await invoke("conveyor_retry", queue: queue, [localID], jobID: id)
    }

    /// Deletes a job and every index entry of it.
    ///
    /// - Parameters:
    ///   - id: The full job id.
    ///   - force: Also remove a processing job (its worker's complete or fail then fails with
    ///     ``ConveyorError/Code/jobNotFound``).
    /// - Throws: ``ConveyorError``: ``ConveyorError/Code/jobNotFound``, or ``ConveyorError/Code/invalidState`` for a
    ///   processing job without `force`.
    public func remove(_ id: String, force: Bool = false) async throws {
        let (queue, localID) = try split(id)
        _ = try await invoke("conveyor_remove", queue: queue, force ? [localID, "force"] : [localID], jobID: id)
    }

    /// Stops handing out jobs of a queue; enqueueing goes on.
    ///
    /// - Parameter queue: The queue (the default queue when `nil`).
    /// - Throws: ``ConveyorError`` for a bad queue name or when Redis fails.
    public func pause(queue: String? = nil) async throws {
        let queue = try queueName(queue)
        try await register(queue)
        _ = try await invoke("conveyor_pause", queue: queue, [], jobID: nil)
    }

    /// Hands out jobs of a paused queue again.
    ///
    /// - Parameter queue: The queue (the default queue when `nil`).
    /// - Throws: ``ConveyorError`` for a bad queue name or when Redis fails.
    public func resume(queue: String? = nil) async throws {
        _ = try await invoke("conveyor_resume", queue: try queueName(queue), [], jobID: nil)
    }

    /// Whether a queue is paused.
    ///
    /// - Parameter queue: The queue (the default queue when `nil`).
    /// - Returns: `true` when paused.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func isPaused(queue: String? = nil) async throws -> Bool {
        let reply = try await command(RedisCommand("HGET", keys.meta(try queueName(queue)), "paused"))
        return reply.string == "1"
    }

    /// Deletes jobs of one finished status that finished more than `olderThan` ago, in bounded batches.
    ///
    /// - Parameters:
    ///   - queue: The queue (the default queue when `nil`).
    ///   - status: ``JobStatus/completed``, ``JobStatus/failed`` or ``JobStatus/cancelled``.
    ///   - olderThan: How long ago they must have finished.
    ///   - batch: Jobs deleted per call to Redis.
    ///   - progress: Called after each batch with the number deleted so far.
    /// - Returns: How many jobs were deleted.
    /// - Throws: ``ConveyorError`` for an unfinished status or when Redis fails.
    @discardableResult
    public func cleanup(
        queue: String? = nil,
        status: JobStatus = .completed,
        olderThan: Duration,
        batch: Int = 1000,
        progress: ((_ removed: Int) -> Void)? = nil
    ) async throws -> Int {
        let queue = try queueName(queue)
        guard status.isFinished else {
            throw ConveyorError(
                .invalidArgument,
                "cleanup takes completed, failed or cancelled, not \(status.rawValue)"
            )
        }
        guard olderThan >= .zero else {
            throw ConveyorError(.invalidArgument, "olderThan must not be negative, got \(olderThan)")
        }
        let cutoff = Self.milliseconds(Date()) - Self.milliseconds(olderThan)
        var total = 0
        while true {
            let reply = try await invoke(
                "conveyor_cleanup",
                queue: queue,
                [status.rawValue, max(0, cutoff), batch],
                jobID: nil
            )
            let removed = reply.int ?? 0
            total += removed
            progress?(total)
            if removed < batch { return total }
        }
    }

    /// How many jobs ``cleanup(queue:status:olderThan:batch:progress:)`` would delete now.
    ///
    /// - Parameters:
    ///   - queue: The queue (the default queue when `nil`).
    ///   - status: ``JobStatus/completed``, ``JobStatus/failed`` or ``JobStatus/cancelled``.
    ///   - olderThan: How long ago they must have finished.
    /// - Returns: The number of such jobs.
    /// - Throws: ``ConveyorError`` for an unfinished status or when Redis fails.
    public func cleanupCount(
        queue: String? = nil,
        status: JobStatus = .completed,
        olderThan: Duration
    ) async throws
        -> Int
    {
        let queue = try queueName(queue)
        guard status.isFinished else {
            throw ConveyorError(
                .invalidArgument,
                "cleanup takes completed, failed or cancelled, not \(status.rawValue)"
            )
        }
        let cutoff = Self.milliseconds(Date()) - Self.milliseconds(olderThan)
        return try await command(RedisCommand("ZCOUNT", keys.index(queue, status), "-inf", max(0, cutoff))).int ?? 0
    }

    /// Runs every job of a queue in one status again now (``retry(_:)`` for each), for example after fixing the
    /// cause of a burst of failures.
    ///
    /// - Parameters:
    ///   - queue: The queue (the default queue when `nil`).
    ///   - status: ``JobStatus/failed`` (default), ``JobStatus/cancelled``, ``JobStatus/retrying`` or
    ///     ``JobStatus/scheduled``.
    ///   - progress: Called with the number of jobs handled so far and the number to handle.
    /// - Returns: How many were made pending, and how many could not be (they changed meanwhile, or another live job
    ///   holds their uniqueness key).
    /// - Throws: ``ConveyorError`` for a status that cannot be retried or when Redis fails.
    @discardableResult
    public func retryAll(
        queue: String? = nil,
        status: JobStatus = .failed,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) async throws -> (retried: Int, skipped: Int) {
        let queue = try queueName(queue)
        guard [.failed, .cancelled, .retrying, .scheduled].contains(status) else {
            throw ConveyorError(
                .invalidArgument,
                "only failed, cancelled, retrying or scheduled jobs can be retried, not \(status.rawValue)"
            )
        }
        // A snapshot of the ids: jobs that fail while this runs are not retried in a loop.
        let ids = (try await command(RedisCommand("ZRANGE", keys.index(queue, status), 0, -1)).array ?? [])
            .compactMap(\.string)
        var retried = 0
        var skipped = 0
        for (position, localID) in ids.enumerated() {
            do {
                try await retry("\(queue)/\(localID)")
                retried += 1
            } catch let error as ConveyorError
                where [.jobNotFound, .invalidState, .duplicate].contains(error.code)
            {
                skipped += 1
            }
            if position % 100 == 99 || position == ids.count - 1 { progress?(position + 1, ids.count) }
        }
        return (retried, skipped)
    }

    /// Jobs finished per window: how many completed and how many failed (for good) in the last `window`, read from
    /// the queue's event stream.
    ///
    /// When the stream was trimmed inside the window (more than `events_max` transitions in it), the counts cover
    /// the part of the window still in the stream (from its oldest kept entry) and ``Throughput/covered`` says how
    /// long that is.
    ///
    /// - Parameters:
    ///   - queue: The queue (the default queue when `nil`).
    ///   - window: How far back to count (one minute by default).
    /// - Returns: The counts and the span they cover.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func throughput(queue: String? = nil, over window: Duration = .seconds(60)) async throws -> Throughput {
        // A multi-job entry (see JobQueue.eventJobs) counts once per job.
        let queue = try queueName(queue)
        let stream = keys.events(queue)
        let header = try await pipeline(
            [RedisCommand("TIME"), RedisCommand("XINFO", "STREAM", stream)],
            allowErrors: true
        )
        let time = (header[0].array ?? []).compactMap(\.string).compactMap(Int.init)
        guard time.count == 2 else { throw ConveyorError(.redis, "TIME answered \(header[0])") }
        let now = time[0] * 1000 + time[1] / 1000
        var start = now - Self.milliseconds(window)
        // When entries were trimmed away (more were added than the stream holds) and the oldest one kept is inside
        // the window, the counts cover only the time since that entry. (Redis keeps `max-deleted-entry-id` for
        // XDEL only, not for trimming, so the oldest kept entry is the mark.)
        let flat = header[1].array ?? []
        var info: [String: RedisReply] = [:]
        for index in stride(from: 0, to: flat.count - 1, by: 2) {
            if let name = flat[index].string { info[name] = flat[index + 1] }
        }
        if let added = info["entries-added"]?.int, let length = info["length"]?.int, added > length,
            let first = info["recorded-first-entry-id"]?.string,
            let firstAt = Int(first.split(separator: "-").first ?? ""), firstAt > start
        {
            start = firstAt
        }
        var result = Throughput(completed: 0, failed: 0, covered: .milliseconds(max(0, now - start)))
        var cursor = "\(start)-0"
        while true {
            let entries = try await command(RedisCommand("XRANGE", stream, cursor, "+", "COUNT", 2000)).array ?? []
            for entry in entries {
                guard let parts = entry.array, parts.count == 2 else { continue }
                let fields = Self.fields(parts[1].array ?? [])
                let jobs = Self.eventJobs(fields).count
                switch fields["to"] {
                case "completed": result.completed += jobs
                case "failed": result.failed += jobs
                default: break
                }
            }
            guard entries.count == 2000, let last = entries.last?.array?.first?.string else { return result }
            cursor = "(" + last
        }
    }

    /// Sets a queue's payload limit (the meta field `max_payload_bytes`; 1 MiB unless set). Enqueues of a larger
    /// payload are refused by the server, whatever limit the producer asks for: a producer may only lower it.
    ///
    /// - Parameters:
    ///   - bytes: The limit, 1 byte to 512 MiB.
    ///   - queue: The queue (the default queue when `nil`).
    /// - Throws: ``ConveyorError`` for a bad value or when Redis fails.
    public func setMaximumPayloadBytes(_ bytes: Int, queue: String? = nil) async throws {
        let queue = try queueName(queue)
        guard (1...(512 << 20)).contains(bytes) else {
            throw ConveyorError(.invalidArgument, "the payload limit must be from 1 byte to 512 MiB, got \(bytes)")
        }
        _ = try await command(RedisCommand("HSET", keys.meta(queue), "max_payload_bytes", bytes))
    }

    /// Turns a queue's pending index by type on or off (the meta field `type_index`; off unless set). With it on,
    /// ``pending(type:queue:limit:)`` and `conveyor list --status pending --type T` read the pending jobs of one type
    /// in run order without looking at any other job (the origin's index on status and type), for about 40 bytes
    /// and one list push and pop per job; with it off they scan the pending jobs. Turning it on builds it from the
    /// jobs pending now, in one call that walks them all.
    ///
    /// - Parameters:
    ///   - enabled: Whether to keep the index.
    ///   - queue: The queue (the default queue when `nil`).
    /// - Returns: How many pending jobs the index holds now.
    /// - Throws: ``ConveyorError`` when Redis fails.
    @discardableResult
    public func setTypeIndex(_ enabled: Bool, queue: String? = nil) async throws -> Int {
        let queue = try queueName(queue)
        return try await invoke("conveyor_set_type_index", queue: queue, [enabled ? "on" : "off"], jobID: nil).int ?? 0
    }

    /// Whether a queue keeps its pending index by type (``setTypeIndex(_:queue:)``).
    ///
    /// - Parameter queue: The queue (the default queue when `nil`).
    /// - Returns: `true` when the index is on.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func indexesTypes(queue: String? = nil) async throws -> Bool {
        let queue = try queueName(queue)
        return try await command(RedisCommand("HGET", keys.meta(queue), "type_index")).string == "1"
    }

    /// Sets which transitions a queue records in its event stream (the meta field `events`).
    ///
    /// - Parameters:
    ///   - recording: ``EventRecording/all`` (the default), ``EventRecording/finished`` or ``EventRecording/none``.
    ///   - queue: The queue (the default queue when `nil`).
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func setEventRecording(_ recording: EventRecording, queue: String? = nil) async throws {
        let queue = try queueName(queue)
        _ = try await command(RedisCommand("HSET", keys.meta(queue), "events", recording.rawValue))
    }

    /// Which transitions a queue records in its event stream.
    ///
    /// - Parameter queue: The queue (the default queue when `nil`).
    /// - Returns: The setting (``EventRecording/all`` when unset or not one of the three values).
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func eventRecording(queue: String? = nil) async throws -> EventRecording {
        let queue = try queueName(queue)
        let value = try await command(RedisCommand("HGET", keys.meta(queue), "events")).string
        return value.flatMap(EventRecording.init(rawValue:)) ?? .all
    }

    /// Sets how long and how many finished jobs of a status a queue keeps. Retention is applied off the completion
    /// path, by every worker's reclaim loop (``Worker/Configuration/reclaimInterval``) and by ``applyRetention(queue:)``,
    /// at most 1 000 jobs per status and call, so a queue may hold more for a while.
    ///
    /// - Parameters:
    ///   - queue: The queue (the default queue when `nil`).
    ///   - status: ``JobStatus/completed``, ``JobStatus/failed`` or ``JobStatus/cancelled``.
    ///   - maxAge: Keep for at most this long; `nil` keeps forever.
    ///   - maxCount: Keep at most this many; `nil` keeps any number (0 deletes a job as soon as it finishes).
    /// - Throws: ``ConveyorError`` for bad values or when Redis fails.
    public func setRetention(
        queue: String? = nil,
        status: JobStatus,
        maxAge: Duration?,
        maxCount: Int?
    ) async throws {
        let queue = try queueName(queue)
        guard status.isFinished else {
            throw ConveyorError(
                .invalidArgument,
                "retention applies to completed, failed or cancelled, not \(status.rawValue)"
            )
        }
        if let maxCount, maxCount < 0 {
            throw ConveyorError(.invalidArgument, "maxCount must not be negative (use nil to keep any number)")
        }
        if let maxAge, maxAge < .zero {
            throw ConveyorError(.invalidArgument, "maxAge must not be negative (use nil to keep forever)")
        }
        _ = try await command(
            RedisCommand(
                "HSET",
                keys.meta(queue),
                "keep_\(status.rawValue)_ms",
                maxAge.map { Self.milliseconds($0) } ?? -1,
                "keep_\(status.rawValue)_count",
                maxCount ?? -1
            )
        )
    }

    /// Every queue that has been used in this namespace, sorted.
    ///
    /// - Returns: Queue names.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func queues() async throws -> [String] {
        try await registeredNames().filter { (try? Self.validateQueue($0)) != nil }
    }

    /// Entries of the queue registry (`<namespace>:queues`) that are no queue name (added by hand or by a
    /// producer before its enqueue was refused); ``queues()`` skips them.
    ///
    /// - Returns: The bad entries, sorted.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func unusableQueueNames() async throws -> [String] {
        try await registeredNames().filter { (try? Self.validateQueue($0)) == nil }
    }

    private func registeredNames() async throws -> [String] {
        let reply = try await command(RedisCommand("SMEMBERS", keys.queues))
        return (reply.array ?? []).map { String(decoding: $0.bytes ?? [], as: UTF8.self) }.sorted()
    }

    /// How many jobs of a queue are in each status.
    ///
    /// - Parameter queue: The queue (the default queue when `nil`).
    /// - Returns: A count for every status.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func counts(queue: String? = nil) async throws -> [JobStatus: Int] {
        let queue = try queueName(queue)
        let statuses: [JobStatus] = [.scheduled, .retrying, .processing, .completed, .failed, .cancelled]
        let replies = try await pipeline(
            [RedisCommand("LLEN", keys.pending(queue)), RedisCommand("ZCARD", keys.prioritized(queue))]
                + statuses.map { RedisCommand("ZCARD", keys.index(queue, $0)) }
        )
        var counts: [JobStatus: Int] = [.pending: (replies[0].int ?? 0) + (replies[1].int ?? 0)]
        for (status, reply) in zip(statuses, replies.dropFirst(2)) { counts[status] = reply.int ?? 0 }
        return counts
    }

    /// The counters of a queue (enqueued, started, completed, failed, retried, cancelled, stalled, …).
    ///
    /// - Parameter queue: The queue (the default queue when `nil`).
    /// - Returns: Counter names and values.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func stats(queue: String? = nil) async throws -> [String: Int] {
        let reply = try await command(RedisCommand("HGETALL", keys.stats(try queueName(queue))))
        return Self.fields(reply.array ?? []).compactMapValues { Int($0) }
    }

    /// Lists jobs of a queue in one status, optionally of one type, a page at a time.
    ///
    /// With a type filter, at most `scanLimit` entries of the status index are examined.
    ///
    /// - Parameters:
    ///   - queue: The queue (the default queue when `nil`).
    ///   - status: The status.
    ///   - type: Only jobs of this type, when given.
    ///   - offset: Jobs to skip (after filtering).
    ///   - limit: Jobs to return at most.
    ///   - order: Oldest or newest first (pending: run order).
    ///   - scanLimit: Index entries examined at most when filtering by type.
    /// - Returns: The jobs.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func list(
        queue: String? = nil,
        status: JobStatus,
        type: String? = nil,
        offset: Int = 0,
        limit: Int = 100,
        order: ListOrder = .oldestFirst,
        scanLimit: Int = 100_000
    ) async throws -> [Job] {
        let queue = try queueName(queue)
        guard offset >= 0, limit >= 0 else {
            throw ConveyorError(.invalidArgument, "offset and limit must not be negative")
        }
        if status == .pending, let type, order == .oldestFirst, try await indexesTypes(queue: queue) {
            // The type's own pending index: the cost depends on the limit, not on how many other jobs wait.
            guard limit > 0 else { return [] }
            let ids = try await pendingOfType(queue, type, count: offset + limit).dropFirst(offset)
            let jobs = try await load(queue, Array(ids))
            return jobs.filter { $0.status == .pending && $0.type == type }
        }
        guard let type else {
            let ids = try await indexPage(queue, status, from: offset, count: limit, order: order)
            return try await load(queue, ids)
        }
        // Filtered by type: read only the type of each candidate, then the matching jobs.
        var matches: [String] = []
        var skipped = 0
        var position = 0
        var chunk = max(limit * 2, 100)
        while matches.count < limit && position < scanLimit {
            let ids = try await indexPage(
                queue,
                status,
                from: position,
                count: min(chunk, scanLimit - position),
                order: order
            )
            if ids.isEmpty { break }
            position += ids.count
            chunk = min(chunk * 2, 5_000)
            let types = try await pipeline(ids.map { RedisCommand("HGET", keys.job(queue, $0), "type") })
            for (localID, jobType) in zip(ids, types) where jobType.string == type {
                if skipped < offset {
                    skipped += 1
                } else if matches.count < limit {
                    matches.append(localID)
                }
            }
        }
        return try await load(queue, matches)
    }

    /// Reads jobs by their ids within a queue, in one round trip; vanished or unreadable ones are left out.
    /// The first `count` pending job ids of one type in run order: priorities above 0 (the type's sorted set),
    /// priority-0 entries of that set written by version 1 of the layout, the type's list (priority 0), then
    /// priorities below 0.
    private func pendingOfType(_ queue: String, _ type: String, count: Int) async throws -> [String] {
        let replies = try await pipeline([
            RedisCommand("ZRANGE", keys.pending(queue, type: type), 0, count - 1, "WITHSCORES"),
            RedisCommand("LRANGE", keys.pendingList(queue, type: type), 0, count - 1),
        ])
        var scored: [(id: String, score: Double)] = []
        let flat = replies[0].array ?? []
        for index in stride(from: 0, to: flat.count - 1, by: 2) {
            if let id = flat[index].string { scored.append((id, Double(flat[index + 1].string ?? "") ?? 0)) }
        }
        // Scores are (100 - priority) × 2^44 + sequence: below 101 × 2^44 is priority 0 or above.
        let priorityZeroEnd = 101.0 * 17_592_186_044_416
        let ahead = scored.filter { $0.score < priorityZeroEnd }.map(\.id)
        let behind = scored.filter { $0.score >= priorityZeroEnd }.map(\.id)
        let listed = (replies[1].array ?? []).compactMap(\.string)
        return Array((ahead + listed + behind).prefix(count))
    }

    func load(_ queue: String, _ ids: [String]) async throws -> [Job] {
        guard !ids.isEmpty else { return [] }
        let replies = try await pipeline(ids.map { RedisCommand("HGETALL", keys.job(queue, $0)) })
        return zip(ids, replies).compactMap { localID, reply in try? Self.job(from: reply, id: "\(queue)/\(localID)") }
    }

    /// A page of job ids (within the queue) of one status, in order.
    func indexPage(
        _ queue: String,
        _ status: JobStatus,
        from start: Int,
        count: Int,
        order: ListOrder
    ) async throws
        -> [String]
    {
        guard count > 0 else { return [] }
        if status != .pending {
            let command = order == .oldestFirst ? "ZRANGE" : "ZREVRANGE"
            let reply = try await self.command(
                RedisCommand(command, keys.index(queue, status), start, start + count - 1)
            )
            return (reply.array ?? []).compactMap(\.string)
        }
        // Pending runs in this order: prioritized with priority > 0, the list (priority 0), prioritized < 0.
        let band = "\(100 * (1 << 44))"
        if start == 0 && order == .oldestFirst {
            let parts = try await pipeline([
                RedisCommand("ZRANGEBYSCORE", keys.prioritized(queue), "-inf", "(" + band, "LIMIT", 0, count),
                RedisCommand("LRANGE", keys.pending(queue), 0, count - 1),
                RedisCommand("ZRANGEBYSCORE", keys.prioritized(queue), band, "+inf", "LIMIT", 0, count),
            ])
            return Array(parts.flatMap { ($0.array ?? []).compactMap(\.string) }.prefix(count))
        }
        let sizes = try await pipeline([
            RedisCommand("ZCOUNT", keys.prioritized(queue), "-inf", "(" + band),
            RedisCommand("LLEN", keys.pending(queue)),
            RedisCommand("ZCARD", keys.prioritized(queue)),
        ])
        let high = sizes[0].int ?? 0
        let listed = sizes[1].int ?? 0
        let total = listed + (sizes[2].int ?? 0)
        var range = start..<min(total, start + count)
        if order == .newestFirst {
            range = max(0, total - start - count)..<max(0, total - start)
        }
        guard !range.isEmpty else { return [] }
        var commands: [RedisCommand] = []
        let highPart = range.clamped(to: 0..<high)
        let listPart = range.clamped(to: high..<(high + listed))
        let lowPart = range.clamped(to: (high + listed)..<total)
        if !highPart.isEmpty {
            commands.append(
                RedisCommand("ZRANGE", keys.prioritized(queue), highPart.lowerBound, highPart.upperBound - 1)
            )
        }
        if !listPart.isEmpty {
            commands.append(
                RedisCommand("LRANGE", keys.pending(queue), listPart.lowerBound - high, listPart.upperBound - high - 1)
            )
        }
        if !lowPart.isEmpty {
            commands.append(
                RedisCommand(
                    "ZRANGE",
                    keys.prioritized(queue),
                    lowPart.lowerBound - listed,
                    lowPart.upperBound - listed - 1
                )
            )
        }
        let ids = try await pipeline(commands).flatMap { ($0.array ?? []).compactMap(\.string) }
        return order == .oldestFirst ? ids : ids.reversed()
    }
}

/// Jobs finished in a window of time (``JobQueue/throughput(queue:over:)``).
public struct Throughput: Sendable, Hashable {
    /// Jobs that completed.
    public var completed: Int
    /// Jobs that failed for good (retries are not counted).
    public var failed: Int
    /// The span the counts cover: the window asked for, or less when the event stream was trimmed inside it.
    public var covered: Duration
}
