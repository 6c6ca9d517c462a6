import Foundation

extension RedisURL {
    /// Where to start looking for a Redis Cluster: any of its nodes answers `CLUSTER SLOTS`, which names the rest.
    public struct Cluster: Sendable, Hashable {
        /// The nodes to ask for the slot map, in order; at least one. Primaries or replicas, any will do.
        public var seeds: [Address]

        /// Creates a cluster endpoint.
        ///
        /// - Parameter seeds: Nodes to ask for the slot map first; at least one.
        public init(seeds: [Address]) {
            self.seeds = seeds
        }
    }

    /// Parses `redis+cluster://[[user]:password@]host[:port][,host[:port]…][/][?query]` (port 6379 by default); a
    /// cluster has only database 0, so a database other than 0 is refused.
    static func parseCluster(_ original: String, _ string: String, tls: Bool) throws(RedisClientError) -> RedisURL {
        var rest = Substring(string.dropFirst((tls ? "rediss+cluster://" : "redis+cluster://").count))
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var authority = rest
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            let path = rest[rest.index(after: slash)...]
            guard path.isEmpty || path == "0" else {
                throw invalid(
                    original,
                    "a Redis Cluster has only database 0, so the path '/\(path)' cannot be served (drop it, or use "
                        + "another namespace to keep applications apart)"
                )
            }
        }
        var (username, password) = splitCredentials(&authority)
        guard !authority.isEmpty else { throw invalid(original, "it names no cluster node") }
        var seeds: [Address] = []
        for hostPort in authority.split(separator: ",", omittingEmptySubsequences: false) {
            seeds.append(try parseAddress(original, hostPort, what: "cluster node", defaultPort: 6379))
        }
        var settings = TLS()
        for item in queryItems(query) {
            let (key, value) = (item.name, item.value ?? "")
            if try settings.apply(item, tls: tls, original) { continue }
            switch key {
            case "password": password = value
            case "user", "username": username = value
            case "db":
                guard value == "0" else {
                    throw invalid(original, "a Redis Cluster has only database 0, so db=\(value) cannot be served")
                }
            default:
                throw invalid(
                    original,
                    "the query item '\(key)' is not known (user, password"
                        + (tls ? ", ca_file, cert_file, key_file, sni, insecure" : "") + " are)"
                )
            }
        }
        if let username, password == nil {
            throw invalid(original, "the user '\(username)' has no password (write redis+cluster://user:password@…)")
        }
        if tls { try settings.validate(original) }
        return RedisURL(
            endpoint: .cluster(Cluster(seeds: seeds)),
            username: username,
            password: password,
            tls: tls ? settings : nil
        )
    }

    /// The URL of one node of this URL's cluster (or server): same credentials and TLS settings, database 0.
    func node(_ address: Address) -> RedisURL {
        RedisURL(
            endpoint: .tcp(host: address.host, port: address.port),
            username: username,
            password: password,
            tls: tls
        )
    }
}
