import Foundation
import RedisClient
import Synchronization

/// The waits of one ``JobQueue`` for jobs to finish, served by one reader per queue.
///
/// A wait registers its job here, reads the job once itself, and suspends. One reader per queue that has waits
/// blocks on the queue's event stream (`XREAD BLOCK` on a dedicated connection, so one thread and one connection
/// however many callers wait) and wakes the waits whose job an event finished; once a second it also reads the
/// status of every job waited for in one pipeline, so waits end when events are turned off or trimmed. The reader
/// stops as soon as nobody waits on its queue. A reader per queue, not one for all: a queue's keys share one Redis
/// Cluster slot, and one `XREAD` may not span slots.
///
/// A wait sees every finish: either its own read of the job, made after it registered, shows it; or the event comes
/// later, after the reader's cursor. The reader takes its cursor (the stream's last id) before it *arms*; waits that
/// register before it arms are read by the reader itself once armed, those that register later read their job
/// themselves.
final class ResultWaiter: Sendable {
    /// What ended a wait.
    enum Signal: Sendable {
        /// The job may have finished (an event or the status says so, or the job is gone): read it.
        case finished
        /// The reader failed: Redis is unreachable.
        case failed(ConveyorError)
        case timedOut
        case cancelled
    }

    /// What a new wait must do before it suspends.
    enum Registration: Sendable {
        /// Read the job: the reader was armed before this wait registered.
        case readTheJob(UInt64)
        /// Nothing: the reader will read the job once armed.
        case readerWillRead(UInt64)
    }

    private enum Wait {
        case registered
        case signalled(Signal)
        case suspended(UnsafeContinuation<Signal, Never>)
    }

    private struct Entry {
        var queue: String
        var jobID: String
        var localID: String
        var wait: Wait
    }

    private struct Reader {
        var generation: UInt64
        var armed = false
        var tokens: Set<UInt64> = []
        var connection: RedisConnection
        var task: Task<Void, Never>?
    }

    private struct State: ~Copyable {
        var nextToken: UInt64 = 1
        var entries: [UInt64: Entry] = [:]
        var readers: [String: Reader] = [:]
    }

    private let redis: RedisClient
    private let keys: Keys
    private let state = Mutex(State())

    init(redis: RedisClient, keys: Keys) {
        self.redis = redis
        self.keys = keys
    }

    /// The waits registered now (for tests).
    var count: Int { state.withLock { $0.entries.count } }

    /// The queues with a running reader now (for tests).
    var readingQueues: Set<String> { state.withLock { Set($0.readers.keys) } }

    // MARK: - Waits

    /// Registers a wait for a job, starting the queue's reader when it has none.
    func register(queue: String, jobID: String, localID: String) -> Registration {
        var start: (UInt64, RedisConnection)?
        let registration: Registration = state.withLock { state in
            let token = state.nextToken
            state.nextToken += 1
            state.entries[token] = Entry(queue: queue, jobID: jobID, localID: localID, wait: .registered)
            if state.readers[queue] == nil {
                let connection = redis.makeDedicatedConnection()
                state.readers[queue] = Reader(generation: token, connection: connection)
                start = (token, connection)
            }
            state.readers[queue]!.tokens.insert(token)
            return state.readers[queue]!.armed ? .readTheJob(token) : .readerWillRead(token)
        }
        if let (generation, connection) = start {
            // Owned by this waiter: cancelled as soon as no wait is left on the queue (see `remove`).
            let task = Task { await self.read(queue: queue, generation: generation, connection: connection) }
            let stale = state.withLock { state in
                guard state.readers[queue]?.generation == generation else { return true }
                state.readers[queue]!.task = task
                return false
            }
            if stale { task.cancel() }
        }
        return registration
    }

