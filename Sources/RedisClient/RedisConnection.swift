import Dispatch
import Foundation
internal import CHiredis
import Synchronization

/// One connection to Redis with a thread of its own.
///
/// Every hiredis call is blocking, so none may run on Swift's cooperative thread pool (two threads on a 2-core
/// machine: one blocked call would stall every task). A `RedisConnection` owns a thread on which its hiredis
/// context lives; `async` calls hand their commands to that thread and suspend until the replies arrive. Commands
/// from concurrent callers run one after another, in the order they arrived.
///
/// The connection is made on first use and made again, with backoff bounded by the connect timeout, after it
/// breaks. Use one directly for blocking commands (`BLPOP`, `BZPOPMIN`, `XREAD BLOCK`); for everything else share a
/// ``RedisClient`` pool. Dropping the last reference closes it.
public final class RedisConnection: Sendable {
    let core: ConnectionCore

    /// Settings: the server URL, timeouts and the client name.
    public var configuration: RedisClient.Configuration { core.configuration }

    /// Creates a connection and starts its thread; the TCP or Unix connection is made on the first command.
    ///
    /// - Parameter configuration: The server URL, timeouts and client name.
    public init(configuration: RedisClient.Configuration) {
        core = ConnectionCore(configuration: configuration)
    }

    deinit {
        core.close()
    }

    /// Sends one command and returns its reply.
    ///
    /// - Parameter command: The command to send.
    /// - Returns: The reply; Redis error replies are returned as ``RedisReply/error(_:)``, not thrown.
    /// - Throws: ``RedisClientError`` when the connection cannot be made, breaks, times out or was closed.
    public func send(_ command: RedisCommand) async throws -> RedisReply {
        try await core.send(command)
    }

    /// Sends one command built from a name and arguments and returns its reply.
    ///
    /// - Parameters:
    ///   - name: The command name, for example `"GET"`.
    ///   - arguments: Its arguments: strings, bytes or numbers.
    /// - Returns: The reply.
    /// - Throws: ``RedisClientError`` on a transport failure.
    public func send(_ name: String, _ arguments: any RedisArgumentConvertible...) async throws -> RedisReply {
        try await core.send(RedisCommand(name, arguments))
    }

    /// Sends many commands in one write and reads their replies, in order (pipelining).
    ///
    /// - Parameter commands: The commands to send.
    /// - Returns: One reply per command, in the same order.
    /// - Throws: ``RedisClientError`` on a transport failure; then the replies not yet read are lost and any of
    ///   the commands may or may not have run.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        try await core.pipeline(commands)
    }

    /// Sends a command that may block on the server (`BLPOP`, `BZPOPMIN`, `XREAD BLOCK`, `WAIT`, …).
    ///
    /// The socket timeout for this call is `blockingFor` plus the command timeout, so the call neither times out
    /// early nor hangs past its own timeout. Cancelling the calling task, or calling ``interrupt()`` or
    /// ``close()``, ends the call at once with ``RedisClientError/Code/closed``.
    ///
    /// - Parameters:
    ///   - command: The blocking command, with its own timeout argument.
    ///   - blockingFor: The timeout given in the command; `.zero` when it blocks forever.
    /// - Returns: The reply (for example ``RedisReply/null`` when `BLPOP` timed out).
    /// - Throws: ``RedisClientError`` on a transport failure or an interruption.
    public func send(_ command: RedisCommand, blockingFor: Duration) async throws -> RedisReply {
        try await core.send(command, blockingFor: blockingFor)
    }

    /// Ends the command running now, if any, by shutting its socket down; it fails with
    /// ``RedisClientError/Code/closed`` and the next command reconnects.
    public func interrupt() {
        core.interrupt()
    }

    /// Closes the connection: the running command is interrupted, queued and later ones fail with
    /// ``RedisClientError/Code/closed``, and the thread ends.
    public func close() {
        core.close()
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { core.isClosed }
}

/// The part of a ``RedisConnection`` its thread holds on to: the work queue and the socket to interrupt.
///
/// Split from ``RedisConnection`` so that dropping the last reference to the connection closes it and ends the
/// thread (the thread itself only references this core).
final class ConnectionCore: Sendable {
    /// Settings: the server URL, timeouts and the client name.
    let configuration: RedisClient.Configuration

