internal import CHiredis
import Foundation

/// One hiredis context and everything done with it: connect, handshake, send, read, reconnect.
///
/// A session is confined to the thread of the ``RedisConnection`` that owns it: it is created on that thread and
/// never leaves it, so it needs no lock. Every hiredis call is blocking and happens here, never on Swift's
/// cooperative thread pool.
final class HiredisSession {
    private let configuration: RedisClient.Configuration
    /// Tells the owner which socket is live (or -1), so another thread can `shutdown(2)` it to interrupt a call.
    private let publishSocket: (Int32) -> Void
    private var context: UnsafeMutablePointer<redisContext>?
    private var hasEverConnected = false
    private var socketTimeout: Duration?
    /// Commands left to send without spinning for their reply, after a spin that did not pay off.
    private var spinSkips = 0
    /// Spins in a row whose reply did not come within the window.
    private var spinMisses = 0
    /// For a `redis+sentinel://` URL: asks the Sentinels for the primary on every connect.
    private var resolver: SentinelResolver?
    /// The primary the Sentinels named last, for messages.
    private var primaryAddress: RedisURL.Sentinel.Address?
    /// Tells when the Sentinels announced a new primary (`+switch-master`): the connection then leaves the old one.
    private let watch: SentinelWatch?
    /// The watch's count of switches when this connection was made.
    private var switchesSeen = 0

    /// Whether a reconnect is tried again, with backoff, for up to the connect timeout. A cluster session turns it
    /// off for its nodes: a refused connect there means a dead primary, and the slot map, not this node, says where
    /// to go next.
    private let retriesConnects: Bool

    init(
        configuration: RedisClient.Configuration,
        retriesConnects: Bool = true,
        publishSocket: @escaping (Int32) -> Void
    ) {
        self.configuration = configuration
        self.retriesConnects = retriesConnects
        self.publishSocket = publishSocket
        if case .sentinel(let sentinel) = configuration.url.endpoint {
            resolver = SentinelResolver(sentinel, url: configuration.url, connectTimeout: configuration.connectTimeout)
            watch = SentinelWatch.shared(
                for: sentinel,
                url: configuration.url,
                connectTimeout: configuration.connectTimeout
            )
        } else {
            watch = nil
        }
    }

    deinit {
        disconnect()
    }

    private var url: RedisURL { configuration.url }

    /// Frees the context; the next call connects again.
    func disconnect() {
        guard let context else { return }
        publishSocket(-1)
        redisFree(context)
        self.context = nil
    }

    /// The socket of the live connection, or -1.
    var socket: Int32 { context?.pointee.fd ?? -1 }

    /// Sends commands in one write and reads their replies, in order.
    ///
    /// - Parameters:
    ///   - commands: One or more commands.
    ///   - blockingFor: For a blocking command, the longest the server may hold it (0: forever); the socket timeout
    ///     becomes this plus the command timeout for this call.
    ///   - retriesRefusals: Whether replies that refuse the command for now (``FailoverCondition``) are waited
    ///     through here; a cluster session handles them itself, per slot.
    ///   - wasInterrupted: Tells whether a failure was caused by ``RedisConnection/interrupt()``.
    func execute(
        _ commands: [RedisCommand],
        blockingFor: Duration?,
        retriesRefusals: Bool = true,
        wasInterrupted: () -> Bool
    ) throws(RedisClientError) -> [RedisReply] {
        let clock = ContinuousClock()
        var deadline: ContinuousClock.Instant?
        var delay = Duration.milliseconds(10)
        while true {
            let context = try connectedContext()
            let replies = try roundTrip(context, commands, blockingFor: blockingFor, wasInterrupted: wasInterrupted)
            guard retriesRefusals, let refusal = replies.lazy.compactMap(FailoverCondition.init(reply:)).first else {
                return replies
            }
            // A server that is a replica now (READONLY, UNBLOCKED), or lost its primary (MASTERDOWN), is left: the
            // next connect asks the Sentinels again, or finds a moved address behind the same name.
            if refusal.leavesTheServer { disconnect() }
            // A refused command did not run, so sending it again is safe for any command. A pipeline of which
            // some commands ran is not sent again: those would run twice.
            let allRefused = replies.allSatisfy { FailoverCondition(reply: $0) != nil }
            let now = clock.now
            if deadline == nil { deadline = now + configuration.failoverTimeout }
            guard allRefused, let deadline, now < deadline, !wasInterrupted() else {
                throw RedisClientError(
                    .unavailable,
                    "Redis at \(serverName) \(refusal.meaning)"
                        + (allRefused ? " for \(configuration.failoverTimeout)" : "")
                        + ": \(refusal.message); \(refusal.advice)"
                )
            }
            Self.sleep(min(delay, deadline - now))
            delay = min(delay * 2, .milliseconds(500))
        }
    }

