public import Foundation
import RedisClient

/// One change of state of a job, as recorded in its queue's event stream.
public struct JobEvent: Sendable, Hashable {
    /// The stream entry id (`<ms>-<seq>`), usable as a cursor.
    public var streamID: String
    /// The queue.
    public var queue: String
    /// The job's full id.
    public var jobID: String
    /// The job type.
    public var type: String
    /// The previous status (`nil` for a new job).
    public var from: JobStatus?
    /// The new status, or `nil` when the job was removed (`to` is `removed` in the stream).
    public var to: JobStatus?
    /// When it happened (Redis time).
    public var at: Date
    /// The error or note the transition carried, if any.
    public var error: String?
}

extension JobEvent {
    /// The job events of one stream entry (a queue's own events, paused and resumed, carry no job; a batch entry
    /// carries several).
    static func events(of entry: RedisReply, queue: String) -> [JobEvent] {
        guard let fields = entry.array, fields.count == 2, let id = fields[0].string else { return [] }
        let values = JobQueue.fields(fields[1].array ?? [])
        return JobQueue.eventJobs(values).map { job in
            JobEvent(
                streamID: id,
                queue: queue,
                jobID: job.id,
                type: job.type,
                from: values["from"].flatMap(JobStatus.init(rawValue:)),
                to: values["to"].flatMap(JobStatus.init(rawValue:)),
                at: Date(timeIntervalSince1970: Double(Int(values["at"] ?? "") ?? 0) / 1000),
                error: values["error"]
            )
        }
    }
}

/// Where to start reading an event stream.
public enum EventStart: Sendable, Hashable {
    /// Only events after the sequence is created.
    case now
    /// Every event still in the stream.
    case beginning
    /// Events after a given stream id.
    case after(String)
}

/// The events of one or more queues, in order per queue, as an `AsyncSequence` that waits for new ones.
///
/// Each iterator reads with `XREAD BLOCK` on a connection of its own; cancelling the consuming task ends the wait at
/// once. The sequence never ends by itself.
public struct JobEventSequence: AsyncSequence, Sendable {
    public typealias Element = JobEvent

    let queue: JobQueue
    let queues: [String]
    let start: [String: String]

    public func makeAsyncIterator() -> Iterator {
        Iterator(sequence: self)
    }

    /// Reads events in batches and hands them out one by one.
    public struct Iterator: AsyncIteratorProtocol {
        let sequence: JobEventSequence
        var connection: RedisConnection?
        var cursors: [String: String] = [:]
        var buffer: [JobEvent] = []
        var position = 0

        init(sequence: JobEventSequence) {
            self.sequence = sequence
        }

        public mutating func next() async throws -> JobEvent? {
            if position == buffer.count {
                buffer = try await nextBatch()
                position = 0
                if buffer.isEmpty { return nil }
            }
            position += 1
            return buffer[position - 1]
        }

        /// The next events as they were read together (one `XREAD`, at most 500 entries per queue), waiting until
        /// there is at least one: for a consumer that forwards events in batches, such as the dashboard's live
        /// stream. Events ``next()`` had read but not yet handed out come first.
        ///
        /// - Parameter limit: Give up waiting after about this long (at least one second: the length of one blocking
        ///   read) and return no events; `nil` waits for ever.
        /// - Returns: One or more events, in order per queue (none only when `limit` passed).
        /// - Throws: ``ConveyorError`` when Redis fails, `CancellationError` when the task is cancelled.
        public mutating func nextBatch(waitingAtMost limit: Duration? = nil) async throws -> [JobEvent] {
            let deadline = limit.map { ContinuousClock.now + $0 }
            if position < buffer.count {
                defer {
                    buffer = []
                    position = 0
                }
                return Array(buffer[position...])
            }
            var buffer: [JobEvent] = []
            let keys = sequence.queue.keys
            if connection == nil {
                connection = sequence.queue.redis.makeDedicatedConnection()
                cursors = sequence.start
            }
            guard let connection else { return [] }
            while buffer.isEmpty {
                try Task.checkCancellation()
                if let deadline, ContinuousClock.now >= deadline { return [] }
                let streams = sequence.queues.map { keys.events($0) }
                let ids = sequence.queues.map { cursors[$0] ?? "0-0" }
                var read: [RedisReply] = []
                do {
                    if sequence.queue.redis.isCluster && streams.count > 1 {
                        // On a cluster one XREAD cannot span the queues' slots: read each without blocking (one
                        // round trip per node), and pause briefly when none had anything.
                        let replies = try await connection.pipeline(
                            zip(streams, ids).map { RedisCommand("XREAD", "COUNT", 500, "STREAMS", $0, $1) }
                        )
                        read = replies.flatMap { $0.array ?? [] }
                        if read.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
                    } else {
                        let reply = try await connection.send(
                            RedisCommand("XREAD", ["COUNT", 500, "BLOCK", 1000, "STREAMS"] + streams + ids),
                            blockingFor: .seconds(1)
                        )
                        read = reply.array ?? []
                    }
                } catch let error as RedisClientError {
                    throw ConveyorError(.redis, error.message)
                }
                for stream in read {
                    guard let parts = stream.array, parts.count == 2, let key = parts[0].string,
                        let queue = sequence.queues.first(where: { keys.events($0) == key })
                    else { continue }
                    for entry in parts[1].array ?? [] {
                        guard let id = entry.array?.first?.string else { continue }
                        cursors[queue] = id
                        buffer += JobEvent.events(of: entry, queue: queue)
                    }
                }
            }
            return buffer
        }
    }
}

extension JobQueue {
    /// The events of queues: every transition of every job, as it happens.
    ///
    /// - Parameters:
    ///   - queues: The queues (the default queue when empty).
    ///   - start: Where to start: new events only (default), everything kept, or after a stream id.
    /// - Returns: An endless sequence of events.
    /// - Throws: ``ConveyorError`` for a bad queue name, or when Redis fails.
    public func events(queues: [String] = [], from start: EventStart = .now) async throws -> JobEventSequence {
        let names = try (queues.isEmpty ? [configuration.defaultQueue] : queues).map { try queueName($0) }
        var cursors: [String: String] = [:]
        for name in names {
            switch start {
            case .beginning:
                cursors[name] = "0-0"
            case .after(let id):
                cursors[name] = id
            case .now:
                // The current last id, read now: events after this call are not missed, however late iteration starts.
                let last = try await command(RedisCommand("XREVRANGE", keys.events(name), "+", "-", "COUNT", 1))
                cursors[name] = last.array?.first?.array?.first?.string ?? "0-0"
            }
        }
        return JobEventSequence(queue: self, queues: names, start: cursors)
    }
}

extension JobQueue {
    /// The transitions of one job still in its queue's event stream, oldest first: the job's timeline (the stream
    /// keeps about `events_max` transitions of the whole queue, 10 000 by default, so an old job's may be gone).
    ///
    /// - Parameter id: The full job id.
    /// - Returns: Its events.
    /// - Throws: ``ConveyorError`` for a bad id, or when Redis fails.
    public func events(ofJob id: String) async throws -> [JobEvent] {
        let (queue, _) = try split(id)
        let stream = keys.events(queue)
        var found: [JobEvent] = []
        var cursor = "-"
        while true {
            let entries = try await command(RedisCommand("XRANGE", stream, cursor, "+", "COUNT", 2000)).array ?? []
            for entry in entries {
                found += JobEvent.events(of: entry, queue: queue).filter { $0.jobID == id }
            }
            guard entries.count == 2000, let last = entries.last?.array?.first?.string else { return found }
            cursor = "(" + last
        }
    }
}