    private struct Work: Sendable {
        var id: UInt64
        var buffer: [UInt8]
        var replyCount: Int
        var blockingFor: Duration?
        var continuation: UnsafeContinuation<[RedisReply], any Error>
    }

    private struct State: Sendable {
        var queue: [Work] = []
        var queueHead = 0
        var nextID: UInt64 = 1
        var isClosed = false
        var socket: Int32 = -1
        var runningID: UInt64 = 0
        var interruptedID: UInt64 = 0
    }

    private let state = Mutex(State())
    private let wakeUp = DispatchSemaphore(value: 0)

    /// Creates a connection and starts its thread; the TCP or Unix connection is made on the first command.
    ///
    /// - Parameter configuration: The server URL, timeouts and client name.
    init(configuration: RedisClient.Configuration) {
        self.configuration = configuration
        ignoreSIGPIPE()
        let thread = Thread { [self] in self.serve() }
        thread.name = "conveyor-redis"
        thread.start()
    }


    // MARK: - Commands

    /// Sends one command and returns its reply.
    ///
    /// - Parameter command: The command to send.
    /// - Returns: The reply; Redis error replies are returned as ``RedisReply/error(_:)``, not thrown.
    /// - Throws: ``RedisClientError`` when the connection cannot be made, breaks, times out or was closed.
    func send(_ command: RedisCommand) async throws -> RedisReply {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(64)
        command.encode(into: &buffer)
        return try await submit(buffer, replyCount: 1, blockingFor: nil)[0]
    }

    /// Sends one command built from a name and arguments and returns its reply.
    ///
    /// - Parameters:
    ///   - name: The command name, for example `"GET"`.
    ///   - arguments: Its arguments: strings, bytes or numbers.
    /// - Returns: The reply.
    /// - Throws: ``RedisClientError`` on a transport failure.
    func send(_ name: String, _ arguments: any RedisArgumentConvertible...) async throws -> RedisReply {
        try await send(RedisCommand(name, arguments))
    }