    /// The server a message names: the URL, and for Sentinel the primary it named last.
    private var serverName: String {
        guard let primaryAddress else { return "\(url)" }
        return "\(url) (primary \(primaryAddress))"
    }

    /// Sends and reads on `context` as it is: never connects or reconnects, so the handshake can use it without
    /// recursing (a reconnect nested in the handshake once freed the context the outer call then returned).
    private func roundTrip(
        _ context: UnsafeMutablePointer<redisContext>,
        _ commands: [RedisCommand],
        blockingFor: Duration?,
        wasInterrupted: () -> Bool
    ) throws(RedisClientError) -> [RedisReply] {
        let replyCount = commands.count
        let wanted: Duration =
            if let blockingFor {
                blockingFor == .zero ? .zero : blockingFor + configuration.commandTimeout
            } else {
                configuration.commandTimeout
            }
        if socketTimeout != wanted {
            redisSetTimeout(context, Self.timeval(wanted))
            socketTimeout = wanted
        }
        for command in commands {
            let appended = command.encoded.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) { chars in
                    redisAppendFormattedCommand(context, chars.baseAddress, chars.count)
                }
            }
            guard appended == REDIS_OK else {
                throw failure(context, doing: "sending a command", wasInterrupted: wasInterrupted)
            }
        }
        // Large pipelines take longer than the spin window anyway: only small requests spin.
        if configuration.replySpin > .zero && blockingFor == nil && replyCount <= 32 {
            if spinSkips > 0 {
                spinSkips -= 1
            } else {
                try awaitReplyBySpinning(context, wasInterrupted: wasInterrupted)
            }
        }
        var replies: [RedisReply] = []
        replies.reserveCapacity(replyCount)
        for _ in 0..<replyCount {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                throw failure(context, doing: "reading a reply", wasInterrupted: wasInterrupted)
            }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            defer { freeReplyObject(raw) }
            guard let converted = Self.convert(reply) else {
                disconnect()
                throw RedisClientError(
                    .protocolError,
                    "Redis at \(url) sent a reply of unknown type \(reply.pointee.type); "
                        + "the connection was reset (is this a Redis-compatible server speaking RESP2?)"
                )
            }
            replies.append(converted)
        }
        return replies
    }

    /// Writes the queued commands, then polls the socket without sleeping for up to
    /// ``RedisClient/Configuration/replySpin`` before the blocking read: a thread that sleeps for each reply pays a
    /// wake-up (on a VM, a vCPU wake-up), often more than the round trip itself. When the reply did not come within
    /// the window (a distant or busy server), three times in a row (a distant or busy server), the next 64 commands do not spin, so the CPU cost stays
    /// bounded.
    private func awaitReplyBySpinning(
        _ context: UnsafeMutablePointer<redisContext>,
        wasInterrupted: () -> Bool
    ) throws(RedisClientError) {
        var done: Int32 = 0
        while done == 0 {
            guard redisBufferWrite(context, &done) == REDIS_OK else {
                throw failure(context, doing: "sending a command", wasInterrupted: wasInterrupted)
            }
        }
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.replySpin
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        while poll(&descriptor, 1, 0) == 0 {
            if clock.now >= deadline {
                spinMisses += 1
                if spinMisses >= 3 {
                    spinSkips = 64
                    spinMisses = 0
                }
                return
            }
        }
        spinMisses = 0
    }

    // MARK: - Connecting

    private func connectedContext() throws(RedisClientError) -> UnsafeMutablePointer<redisContext> {
        if let watch, watch.switchCount != switchesSeen {
            disconnect()
        }
        if let context {
            // Checked before every command (one poll, about a microsecond): skipping it for a connection used in
            // the last millisecond sent a command into a socket the server had just closed (CLIENT KILL).
            if !Self.isStale(context) { return context }
            disconnect()
        }
        guard hasEverConnected, retriesConnects else {
            let context = try connectOnce()
            hasEverConnected = true
            return context
        }
        // Reconnect with backoff, bounded by the connect timeout, so a dead server fails the call in bounded time.
        // Behind Sentinel a failover takes longer than a connect: the call waits up to the failover timeout.
        let clock = ContinuousClock()
        let deadline = clock.now + (resolver == nil ? configuration.connectTimeout : configuration.failoverTimeout)
        var delay = Duration.milliseconds(10)
        while true {
            do {
                return try connectOnce()
            } catch {
                guard error.code == .connectionFailed, clock.now + delay < deadline else { throw error }
                Self.sleep(delay)
                delay = min(delay * 2, .milliseconds(500))
            }
        }
    }

    /// A connection whose socket is readable while no reply is expected was closed by the server (or it pushed
    /// something unexpected): reconnect before sending, instead of failing the next command.
    private static func isStale(_ context: UnsafeMutablePointer<redisContext>) -> Bool {
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) != 0
    }

    private func connectOnce() throws(RedisClientError) -> UnsafeMutablePointer<redisContext> {
        let timeout = Self.timeval(configuration.connectTimeout)
        let made: UnsafeMutablePointer<redisContext>?
        switch url.endpoint {
        case .tcp(let host, let port):
            made = try Self.connect(host: host, port: port, url: url, timeout: configuration.connectTimeout)
        case .unix(let path):
            made = redisConnectUnixWithTimeout(path, timeout)
        case .cluster:
            preconditionFailure("a cluster URL reaches its nodes through a ClusterSession")
        case .sentinel:
            guard var resolver else { preconditionFailure("a Sentinel URL without its resolver") }
            // Read before asking: a switch announced while connecting makes the next call ask again.
            switchesSeen = watch?.switchCount ?? 0
            let primary = try resolver.primary()
            self.resolver = resolver
            primaryAddress = primary
            made = try Self.connect(
                host: primary.host,
                port: primary.port,
                url: url,
                timeout: configuration.connectTimeout
            )
        }
        guard let made else {
            throw RedisClientError(.connectionFailed, "cannot connect to Redis at \(serverName): out of memory")
        }
        if made.pointee.err != 0 {
            let reason = Self.errorText(made)
            redisFree(made)
            throw RedisClientError(
                .connectionFailed,
                "cannot connect to Redis at \(serverName): \(reason); \(Self.advice(reason))"
            )
        }
        context = made
        socketTimeout = nil
        publishSocket(made.pointee.fd)
        try handshake(made)
        return made
    }

    /// A hiredis context on a TCP connection to `host`, through a TLS tunnel when the URL asks for TLS; its `err` is
    /// set when a plain connect failed (a TLS failure throws, with the reason).
    static func connect(
        host: String,
        port: Int,
        url: RedisURL,
        timeout: Duration
    ) throws(RedisClientError) -> UnsafeMutablePointer<redisContext>? {
        guard let tls = url.tls else { return redisConnectWithTimeout(host, Int32(port), Self.timeval(timeout)) }
        return try TLSTunnel.connect(host: host, port: port, tls: tls, url: url, timeout: timeout)
    }

    private static func advice(_ reason: String) -> String {
        if reason.localizedCaseInsensitiveContains("refused") || reason.localizedCaseInsensitiveContains("no such file")
        {
            return "check that redis-server is running and listening there"
        }
        if reason.localizedCaseInsensitiveContains("timed out")
            || reason.localizedCaseInsensitiveContains("temporarily")
        {
            return "the server did not accept the connection in time; check the address, firewalls and server load"
        }
        return "check the host, port and that the server is reachable"
    }

    /// AUTH, SELECT and CLIENT SETNAME, in one round trip.
    private func handshake(_ context: UnsafeMutablePointer<redisContext>) throws(RedisClientError) {
        var commands: [(RedisCommand, String)] = []
        if let password = url.password {
            let command =
                if let username = url.username {
                    RedisCommand("AUTH", username, password)
                } else {
                    RedisCommand("AUTH", password)
                }
            commands.append((command, "check the user and password in the URL"))
        }
        if url.database != 0 {
            commands.append((RedisCommand("SELECT", url.database), "check the database number in the URL"))
        }
        if let name = configuration.clientName {
            commands.append((RedisCommand("CLIENT", "SETNAME", name), "use a client name without spaces"))
        }
        // Sentinel's answer may be out of date (a failover under way, a Sentinel cut off from the others): the
        // server itself says whether it is the primary.
        if resolver != nil {
            commands.append((RedisCommand("ROLE"), "check that the master group's servers run Redis 2.8.12 or later"))
        }
        // A server at maxclients accepts, writes an error and closes: a PING finds that out here, as a failed
        // connect, instead of handing the error to the first caller as its command's reply.
        if commands.isEmpty {
            commands.append((RedisCommand("PING"), "check that the server speaks the Redis protocol"))
        }
        let replies: [RedisReply]
        do {
            replies = try roundTrip(context, commands.map(\.0), blockingFor: nil, wasInterrupted: { false })
        } catch {
            disconnect()
            throw RedisClientError(
                error.code == .timeout ? .timeout : .connectionFailed,
                "cannot set up the connection to Redis at \(serverName): \(error.message)"
            )
        }
        for ((command, advice), reply) in zip(commands, replies) {
            // The PING only finds out whether the server has room for us; its other errors (NOAUTH) are the
            // caller's replies to read.
            if command.name == "PING", reply.errorMessage?.hasPrefix("ERR max number of clients") != true { continue }
            if command.name == "ROLE", let role = reply.array?.first?.string, role != "master" {
                disconnect()
                throw RedisClientError(
                    .connectionFailed,
                    "the Sentinels named \(serverName) as the primary, but it is a \(role) (a failover is under way); "
                        + "retrying finds the new primary"
                )
            }
            if let message = reply.errorMessage {
                disconnect()
                if message.hasPrefix("ERR max number of clients") {
                    throw RedisClientError(
                        .connectionFailed,
                        "Redis at \(url) has no room for another connection (it is at its maxclients limit): "
                            + "close idle clients (CLIENT LIST shows them) or raise maxclients in redis.conf"
                    )
                }
                if message.hasPrefix("NOAUTH") {
                    throw RedisClientError(
                        .connectionFailed,
                        "Redis at \(url) needs a password: put it in the URL, redis://:PASSWORD@host:port "
                            + "(redis://USER:PASSWORD@host:port for an ACL user)"
                    )
                }
                throw RedisClientError(
                    .connectionFailed,
                    "Redis at \(url) refused \(command.name): \(message); \(advice)"
                )
            }
        }
    }

    // MARK: - Errors and conversions

    private func failure(
        _ context: UnsafeMutablePointer<redisContext>,
        doing what: String,
        wasInterrupted: () -> Bool
    ) -> RedisClientError {
        let kind = context.pointee.err
        let reason = Self.errorText(context)
        disconnect()
        if wasInterrupted() {
            return RedisClientError(
                .closed,
                "the call to Redis at \(url) was interrupted (connection closed or task cancelled)"
            )
        }
        switch kind {
        case REDIS_ERR_IO where reason.contains("temporarily unavailable") || reason.contains("timed out"):
            return RedisClientError(
                .timeout,
                "Redis at \(url) did not answer within \(configuration.commandTimeout) while \(what); "
                    + "the server may be overloaded or blocked (check SLOWLOG), or raise the command timeout"
            )
        case REDIS_ERR_EOF, REDIS_ERR_IO:
            return RedisClientError(
                .connectionLost,
                "lost the connection to Redis at \(url) while \(what): \(reason); it reconnects on the next call"
            )
        case REDIS_ERR_PROTOCOL:
            return RedisClientError(.protocolError, "Redis at \(url) sent a malformed reply: \(reason)")
        default:
            return RedisClientError(.connectionLost, "error talking to Redis at \(url) while \(what): \(reason)")
        }
    }

    static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            let text = String(decoding: bytes, as: UTF8.self)
            return text.isEmpty ? "unknown error" : text
        }
    }

    /// Blocks the connection's thread (never a cooperative one) for `duration`.
    static func sleep(_ duration: Duration) {
        Thread.sleep(
            forTimeInterval: Double(duration.components.attoseconds) / 1e18 + Double(duration.components.seconds)
        )
    }

    static func timeval(_ duration: Duration) -> timeval {
        let (seconds, attoseconds) = duration.components
        return CHiredis.timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
    }

    /// Copies a hiredis reply into Swift; `nil` for a reply type this client does not know.
    static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply? {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STATUS:
            return .status(string(value.str, value.len))
        case REDIS_REPLY_ERROR:
            return .error(string(value.str, value.len))
        case REDIS_REPLY_INTEGER:
            return .integer(Int(value.integer))
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_STRING:
            guard let pointer = value.str, value.len > 0 else { return .bulkString([]) }
            return .bulkString(
                Array(UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: Int(value.len)))
            )
        case REDIS_REPLY_ARRAY:
            var elements: [RedisReply] = []
            elements.reserveCapacity(value.elements)
            for index in 0..<value.elements {
                guard let element = value.element[index], let converted = convert(element) else { return nil }
                elements.append(converted)
            }
            return .array(elements)
        default:
            return nil
        }
    }

    private static func string(_ pointer: UnsafeMutablePointer<CChar>?, _ length: Int) -> String {
        guard let pointer, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: length), as: UTF8.self)
    }
}
