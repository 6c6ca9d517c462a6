import Foundation
public import RedisClient

/// A private Redis master group on loopback: one primary, its replicas and the Sentinels that watch them, each a
/// ``LocalRedisServer`` on a free port. For tests, `conveyor dev --sentinel` and trying failovers by hand.
public final class LocalSentinelGroup: Sendable {
    /// How to start the group.
    public struct Options: Sendable {
        /// The master group's name, as in `sentinel monitor <name>`.
        public var masterName: String
        /// How many replicas to start.
        public var replicas: Int
        /// How many Sentinels to start; the quorum is a majority of them.
        public var sentinels: Int
        /// How long a server must be unreachable before the Sentinels hold it down (`down-after-milliseconds`).
        public var downAfter: Duration
        /// Sentinel's `failover-timeout`.
        public var failoverTimeout: Duration
        /// Extra options for the primary and the replicas (not the Sentinels).
        public var serverArguments: [String]
        /// Every server and Sentinel listens with TLS only (and replicates and monitors over TLS); the group's
        /// ``LocalSentinelGroup/url`` is then a `rediss+sentinel://` URL. `nil` for plain TCP.
        public var tls: LocalRedisServer.TLSOptions?

        /// Creates options.
        ///
        /// - Parameters:
        ///   - masterName: The group's name (`conveyor` by default).
        ///   - replicas: Replicas to start (2 by default).
        ///   - sentinels: Sentinels to start (3 by default).
        ///   - downAfter: Down detection time (1 s by default).
        ///   - failoverTimeout: Sentinel's failover timeout (5 s by default).
        ///   - serverArguments: Extra `redis-server` options for the data servers.
        ///   - tls: TLS for every server and Sentinel, or `nil`.
        public init(
            masterName: String = "conveyor",
            replicas: Int = 2,
            sentinels: Int = 3,
            downAfter: Duration = .seconds(1),
            failoverTimeout: Duration = .seconds(5),
            serverArguments: [String] = [],
            tls: LocalRedisServer.TLSOptions? = nil
        ) {
            self.tls = tls
            self.masterName = masterName
            self.replicas = replicas
            self.sentinels = sentinels
            self.downAfter = downAfter
            self.failoverTimeout = failoverTimeout
            self.serverArguments = serverArguments
        }
    }

    /// The options the group was started with.
    public let options: Options
    /// The data servers: the first primary at start, then its replicas. Which is primary now, ``primary()`` tells.
    public let servers: [LocalRedisServer]
    /// The Sentinels.
    public let sentinels: [LocalRedisServer]

    private init(options: Options, servers: [LocalRedisServer], sentinels: [LocalRedisServer]) {
        self.options = options
        self.servers = servers
        self.sentinels = sentinels
    }

    /// The `redis+sentinel://` URL of the group, naming every Sentinel.
    public var url: RedisURL {
        RedisURL(
            endpoint: .sentinel(
                .init(
                    addresses: sentinels.map { .init(host: "127.0.0.1", port: $0.port) },
                    masterName: options.masterName
                )
            ),
            tls: options.tls?.clientSettings
        )
    }

