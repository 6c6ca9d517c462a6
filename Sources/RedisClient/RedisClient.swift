public import Logging
import Synchronization

/// A pool of ``RedisConnection``s to one Redis server, for concurrent async callers.
///
/// Each connection has its own thread, so hiredis never blocks Swift's cooperative thread pool. A call borrows an
/// idle connection (opening a new one while fewer than ``Configuration/maximumConnections`` exist, waiting
/// otherwise), runs, and gives it back.
///
/// ```swift
/// let redis = try RedisClient(url: "redis://127.0.0.1:6379")
/// let reply = try await redis.send("SET", "greeting", "hello")
/// ```
///
/// Blocking commands get a connection of their own: ``makeDedicatedConnection()``. ``shutdown()`` closes every
/// connection, including dedicated ones, and interrupts their blocked calls.
public final class RedisClient: Sendable {
    /// How to reach the server and how long to wait for it.
    public struct Configuration: Sendable {
        /// The server and credentials.
        public var url: RedisURL
        /// How long connecting (TCP plus handshake) may take; reconnecting after a failure retries with backoff
        /// within this time.
        public var connectTimeout: Duration
        /// How long a command may wait for its reply (blocking commands add their own timeout to it).
        public var commandTimeout: Duration
        /// The most connections the pool opens (dedicated connections are not counted).
        public var maximumConnections: Int
        /// The name set with `CLIENT SETNAME` on every connection, shown by `CLIENT LIST`; `nil` sets none.
        public var clientName: String?
        /// How long a connection's thread keeps checking for the next command before it sleeps, for callers that
        /// send back to back (learnt per connection from the gap between commands; callers with longer gaps never
        /// cause spinning). Saves a thread wake-up per command; `.zero` turns spinning off.
        public var idleSpin: Duration
        /// How long a connection's thread polls for a reply before it sleeps in a blocking read (not for blocking
        /// commands). Trades a little CPU for much lower latency; when replies take longer than this, the connection
        /// stops spinning for a while. `.zero` always sleeps.
        public var replySpin: Duration

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - url: The server and credentials.
        ///   - connectTimeout: Connect timeout (2 s by default).
        ///   - commandTimeout: Reply timeout (5 s by default).
        ///   - maximumConnections: Pool size limit (16 by default).
        ///   - clientName: `CLIENT SETNAME` value, or `nil`.
        ///   - idleSpin: Spin window of an idle connection thread for quick callers (50 µs by default).
        ///   - replySpin: How long to poll for a reply before sleeping (100 µs by default).
        public init(
            url: RedisURL,
            connectTimeout: Duration = .seconds(2),
            commandTimeout: Duration = .seconds(5),
            maximumConnections: Int = 16,
            clientName: String? = nil,
            idleSpin: Duration = .microseconds(50),
            replySpin: Duration = .microseconds(100)
        ) {
            self.url = url
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.maximumConnections = max(1, maximumConnections)
            self.clientName = clientName
            self.idleSpin = max(.zero, idleSpin)
            self.replySpin = max(.zero, replySpin)
        }
    }

    private struct Pool: ~Copyable {
        var idle: [RedisConnection] = []
        var opened = 0
        var waiters: [UnsafeContinuation<RedisConnection, any Error>] = []
        var dedicated: [ObjectIdentifier: WeakConnection] = [:]
        var isShutDown = false
    }

    private struct WeakConnection: Sendable {
        weak var connection: RedisConnection?
    }

    /// The settings this client was made with.
    public let configuration: Configuration
    private let logger: Logger
    private let pool = Mutex(Pool())

    /// Creates a client; no connection is made until the first command.
    ///
    /// - Parameters:
    ///   - configuration: The server URL, timeouts and pool size.
    ///   - logger: Where connection events are logged.
    public init(configuration: Configuration, logger: Logger = Logger(label: "conveyor.redis")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Creates a client for a URL with default timeouts and pool size.
    ///
    /// - Parameters:
    ///   - url: A `redis://` or `unix://` URL.
    ///   - logger: Where connection events are logged.
    /// - Throws: ``RedisClientError`` with code ``RedisClientError/Code/invalidURL`` for a bad URL.
    public convenience init(url: String, logger: Logger = Logger(label: "conveyor.redis")) throws {
        self.init(configuration: Configuration(url: try RedisURL(url)), logger: logger)
    }

    deinit {
        shutdown()
    }

    // MARK: - Commands

    /// Sends one command on a pooled connection.
    ///
    /// - Parameter command: The command.
    /// - Returns: The reply; error replies are values.
    /// - Throws: ``RedisClientError`` on a transport failure or after ``shutdown()``.
    public func send(_ command: RedisCommand) async throws -> RedisReply {
        try await withConnection { try await $0.send(command) }
    }

    /// Sends one command, given as a name and arguments, on a pooled connection.
    ///
    /// - Parameters:
    ///   - name: The command name.
    ///   - arguments: Strings, bytes or numbers.
    /// - Returns: The reply.
    /// - Throws: ``RedisClientError`` on a transport failure.
    public func send(_ name: String, _ arguments: any RedisArgumentConvertible...) async throws -> RedisReply {
        let command = RedisCommand(name, arguments)
        return try await withConnection { try await $0.send(command) }
    }

    /// Sends many commands in one round trip on one pooled connection.
    ///
    /// - Parameter commands: The commands.
    /// - Returns: Their replies, in order.
    /// - Throws: ``RedisClientError`` on a transport failure.
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RedisReply] {
        try await withConnection { try await $0.pipeline(commands) }
    }

