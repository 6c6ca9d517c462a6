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
        /// How long a call may wait for a pooled connection when all ``maximumConnections`` are busy before it fails
        /// with ``RedisClientError/Code/timeout``. Cancelling the waiting task ends the wait at once.
        public var poolTimeout: Duration
        /// How long a call keeps waiting, and reconnecting, while the server refuses it with `READONLY`,
        /// `MASTERDOWN`, `LOADING`, `BUSY` or `UNBLOCKED` (a failover, a restart, a long script) before it fails with
        /// ``RedisClientError/Code/unavailable``. Behind Sentinel it also bounds the reconnects after a lost
        /// connection. Such a refused command did not run, so it is sent again whatever it does.
        public var failoverTimeout: Duration
        /// Whether a `redis://` URL switches to routing by slot when its server turns out to be a node of a Redis
        /// Cluster (it answers `MOVED`). `false` talks to exactly that node, like `redis-cli` without `-c`: for
        /// tools that inspect or administer one node. A `redis+cluster://` URL always routes.
        public var followsClusterRedirects: Bool

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
        ///   - poolTimeout: The longest wait for a pooled connection (by default the connect timeout plus the
        ///     command timeout: as long as one call may take).
        ///   - failoverTimeout: How long a call waits through a failover or a loading server (30 s by default).
        ///   - followsClusterRedirects: Whether a `redis://` URL to a cluster node routes by slot (`true` by default).
        public init(
            url: RedisURL,
            connectTimeout: Duration = .seconds(2),
            commandTimeout: Duration = .seconds(5),
            maximumConnections: Int = 16,
            clientName: String? = nil,
            idleSpin: Duration = .microseconds(50),
            replySpin: Duration = .microseconds(100),
            poolTimeout: Duration? = nil,
            failoverTimeout: Duration = .seconds(30),
            followsClusterRedirects: Bool = true
        ) {
            self.url = url
            self.connectTimeout = connectTimeout
            self.commandTimeout = commandTimeout
            self.maximumConnections = max(1, maximumConnections)
            self.clientName = clientName
            self.idleSpin = max(.zero, idleSpin)
            self.replySpin = max(.zero, replySpin)
            self.poolTimeout = max(.zero, poolTimeout ?? connectTimeout + commandTimeout)
            self.failoverTimeout = max(.zero, failoverTimeout)
            self.followsClusterRedirects = followsClusterRedirects
        }

        /// The shared slot map this configuration routes with, or `nil` when it talks to one server.
        var topology: ClusterTopology? {
            if case .cluster = url.endpoint { return ClusterTopology.shared(for: url) }
            return followsClusterRedirects ? ClusterTopology.shared(for: url) : nil
        }
    }

    private struct Pool: ~Copyable {
        var idle: [RedisConnection] = []
        var opened = 0
        /// Callers waiting for a connection, first come first served; ids whose wait ended are skipped.
        var waitOrder: [UInt64] = []
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiterID: UInt64 = 1
        var dedicated: [ObjectIdentifier: WeakConnection] = [:]
        var isShutDown = false
    }

    /// A caller waiting for a connection: its wait starts before its continuation exists, and a connection, a
    /// cancellation, a timeout or a shutdown may come first.
    private enum Waiter {
        case starting
        case waiting(UnsafeContinuation<RedisConnection, any Error>)
        case given(RedisConnection)
        case failed(any Error)
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

    /// Sends many commands in one write on a pooled connection, the last of which may block on the server (`WAIT`
    /// after a write).
    ///
    /// - Parameters:
    ///   - commands: The commands to send.
    ///   - blockingFor: The longest the server may hold the reply.
    /// - Returns: One reply per command, in the same order.
    /// - Throws: ``RedisClientError`` on a transport failure or after ``shutdown()``.
    public func pipeline(_ commands: [RedisCommand], blockingFor: Duration) async throws -> [RedisReply] {
        try await withConnection { try await $0.pipeline(commands, blockingFor: blockingFor) }
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

    // MARK: - Redis Cluster

    /// Whether this client is known to reach a Redis Cluster: its URL is `redis+cluster://`, or the server of its
    /// `redis://` URL turned out to be a cluster node (it answered `MOVED`, or ``clusterPrimaries()`` found out).
    /// Commands are then routed to the primary that serves their key's slot.
    public var isCluster: Bool { configuration.topology?.isCluster ?? false }

    /// The primaries of the Redis Cluster this client reaches, from a fresh `CLUSTER SLOTS`; `nil` when it reaches a
    /// single server (a `redis://` server without cluster support, a Unix socket, Sentinel, or a `redis://` URL with
    /// ``Configuration/followsClusterRedirects`` off).
    ///
    /// For work that must reach every primary (`FUNCTION LOAD`, `INFO`): send it with
    /// ``RedisCommand/routed(toNode:)``. A `redis://` URL to a cluster node switches this client to routing by slot.
    ///
    /// - Returns: The primaries' addresses as the cluster announces them, or `nil`.
    /// - Throws: ``RedisClientError`` on a transport failure, or when a `redis+cluster://` server is no cluster node.
    public func clusterPrimaries() async throws -> [RedisURL.Address]? {
        guard let topology = configuration.topology else { return nil }
        let reply = try await send(RedisCommand("CLUSTER", "SLOTS"))
        guard let via = topology.seeds.first, reply.array != nil else {
            guard topology.isCluster else { return nil }
            throw RedisClientError(
                .connectionFailed,
                "the server at \(configuration.url) is not a Redis Cluster node (CLUSTER SLOTS answered "
                    + "\(reply.errorMessage ?? "no slot map")): use a redis:// URL for a single server"
            )
        }
        topology.update(slots: reply, via: via)
        topology.markCluster()
        return topology.primaries
    }

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
            var waiters: [UnsafeContinuation<RedisConnection, any Error>] = []
            for (id, waiter) in pool.waiters {
                switch waiter {
                case .waiting(let continuation): waiters.append(continuation)
                case .starting: pool.waiters[id] = .failed(shutDownError)
                case .given, .failed: break
                }
            }
            pool.waiters = pool.waiters.filter { if case .waiting = $0.value { false } else { true } }
            pool.waitOrder = []
            pool.idle = []
            pool.dedicated = [:]
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
            case wait(UInt64)
            case shutDown
        }
        let decision: Lease = pool.withLock { pool in
            if pool.isShutDown { return .shutDown }
            if let connection = pool.idle.popLast() { return .ready(connection) }
            if pool.opened < configuration.maximumConnections {
                pool.opened += 1
                return .open
            }
            let id = pool.nextWaiterID
            pool.nextWaiterID += 1
            pool.waiters[id] = .starting
            pool.waitOrder.append(id)
            return .wait(id)
        }
        switch decision {
        case .ready(let connection):
            return connection
        case .open:
            logger.trace("opening a pooled Redis connection", metadata: ["conveyor.redis": "\(configuration.url)"])
            return RedisConnection(configuration: configuration)
        case .shutDown:
            throw shutDownError
        case .wait(let id):
            return try await waitForConnection(id)
        }
    }

    /// Waits for a connection given back by another caller, until the pool timeout or the task's cancellation.
    private func waitForConnection(_ id: UInt64) async throws -> RedisConnection {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                // A cancelled sleep is the wait ending first (or the caller's cancellation, handled below).
                guard (try? await Task.sleep(for: configuration.poolTimeout)) != nil, !Task.isCancelled else { return }
                endWait(id, throwing: poolTimeoutError)
            }
            defer { group.cancelAll() }
            return try await withTaskCancellationHandler {
                try await withUnsafeThrowingContinuation { continuation in
                    let ready: Result<RedisConnection, any Error>? = pool.withLock { pool in
                        switch pool.waiters[id] {
                        case .given(let connection):
                            pool.waiters[id] = nil
                            return .success(connection)
                        case .failed(let error):
                            pool.waiters[id] = nil
                            return .failure(error)
                        case .starting, .waiting, nil:
                            pool.waiters[id] = .waiting(continuation)
                            return nil
                        }
                    }
                    if let ready { continuation.resume(with: ready) }
                }
            } onCancel: {
                endWait(id, throwing: CancellationError())
            }
        }
    }

    /// Ends a wait that is still going on with an error (a wait that already got a connection keeps it).
    private func endWait(_ id: UInt64, throwing error: any Error) {
        let continuation: UnsafeContinuation<RedisConnection, any Error>? = pool.withLock { pool in
            switch pool.waiters[id] {
            case .waiting(let continuation):
                pool.waiters[id] = nil
                return continuation
            case .starting:
                pool.waiters[id] = .failed(error)
                return nil
            case .given, .failed, nil:
                return nil
            }
        }
        continuation?.resume(throwing: error)
    }

    private var poolTimeoutError: RedisClientError {
        let size = configuration.maximumConnections
        return RedisClientError(
            .timeout,
            "no connection to Redis at \(configuration.url) became free within \(configuration.poolTimeout): all "
                + "\(size) connection\(size == 1 ? "" : "s") of the pool (maximumConnections) were busy; raise "
                + "maximumConnections or poolTimeout, or hold connections for less time (blocking commands belong on "
                + "makeDedicatedConnection())"
        )
    }

    private func giveBack(_ connection: RedisConnection) {
        let waiter: UnsafeContinuation<RedisConnection, any Error>?? = pool.withLock { pool in
            if pool.isShutDown { return .some(nil) }
            while !pool.waitOrder.isEmpty {
                let id = pool.waitOrder.removeFirst()
                switch pool.waiters[id] {
                case .waiting(let continuation):
                    pool.waiters[id] = nil
                    return .some(continuation)
                case .starting:
                    pool.waiters[id] = .given(connection)
                    return .none
                case .given, .failed, nil:
                    continue
                }
            }
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