    /// Suspends until the wait is signalled, its deadline passes or the task is cancelled, and removes it.
    func wait(_ token: UInt64, until deadline: ContinuousClock.Instant) async -> Signal {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                guard (try? await Task.sleep(until: deadline, clock: .continuous)) != nil, !Task.isCancelled else {
                    return
                }
                self.signal(token, .timedOut)
            }
            defer { group.cancelAll() }
            return await withTaskCancellationHandler {
                await withUnsafeContinuation { continuation in
                    let ready: Signal? = state.withLock { state in
                        guard let entry = state.entries[token] else { return .cancelled }
                        if case .signalled(let signal) = entry.wait { return signal }
                        state.entries[token]!.wait = .suspended(continuation)
                        return nil
                    }
                    if let ready {
                        remove(token)
                        continuation.resume(returning: ready)
                    }
                }
            } onCancel: {
                signal(token, .cancelled)
            }
        }
    }

    /// Removes a wait (it ended, or its own read of the job showed it finished); stops the reader when it was the
    /// queue's last.
    func remove(_ token: UInt64) {
        let stopped: Reader? = state.withLock { state in
            guard let entry = state.entries.removeValue(forKey: token) else { return nil }
            state.readers[entry.queue]?.tokens.remove(token)
            guard let reader = state.readers[entry.queue], reader.tokens.isEmpty else { return nil }
            state.readers[entry.queue] = nil
            return reader
        }
        if let stopped { stop(stopped) }
    }

    /// Ends a wait with `signal`, unless something ended it already; a wait not yet suspended finds it when it does.
    private func signal(_ token: UInt64, _ signal: Signal) {
        let continuation: UnsafeContinuation<Signal, Never>? = state.withLock { state in
            guard let entry = state.entries[token] else { return nil }
            switch entry.wait {
            case .registered:
                state.entries[token]!.wait = .signalled(signal)
                return nil
            case .signalled:
                return nil
            case .suspended(let continuation):
                return continuation
            }
        }
        if let continuation {
            remove(token)
            continuation.resume(returning: signal)
        }
    }

    private func stop(_ reader: Reader) {
        reader.task?.cancel()
        reader.connection.close()
    }

    // MARK: - The reader

    /// The waits of a reader's queue, when `generation` is still the queue's reader.
    private func waits(queue: String, generation: UInt64) -> [(token: UInt64, jobID: String, localID: String)]? {
        state.withLock { state in
            guard let reader = state.readers[queue], reader.generation == generation else { return nil }
            return reader.tokens.compactMap { token in
                state.entries[token].map { (token, $0.jobID, $0.localID) }
            }
        }
    }

    private func read(queue: String, generation: UInt64, connection: RedisConnection) async {
        let events = keys.events(queue)
        let clock = ContinuousClock()
        var failures = 0
        var cursor: String?
        var lastSweep = clock.now
        while !Task.isCancelled {
            do {
                if cursor == nil {
                    let last = try await connection.send("XREVRANGE", events, "+", "-", "COUNT", 1)
                    cursor = last.array?.first?.array?.first?.string ?? "0-0"
                    let unread: Bool = state.withLock { state in
                        guard state.readers[queue]?.generation == generation else { return false }
                        state.readers[queue]!.armed = true
                        return true
                    }
                    guard unread else { return }
                    // Every wait registered so far is one this reader must read for itself.
                    try await sweep(queue: queue, generation: generation, on: connection)
                    lastSweep = clock.now
                }
                let reply = try await connection.send(
                    RedisCommand("XREAD", "COUNT", 1000, "BLOCK", 1000, "STREAMS", events, cursor ?? "0-0"),
                    blockingFor: .seconds(1)
                )
                var finished: Set<String> = []
                for entry in reply.array?.first?.array?.last?.array ?? [] {
                    guard let parts = entry.array, parts.count == 2, let id = parts[0].string else { continue }
                    cursor = id
                    let fields = JobQueue.fields(parts[1].array ?? [])
                    if let to = fields["to"], to == "removed" || JobStatus(rawValue: to)?.isFinished == true {
                        for job in JobQueue.eventJobs(fields) { finished.insert(job.id) }
                    }
                }
                if !finished.isEmpty {
                    for wait in waits(queue: queue, generation: generation) ?? [] where finished.contains(wait.jobID) {
                        signal(wait.token, .finished)
                    }
                }
                if clock.now - lastSweep >= .seconds(1) {
                    try await sweep(queue: queue, generation: generation, on: connection)
                    lastSweep = clock.now
                }
                failures = 0
            } catch {
                if Task.isCancelled { return }
                failures += 1
                // A lost connection is made again by the next command, and the cursor loses nothing: try once more.
                if let error = error as? RedisClientError, error.code == .connectionLost, failures == 1 { continue }
                let message = (error as? RedisClientError)?.message ?? "\(error)"
                fail(queue: queue, generation: generation, ConveyorError(.redis, message))
                return
            }
        }
    }

    /// Reads the status of every job waited for on the queue, in pipelines, and wakes the waits whose job finished
    /// or is gone.
    private func sweep(queue: String, generation: UInt64, on connection: RedisConnection) async throws {
        guard let waits = waits(queue: queue, generation: generation), !waits.isEmpty else { return }
        for start in stride(from: 0, to: waits.count, by: 1000) {
            let batch = waits[start..<min(start + 1000, waits.count)]
            let replies = try await connection.pipeline(
                batch.map { RedisCommand("HGET", keys.job(queue, $0.localID), "status") }
            )
            for (wait, reply) in zip(batch, replies) {
                if reply == .null || reply.string.flatMap(JobStatus.init(rawValue:))?.isFinished == true {
                    signal(wait.token, .finished)
                }
            }
        }
    }

    /// Ends every wait of a failed reader's queue with the error and forgets the reader (the next wait starts one).
    private func fail(queue: String, generation: UInt64, _ error: ConveyorError) {
        let (tokens, reader): ([UInt64], Reader?) = state.withLock { state in
            guard let reader = state.readers[queue], reader.generation == generation else { return ([], nil) }
            state.readers[queue] = nil
            return (Array(reader.tokens), reader)
        }
        for token in tokens { signal(token, .failed(error)) }
        if let reader { reader.connection.close() }
    }
}