    /// Sends many commands in one write and reads their replies, in order (pipelining).
    ///
    /// - Parameter commands: The commands to send.
    /// - Returns: One reply per command, in the same order.
    /// - Throws: ``RedisClientError`` on a transport failure; then the replies not yet read are lost and any of
    ///   the commands may or may not have run.
    func pipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        var buffer: [UInt8] = []
        buffer.reserveCapacity(commands.count * 32)
        for command in commands { command.encode(into: &buffer) }
        return try await submit(buffer, replyCount: commands.count, blockingFor: nil)
    }

    /// Sends a command that may block on the server (`BLPOP`, `BZPOPMIN`, `XREAD BLOCK`, `WAIT`, …).
    ///
    /// The socket timeout for this call is `blockingFor` plus the command timeout, so the call neither times out
    /// early nor hangs past its own timeout. Cancelling the calling task, or calling ``interrupt()`` or
    /// ``close()``, ends the call at once with ``RedisClientError/Code/closed``.
    ///
    /// - Parameters:
    ///   - command: The blocking command, with its own timeout argument.
    ///   - blockingFor: The timeout given in the command; `.zero` when it blocks forever.
    /// - Returns: The reply (for example ``RedisReply/null`` when `BLPOP` timed out).
    /// - Throws: ``RedisClientError`` on a transport failure or an interruption.
    func send(_ command: RedisCommand, blockingFor: Duration) async throws -> RedisReply {
        var buffer: [UInt8] = []
        command.encode(into: &buffer)
        return try await submit(buffer, replyCount: 1, blockingFor: blockingFor)[0]
    }

    /// Ends the command running now, if any, by shutting the socket down; it fails with
    /// ``RedisClientError/Code/closed`` and the next command reconnects.
    func interrupt() {
        state.withLock { state in
            guard state.runningID != 0, state.socket >= 0 else { return }
            state.interruptedID = state.runningID
            shutdown(state.socket, Int32(SHUT_RDWR))
        }
    }

    /// Closes the connection: the running command is interrupted, queued ones fail with
    /// ``RedisClientError/Code/closed``, and the thread ends.
    func close() {
        let dropped: [Work] = state.withLock { state in
            state.isClosed = true
            if state.runningID != 0, state.socket >= 0 {
                state.interruptedID = state.runningID
                shutdown(state.socket, Int32(SHUT_RDWR))
            }
            let rest = Array(state.queue[state.queueHead...])
            state.queue = []
            state.queueHead = 0
            return rest
        }
        for work in dropped { work.continuation.resume(throwing: closedError) }
        wakeUp.signal()
    }

    /// Whether ``close()`` was called.
    var isClosed: Bool { state.withLock { $0.isClosed } }

    // MARK: - The connection's thread

    private var closedError: RedisClientError {
        RedisClientError(.closed, "the connection to Redis at \(configuration.url) was closed")
    }

    private func submit(_ buffer: [UInt8], replyCount: Int, blockingFor: Duration?) async throws -> [RedisReply] {
        if blockingFor == nil {
            return try await withUnsafeThrowingContinuation { continuation in
                enqueue(buffer, replyCount, nil, continuation)
            }
        }
        let id = Mutex<UInt64>(0)
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { continuation in
                id.withLock { $0 = enqueue(buffer, replyCount, blockingFor, continuation) }
            }
        } onCancel: {
            let workID = id.withLock { $0 }
            state.withLock { state in
                guard workID != 0, state.runningID == workID, state.socket >= 0 else { return }
                state.interruptedID = workID
                shutdown(state.socket, Int32(SHUT_RDWR))
            }
        }
    }

    @discardableResult
    private func enqueue(
        _ buffer: [UInt8],
        _ replyCount: Int,
        _ blockingFor: Duration?,
        _ continuation: UnsafeContinuation<[RedisReply], any Error>
    ) -> UInt64 {
        let id: UInt64? = state.withLock { state in
            guard !state.isClosed else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.queue.append(
                Work(id: id, buffer: buffer, replyCount: replyCount, blockingFor: blockingFor, continuation: continuation)
            )
            return id
        }
        guard let id else {
            continuation.resume(throwing: closedError)
            return 0
        }
        wakeUp.signal()
        return id
    }

    private func next() -> Work?? {
        state.withLock { state in
            if state.queueHead < state.queue.count {
                let work = state.queue[state.queueHead]
                state.queueHead += 1
                if state.queueHead == state.queue.count {
                    state.queue.removeAll(keepingCapacity: true)
                    state.queueHead = 0
                }
                state.runningID = work.id
                return .some(work)
            }
            return state.isClosed ? .none : .some(nil)
        }
    }

    private func serve() {
        let session = HiredisSession(configuration: configuration) { [self] socket in
            state.withLock { $0.socket = socket }
        }
        while true {
            // Spin briefly before sleeping: a caller that just got its reply usually sends the next command within
            // microseconds, and a semaphore wake-up costs more than that.
            var work: Work?? = next()
            var spins = 0
            while case .some(.none) = work, spins < configuration.spinIterations {
                spins += 1
                work = next()
            }
            switch work {
            case .none:
                session.disconnect()
                return
            case .some(.none):
                wakeUp.wait()
            case .some(.some(let work)):
                let result: Result<[RedisReply], RedisClientError>
                do {
                    let replies = try session.execute(
                        work.buffer,
                        replyCount: work.replyCount,
                        blockingFor: work.blockingFor
                    ) { [self] in state.withLock { $0.interruptedID == work.id } }
                    result = .success(replies)
                } catch {
                    result = .failure(error)
                }
                state.withLock { $0.runningID = 0 }
                work.continuation.resume(with: result.mapError { $0 as any Error })
            }
        }
    }
}

private let sigpipeIgnored: Void = {
    // hiredis writes with write(2): writing to a socket the server closed raises SIGPIPE, which would kill the
    // process. Conveyor ignores it process-wide on first use; the write then fails with EPIPE instead.
    _ = signal(SIGPIPE, SIG_IGN)
}()

/// Ignores SIGPIPE for the whole process (once).
package func ignoreSIGPIPE() {
    _ = sigpipeIgnored
}
