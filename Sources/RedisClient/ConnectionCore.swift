internal import CHiredis
import Dispatch
import Foundation
import Synchronization

/// The thread of a ``RedisConnection`` and everything it shares with other threads: the queue of commands and
/// executor jobs, and the socket to shut down to interrupt a call.
///
/// The connection's thread runs, one at a time and in arrival order, commands sent from other threads (each
/// resumes its caller when done) and jobs of tasks that chose this thread as their executor
/// (``RedisConnection/withPinnedTask(_:)``); such tasks run their commands inline. Split from
/// ``RedisConnection`` so that dropping the last reference to the connection closes it and ends the thread.
final class ConnectionCore: TaskExecutor, Sendable {
    let configuration: RedisClient.Configuration

    private struct Work: Sendable {
        var id: UInt64
        var commands: [RedisCommand]
        var blockingFor: Duration?
        var enqueuedAt: ContinuousClock.Instant
        var continuation: UnsafeContinuation<[RedisReply], any Error>
    }

    private enum Item: Sendable {
        case command(Work)
        case job(UnownedJob)
    }

    private struct State: Sendable {
        var queue: [Item] = []
        var queueHead = 0
        var nextID: UInt64 = 1
        var isClosed = false
        var threadHasEnded = false
        var socket: Int32 = -1
        var runningID: UInt64 = 0
        var interruptedID: UInt64 = 0
    }

    private let state = Mutex(State())
    private let wakeUp = DispatchSemaphore(value: 0)
    private let thread = Atomic<UInt>(0)
    private let session: ThreadConfined<SessionRouter>

    init(configuration: RedisClient.Configuration) {
        self.configuration = configuration
        ignoreSIGPIPE()
        let publish = Mutex<(@Sendable (Int32) -> Void)?>(nil)
        session = ThreadConfined(
            SessionRouter(configuration: configuration) { socket in publish.withLock { $0 }?(socket) }
        )
        publish.withLock { $0 = { [weak self] socket in self?.state.withLock { $0.socket = socket } } }
        let thread = Thread { [self] in self.serve() }
        thread.name = "conveyor-redis"
        thread.start()
    }

    var isClosed: Bool { state.withLock { $0.isClosed } }

    private var isOnConnectionThread: Bool { thread.load(ordering: .relaxed) == UInt(pthread_self()) }

    private var closedError: RedisClientError {
        RedisClientError(.closed, "the connection to Redis at \(configuration.url) was closed")
    }

    // MARK: - Commands

