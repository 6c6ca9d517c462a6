internal import CHiredis
import Dispatch
import Foundation
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
        try await core.execute([command], blockingFor: nil)[0]
    }

    /// Sends one command built from a name and arguments and returns its reply.
    ///
    /// - Parameters:
    ///   - name: The command name, for example `"GET"`.
    ///   - arguments: Its arguments: strings, bytes or numbers.
    /// - Returns: The reply.
    /// - Throws: ``RedisClientError`` on a transport failure.
    public func send(_ name: String, _ arguments: any RedisArgumentConvertible...) async throws -> RedisReply {
        try await send(RedisCommand(name, arguments))
    }

    /// Sends many commands in one write and reads their replies, in order (pipelining).
    ///
    /// - Parameter commands: The commands to send.
    /// - Returns: One reply per command, in the same order.
    /// - Throws: ``RedisClientError`` on a transport failure; then the replies not yet read are lost and any of
    ///   the commands may or may not have run.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try await core.execute(commands, blockingFor: nil)
    }

    /// Sends many commands in one write, the last of which may block on the server (`WAIT` after a write), and reads
    /// their replies in order.
    ///
    /// - Parameters:
    ///   - commands: The commands to send.
    ///   - blockingFor: The longest the server may hold the reply (the blocking command's own timeout).
    /// - Returns: One reply per command, in the same order.
    /// - Throws: ``RedisClientError`` on a transport failure or an interruption.
    public func pipeline(_ commands: [RedisCommand], blockingFor: Duration) async throws -> [RedisReply] {
        guard !commands.isEmpty else { return [] }
        return try await core.execute(commands, blockingFor: blockingFor)
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
        try await core.execute([command], blockingFor: blockingFor)[0]
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

    /// Runs `body` with this connection's thread as its task executor, so that commands sent on this connection
    /// from `body` run inline, without a thread hop each way.
    ///
    /// A loop of sequential commands (`for … { try await connection.send(…) }`) otherwise pays two thread
    /// wake-ups per command: one to reach the connection's thread and one to come back. Inside `body` those are
    /// gone, and the round trip costs what it costs in C.
    ///
    /// - Important: While `body` runs on the connection's thread, commands from other tasks on this connection wait
    ///   for `body` to suspend. Keep CPU-heavy work out of `body`; child tasks it creates inherit the preference.
    /// - Parameter body: The work to run on the connection's thread.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws.
    public func withPinnedTask<Result>(_ body: () async throws -> Result) async throws -> Result {
        try await withTaskExecutorPreference(core) { try await body() }
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