    /// Starts the primary, then the replicas, then the Sentinels, and waits until every Sentinel sees every replica
    /// and the other Sentinels (a failover needs both).
    ///
    /// - Parameter options: The group's shape and timings.
    /// - Returns: The running group; ``stop()`` it when done.
    /// - Throws: ``LocalRedisServerError`` when a server does not start or the group does not form in 30 s.
    public static func start(_ options: Options = Options()) async throws -> LocalSentinelGroup {
        var servers: [LocalRedisServer] = []
        var sentinels: [LocalRedisServer] = []
        // A replica syncs at once, not after the 5 s Redis waits by default for more replicas to share the transfer.
        // Replicas and Sentinels are TLS clients too: they show the client certificate (the server's may be for
        // server use only).
        var overTLS: [String] = []
        if let tls = options.tls {
            overTLS = ["--tls-replication", "yes"]
            if let certificate = tls.clientCertificateFile, let key = tls.clientKeyFile {
                overTLS += ["--tls-client-cert-file", certificate, "--tls-client-key-file", key]
            }
        }
        let arguments = ["--repl-diskless-sync-delay", "0"] + overTLS + options.serverArguments
        do {
            let primary = try await LocalRedisServer.start(.init(arguments: arguments, tls: options.tls))
            servers.append(primary)
            for _ in 0..<options.replicas {
                servers.append(
                    try await LocalRedisServer.start(
                        .init(
                            arguments: arguments + ["--replicaof", "127.0.0.1", String(primary.port)],
                            tls: options.tls
                        )
                    )
                )
            }
            let quorum = options.sentinels / 2 + 1
            let configuration = """
                sentinel monitor \(options.masterName) 127.0.0.1 \(primary.port) \(quorum)
                sentinel down-after-milliseconds \(options.masterName) \(Self.milliseconds(options.downAfter))
                sentinel failover-timeout \(options.masterName) \(Self.milliseconds(options.failoverTimeout))
                sentinel parallel-syncs \(options.masterName) 1

                """
            for _ in 0..<options.sentinels {
                sentinels.append(
                    try await LocalRedisServer.start(
                        .init(arguments: ["--sentinel"] + overTLS, configurationFile: configuration, tls: options.tls)
                    )
                )
            }
            let group = LocalSentinelGroup(options: options, servers: servers, sentinels: sentinels)
            try await group.waitUntilFormed()
            return group
        } catch {
            for server in sentinels + servers { await server.stop() }
            throw error
        }
    }

    /// Stops every Sentinel, then every data server.
    public func stop() async {
        for server in sentinels + servers { await server.stop() }
    }

    /// The data server the Sentinels name as the primary now, or `nil` when they name none of this group's.
    ///
    /// - Throws: ``RedisClientError`` when no Sentinel answers.
    public func primary() async throws -> LocalRedisServer? {
        for sentinel in sentinels {
            let connection = Self.connection(to: sentinel)
            defer { connection.close() }
            guard let reply = try? await connection.send("SENTINEL", "get-master-addr-by-name", options.masterName),
                let port = reply.array?.last?.string.flatMap({ Int($0) })
            else { continue }
            return servers.first { $0.port == port }
        }
        throw RedisClientError(.connectionFailed, "no Sentinel of the group answered")
    }

    private func waitUntilFormed() async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(30)
        var seen: [String] = []
        while clock.now < deadline {
            var formed = true
            seen = []
            for sentinel in sentinels {
                let connection = Self.connection(to: sentinel)
                defer { connection.close() }
                let fields = try? await connection.send("SENTINEL", "MASTER", options.masterName).array
                let values = Dictionary(
                    stride(from: 0, to: (fields?.count ?? 0) - 1, by: 2).compactMap { index in
                        fields.flatMap { fields in fields[index].string.map { ($0, fields[index + 1].string ?? "") } }
                    },
                    uniquingKeysWith: { first, _ in first }
                )
                seen.append(
                    "\(sentinel.port): \(values["num-slaves"] ?? "?") replicas, "
                        + "\(values["num-other-sentinels"] ?? "?") other Sentinels"
                )
                if Int(values["num-slaves"] ?? "") != options.replicas
                    || Int(values["num-other-sentinels"] ?? "") != options.sentinels - 1
                {
                    formed = false
                }
            }
            if formed { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LocalRedisServerError(
            message: "the Sentinel group '\(options.masterName)' did not form within 30 s (replicas and Sentinels "
                + "did not all see each other: \(seen.joined(separator: "; "))); log of the first Sentinel:\n"
                + (sentinels.first?.logTail() ?? "")
        )
    }

    private static func connection(to server: LocalRedisServer) -> RedisConnection {
        RedisConnection(
            configuration: .init(url: server.url, connectTimeout: .milliseconds(500), commandTimeout: .seconds(2))
        )
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