    /// Sends commands and returns their replies: inline when called on the connection's thread, else by handing them
    /// to it.
    func execute(_ commands: [RedisCommand], blockingFor: Duration?) async throws -> [RedisReply] {
        if isOnConnectionThread {
            return try await executeInline(commands, blockingFor: blockingFor)
        }
        if blockingFor == nil {
            return try await withUnsafeThrowingContinuation { continuation in
                enqueue(commands, nil, continuation)
            }
        }
        let id = Mutex<UInt64>(0)
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                let assigned = enqueue(commands, blockingFor, continuation)
                id.withLock { $0 = assigned }
            }
        } onCancel: {
            interrupt(only: id.withLock { $0 })
        }
    }

    private func executeInline(_ commands: [RedisCommand], blockingFor: Duration?) async throws -> [RedisReply] {
        let id: UInt64? = state.withLock { state in
            guard !state.isClosed else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.runningID = id
            return id
        }
        guard let id else { throw closedError }
        defer { state.withLock { $0.runningID = 0 } }
        let run = {
            precondition(self.isOnConnectionThread, "hiredis used off its connection's thread")
            return try self.session.value.execute(commands, blockingFor: blockingFor) {
                self.state.withLock { $0.interruptedID == id }
            }
        }
        guard blockingFor != nil else { return try run() }
        return try await withTaskCancellationHandler {
            try run()
        } onCancel: {
            interrupt(only: id)
        }
    }

    /// Ends the running command by shutting its socket down (only command `id`, when given).
    func interrupt(only id: UInt64? = nil) {
        state.withLock { state in
            guard state.runningID != 0, state.socket >= 0, id == nil || id == state.runningID else { return }
            state.interruptedID = state.runningID
            shutdown(state.socket, Int32(SHUT_RDWR))
        }
    }

    func close() {
        let dropped: [Work] = state.withLock { state in
            state.isClosed = true
            if state.runningID != 0, state.socket >= 0 {
                state.interruptedID = state.runningID
                shutdown(state.socket, Int32(SHUT_RDWR))
            }
            var commands: [Work] = []
            var jobs: [Item] = []
            for item in state.queue[state.queueHead...] {
                if case .command(let work) = item { commands.append(work) } else { jobs.append(item) }
            }
            state.queue = jobs
            state.queueHead = 0
            return commands
        }
        for work in dropped { work.continuation.resume(throwing: closedError) }
        wakeUp.signal()
    }

    @discardableResult
    private func enqueue(
        _ commands: [RedisCommand],
        _ blockingFor: Duration?,
        _ continuation: UnsafeContinuation<[RedisReply], any Error>
    ) -> UInt64 {
        let id: UInt64? = state.withLock { state in
            guard !state.isClosed else { return nil }
            let id = state.nextID
            state.nextID += 1
            let work = Work(
                id: id,
                commands: commands,
                blockingFor: blockingFor,
                enqueuedAt: .now,
                continuation: continuation
            )
            state.queue.append(.command(work))
            return id
        }
        guard let id else {
            continuation.resume(throwing: closedError)
            return 0
        }
        wakeUp.signal()
        return id
    }

    // MARK: - TaskExecutor

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let accepted = state.withLock { state in
            guard !state.threadHasEnded else { return false }
            state.queue.append(.job(unowned))
            return true
        }
        if accepted {
            wakeUp.signal()
        } else {
            // The thread is gone (the connection was closed): the job must still run somewhere.
            globalConcurrentExecutor.enqueue(ExecutorJob(unowned))
        }
    }

    // MARK: - The thread

    private enum Next {
        case item(Item)
        case idle
        case exit
    }

    private func next() -> Next {
        state.withLock { state in
            if state.queueHead < state.queue.count {
                let item = state.queue[state.queueHead]
                state.queueHead += 1
                if state.queueHead == state.queue.count {
                    state.queue.removeAll(keepingCapacity: true)
                    state.queueHead = 0
                }
                if case .command(let work) = item { state.runningID = work.id }
                return .item(item)
            }
            if state.isClosed {
                state.threadHasEnded = true
                return .exit
            }
            return .idle
        }
    }

    private func serve() {
        thread.store(UInt(pthread_self()), ordering: .relaxed)
        let clock = ContinuousClock()
        var finishedAt = clock.now
        var callerIsQuick = false
        while true {
            var next = next()
            // A caller that sends its next command within microseconds of getting a reply would otherwise pay a
            // thread wake-up per command. Spin briefly for such callers only, learnt from the previous gap.
            if case .idle = next, callerIsQuick {
                let deadline = finishedAt + configuration.idleSpin
                repeat {
                    next = self.next()
                    guard case .idle = next else { break }
                } while clock.now < deadline
            }
            switch next {
            case .exit:
                session.value.disconnect()
                return
            case .idle:
                wakeUp.wait()
            case .item(.job(let job)):
                job.runSynchronously(on: asUnownedTaskExecutor())
            case .item(.command(let work)):
                callerIsQuick = work.enqueuedAt - finishedAt < configuration.idleSpin
                let result: Result<[RedisReply], any Error>
                do {
                    let replies = try session.value.execute(work.commands, blockingFor: work.blockingFor) { [self] in
                        state.withLock { $0.interruptedID == work.id }
                    }
                    result = .success(replies)
                } catch {
                    result = .failure(error)
                }
                state.withLock { $0.runningID = 0 }
                finishedAt = clock.now
                work.continuation.resume(with: result)
            }
        }
    }
}

/// A value used only on the connection's thread, never concurrently.
///
/// `ConnectionCore` must be `Sendable` (other threads enqueue work on it), and so must its stored properties; the
/// hiredis session inside is not, but it is only ever touched by the connection's own thread: in its run loop, and
/// by tasks that run on that thread because they chose it as their executor. That is the invariant that makes this
/// `@unchecked Sendable` sound.
final class ThreadConfined<Value>: @unchecked Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }
}