    /// Runs `body` with a connection borrowed from the pool, for several commands that must share a connection
    /// (for example `WATCH`/`MULTI`/`EXEC`).
    ///
    /// - Parameter body: Work with the connection; do not keep it after `body` returns.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws, or ``RedisClientError`` after ``shutdown()``.
    public func withConnection<Result: Sendable>(
        _ body: (RedisConnection) async throws -> Result
    ) async throws -> Result {
        if let pinned = Self.pinned, pinned.client == ObjectIdentifier(self) {
            return try await body(pinned.connection)
        }
        let connection = try await lease()
        defer { giveBack(connection) }
        return try await body(connection)
    }

    /// Runs `body` with one pooled connection reserved for it and its thread as the task's executor: every command
    /// this client sends from `body` (directly, or through code such as a `JobQueue` built on this client) uses
    /// that connection and runs inline on its thread, with no thread hop and no pool lookup.
    ///
    /// For tight sequential loops: a worker's claim loop, a bulk import, a benchmark.
    ///
    /// - Important: Commands from `body` run one at a time on one connection, and `body` itself runs on that
    ///   connection's thread: keep CPU-heavy work out of it.
    /// - Parameter body: The work.
    /// - Returns: What `body` returns.
    /// - Throws: What `body` throws, or ``RedisClientError`` after ``shutdown()``.
    public func withPinnedConnection<Result: Sendable>(_ body: () async throws -> Result) async throws -> Result {
        try await withConnection { connection in
            try await connection.withPinnedTask {
                try await Self.$pinned.withValue(Pinned(client: ObjectIdentifier(self), connection: connection)) {
                    try await body()
                }
            }
        }
    }

    private struct Pinned: Sendable {
        var client: ObjectIdentifier
        var connection: RedisConnection
    }

    @TaskLocal private static var pinned: Pinned?

    /// Opens a connection outside the pool, for blocking commands; ``shutdown()`` closes it too.
    ///
    /// - Returns: A new connection with this client's configuration.
    public func makeDedicatedConnection() -> RedisConnection {
        let connection = RedisConnection(configuration: configuration)
        let isShutDown = pool.withLock { pool in
            pool.dedicated = pool.dedicated.filter { $0.value.connection != nil }
            pool.dedicated[ObjectIdentifier(connection)] = WeakConnection(connection: connection)
            return pool.isShutDown
        }
        if isShutDown { connection.close() }
        return connection
    }

    /// Closes every connection, interrupting blocked calls; later calls fail with ``RedisClientError/Code/closed``.
    public func shutdown() {
        let (connections, waiters) = pool.withLock { pool in
            pool.isShutDown = true
            let connections = pool.idle + pool.dedicated.values.compactMap(\.connection)
            let waiters = pool.waiters
            pool.idle = []
            pool.dedicated = [:]
            pool.waiters = []
            return (connections, waiters)
        }
        for connection in connections { connection.close() }
        for waiter in waiters { waiter.resume(throwing: shutDownError) }
    }

    // MARK: - The pool

    private var shutDownError: RedisClientError {
        RedisClientError(.closed, "the Redis client for \(configuration.url) was shut down")
    }

    private func lease() async throws -> RedisConnection {
        enum Lease {
            case ready(RedisConnection)
            case open
            case wait
            case shutDown
        }
        let decision: Lease = pool.withLock { pool in
            if pool.isShutDown { return .shutDown }
            if let connection = pool.idle.popLast() { return .ready(connection) }
            if pool.opened < configuration.maximumConnections {
                pool.opened += 1
                return .open
            }
            return .wait
        }
        switch decision {
        case .ready(let connection):
            return connection
        case .open:
            logger.trace("opening a pooled Redis connection", metadata: ["conveyor.redis": "\(configuration.url)"])
            return RedisConnection(configuration: configuration)
        case .shutDown:
            throw shutDownError
        case .wait:
            return try await withUnsafeThrowingContinuation { continuation in
                let ready: RedisConnection?? = pool.withLock { pool in
                    if pool.isShutDown { return .some(nil) }
                    if let connection = pool.idle.popLast() { return .some(connection) }
                    pool.waiters.append(continuation)
                    return .none
                }
                switch ready {
                case .some(.some(let connection)): continuation.resume(returning: connection)
                case .some(.none): continuation.resume(throwing: shutDownError)
                case .none: break
                }
            }
        }
    }

    private func giveBack(_ connection: RedisConnection) {
        let waiter: UnsafeContinuation<RedisConnection, any Error>?? = pool.withLock { pool in
            if pool.isShutDown { return .some(nil) }
            if !pool.waiters.isEmpty { return .some(pool.waiters.removeFirst()) }
            pool.idle.append(connection)
            return .none
        }
        switch waiter {
        case .some(.some(let continuation)): continuation.resume(returning: connection)
        case .some(.none): connection.close()
        case .none: break
        }
    }
}
