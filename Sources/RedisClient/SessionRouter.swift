/// The session of one connection: one server (``HiredisSession``), or a Redis Cluster (``ClusterSession``) once the
/// URL is known to reach one (a `redis+cluster://` URL, or a `redis://` server that answered `MOVED`).
final class SessionRouter {
    private let configuration: RedisClient.Configuration
    private let publishSocket: (Int32) -> Void
    private let topology: ClusterTopology?
    private var single: HiredisSession?
    private var cluster: ClusterSession?

    init(configuration: RedisClient.Configuration, publishSocket: @escaping (Int32) -> Void) {
        self.configuration = configuration
        self.publishSocket = publishSocket
        topology = configuration.topology
        if case .cluster = configuration.url.endpoint {
            single = nil
        } else {
            single = HiredisSession(configuration: configuration, publishSocket: publishSocket)
        }
    }

    func disconnect() {
        single?.disconnect()
        cluster?.disconnect()
    }

    func execute(
        _ commands: [RedisCommand],
        blockingFor: Duration?,
        wasInterrupted: () -> Bool
    ) throws(RedisClientError) -> [RedisReply] {
        if let topology, topology.isCluster || single == nil {
            return try clusterSession(topology).execute(
                commands,
                blockingFor: blockingFor,
                wasInterrupted: wasInterrupted
            )
        }
        guard let single else { preconditionFailure("a session without a server") }
        let replies = try single.execute(commands, blockingFor: blockingFor, wasInterrupted: wasInterrupted)
        guard let topology, let seed = topology.seeds.first, replies.contains(where: Self.isRedirect) else {
            return replies
        }
        // The server is a node of a cluster: from now on every connection of this URL routes by slot, and the
        // commands it redirected go where it said.
        topology.markCluster()
        return try clusterSession(topology).execute(
            commands,
            blockingFor: blockingFor,
            earlier: (seed, replies),
            wasInterrupted: wasInterrupted
        )
    }

    private func clusterSession(_ topology: ClusterTopology) -> ClusterSession {
        if let cluster { return cluster }
        let made = ClusterSession(
            configuration: configuration,
            topology: topology,
            adopting: single.flatMap { session in topology.seeds.first.map { ($0, session) } },
            publishSocket: publishSocket
        )
        single = nil
        cluster = made
        return made
    }

    private static func isRedirect(_ reply: RedisReply) -> Bool {
        guard case .error(let message) = reply else { return false }
        return message.hasPrefix("MOVED ") || message.hasPrefix("ASK ")
    }
}
