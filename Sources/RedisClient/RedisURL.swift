public import Foundation

/// Where a Redis server is and how to log in to it, parsed from a URL.
///
/// Accepted forms:
/// - `redis://[[user]:password@]host[:port][/db]` (port 6379 and database 0 by default; IPv6 hosts in brackets)
/// - `rediss://[[user]:password@]host[:port][/db][?ca_file=…&cert_file=…&key_file=…&sni=…&insecure=true]`: the same
///   over TLS (see ``TLS`` for the query items)
/// - `unix:///path/to/redis.sock[?db=N]` (`password`, `user` and `db` may also be given as query items)
/// - `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db]` (Sentinels on port 26379 by
///   default; the user and password are the primary's, `sentinel_user` and `sentinel_password` query items are the
///   Sentinels' own); `rediss+sentinel://…` reaches the Sentinels and the servers over TLS, with the same query
///   items as `rediss://`
///
/// ``description`` masks the password, so the value can be logged and shown in errors.
public struct RedisURL: Sendable, Hashable, CustomStringConvertible {
    /// How the server is reached.
    public enum Endpoint: Sendable, Hashable {
        /// A TCP host name or address and a port.
        case tcp(host: String, port: Int)
        /// A Unix domain socket path.
        case unix(path: String)
        /// The primary that Redis Sentinel names for a master group, found by asking the Sentinels in turn.
        case sentinel(Sentinel)
        /// A Redis Cluster, found from any of its nodes: every command goes to the primary that serves its key's slot.
        case cluster(Cluster)
    }

    /// A host name or address and a port: a Sentinel, or a node of a cluster.
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        /// The host name or address.
        public var host: String
        /// The port.
        public var port: Int

        /// Creates an address.
        ///
        /// - Parameters:
        ///   - host: The host name or address.
        ///   - port: The port.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// Where the Sentinels of a master group are and how to log in to them.
    public struct Sentinel: Sendable, Hashable {
        /// A Sentinel's host name or address and port (26379 unless the URL gave one).
        public typealias Address = RedisURL.Address

        /// The Sentinels to ask, in order; at least one.
        public var addresses: [Address]
        /// The name of the master group, as in `sentinel monitor <name> …`.
        public var masterName: String
        /// The ACL user to log in to the Sentinels as (`sentinel_user`), or `nil`.
        public var username: String?
        /// The Sentinels' own password (`sentinel_password`, Sentinel's `requirepass`), or `nil`.
        public var password: String?

        /// Creates a Sentinel endpoint.
        ///
        /// - Parameters:
        ///   - addresses: The Sentinels, at least one.
        ///   - masterName: The master group's name.
        ///   - username: The Sentinels' ACL user, or `nil`.
        ///   - password: The Sentinels' password, or `nil`.
        public init(addresses: [Address], masterName: String, username: String? = nil, password: String? = nil) {
            self.addresses = addresses
            self.masterName = masterName
            self.username = username
            self.password = password
        }
    }

    /// The default URL when none is given and `REDIS_URL` is not set.
    public static let defaultURL = "redis://127.0.0.1:6379"

    /// How the server is reached.
    public var endpoint: Endpoint
    /// The ACL user to log in as; `nil` logs in as the `default` user (`AUTH password`).
    public var username: String?
    /// The password for `AUTH`; `nil` sends no `AUTH`.
    public var password: String?
    /// The database number selected after connecting.
    public var database: Int
    /// How to secure the connection with TLS (a `rediss://` URL); `nil` for a plain connection.
    public var tls: TLS?

    /// Creates a URL from its parts.
    ///
    /// - Parameters:
    ///   - endpoint: How the server is reached.
    ///   - username: The ACL user, or `nil`.
    ///   - password: The password, or `nil`.
    ///   - database: The database number (0 by default).
    ///   - tls: TLS settings for a `.tcp` endpoint, or `nil` for a plain connection.
    public init(
        endpoint: Endpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        tls: TLS? = nil
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Parses a Redis URL.
    ///
    /// - Parameter string: A `redis://`, `rediss://` or `unix://` URL.
    /// - Throws: ``RedisClientError`` with code ``RedisClientError/Code/invalidURL`` and a message saying what is
    ///   wrong and how a valid URL looks.
    public init(_ string: String) throws(RedisClientError) {
        let trimmed = string.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else {
            throw Self.invalid(string, "the URL is empty")
        }
        guard let schemeEnd = trimmed.range(of: "://") else {
            throw Self.invalid(string, "it has no scheme")
        }
        let scheme = trimmed[..<schemeEnd.lowerBound].lowercased()
        switch scheme {
        case "redis":
            self = try Self.parseTCP(string, trimmed, tls: false)
        case "rediss":
            self = try Self.parseTCP(string, trimmed, tls: true)
        case "unix":
            self = try Self.parseUnix(string, trimmed)
        case "redis+sentinel":
            self = try Self.parseSentinel(string, trimmed, tls: false)
        case "rediss+sentinel":
            self = try Self.parseSentinel(string, trimmed, tls: true)
        case "redis+cluster":
            self = try Self.parseCluster(string, trimmed, tls: false)
        case "rediss+cluster":
            self = try Self.parseCluster(string, trimmed, tls: true)
        default:
            throw Self.invalid(
                string,
                "the scheme '\(scheme)' is not redis://, rediss://, unix://, redis+sentinel://, rediss+sentinel://, "
                    + "redis+cluster:// or rediss+cluster://"
            )
        }
    }

    /// The URL from the `REDIS_URL` environment variable, else ``defaultURL``.
    ///
    /// - Parameter environment: The environment to read (the process environment by default).
    /// - Throws: ``RedisClientError`` when `REDIS_URL` is set but invalid.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(RedisClientError) -> RedisURL {
        if let value = environment["REDIS_URL"], !value.isEmpty {
            return try RedisURL(value)
        }
        return try RedisURL(defaultURL)
    }

    /// The URL with its password replaced by `***` (TLS settings are shown: they hold file names, not secrets).
    public var description: String {
        var credentials = ""
        if password != nil {
            credentials = "\(username ?? ""):***@"
        }
        switch endpoint {
        case .tcp(let host, let port):
            let shownHost = host.contains(":") ? "[\(host)]" : host
            return (tls == nil ? "redis://" : "rediss://") + "\(credentials)\(shownHost):\(port)"
                + (database == 0 ? "" : "/\(database)") + (tls?.queryString ?? "")
        case .unix(let path):
            var query: [String] = []
            if database != 0 { query.append("db=\(database)") }
            if let username { query.append("user=\(username)") }
            if password != nil { query.append("password=***") }
            return "unix://\(path)" + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        case .sentinel(let sentinel):
            let hosts = sentinel.addresses.map(\.description).joined(separator: ",")
            var query: [String] = []
            if let username = sentinel.username { query.append("sentinel_user=\(username)") }
            if sentinel.password != nil { query.append("sentinel_password=***") }
            if let tls, !tls.queryString.isEmpty { query.append(String(tls.queryString.dropFirst())) }
            return (tls == nil ? "redis+sentinel://" : "rediss+sentinel://")
                + "\(credentials)\(hosts)/\(sentinel.masterName)"
                + (database == 0 ? "" : "/\(database)") + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        case .cluster(let cluster):
            let hosts = cluster.seeds.map(\.description).joined(separator: ",")
            return (tls == nil ? "redis+cluster://" : "rediss+cluster://") + "\(credentials)\(hosts)"
                + (tls?.queryString ?? "")
        }
    }

    private static let example =
        "expected redis://[[user]:password@]host[:port][/db], rediss://… (TLS), unix:///path/to.sock[?db=N] or "
        + "redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db] or "
        + "redis+cluster://[[user]:password@]host[:port][,host[:port]...]"

    static func invalid(_ original: String, _ reason: String) -> RedisClientError {
        RedisClientError(.invalidURL, "invalid Redis URL '\(masked(original))': \(reason); \(example)")
    }

    /// Masks whatever sits between the last `:` of the user info and `@`, for error messages about unparsable URLs.
    static func masked(_ string: String) -> String {
        guard let schemeEnd = string.range(of: "://"),
            let at = string.range(of: "@", options: .backwards, range: schemeEnd.upperBound..<string.endIndex),
            let colon = string.range(of: ":", range: schemeEnd.upperBound..<at.lowerBound)
        else {
            guard let passwordItem = string.range(of: "password=") else { return string }
            let end = string[passwordItem.upperBound...].firstIndex(of: "&") ?? string.endIndex
            return string.replacingCharacters(in: passwordItem.upperBound..<end, with: "***")
        }
        return string.replacingCharacters(in: colon.upperBound..<at.lowerBound, with: "***")
    }

    private static func parseDatabase(_ original: String, _ text: String) throws(RedisClientError) -> Int {
        guard let database = Int(text), database >= 0 else {
            throw invalid(original, "the database '\(text)' is not a number from 0 up")
        }
        return database
    }

    private static func parseTCP(
        _ original: String,
        _ string: String,
        tls: Bool
    ) throws(RedisClientError) -> RedisURL {
        guard let components = URLComponents(string: string) else {
            throw invalid(original, "it is not a well-formed URL (percent-encode special characters in the password)")
        }
        guard let host = components.host, !host.isEmpty else {
            throw invalid(original, "it has no host")
        }
        var port = 6379
        if let given = components.port {
            guard (1...65535).contains(given) else {
                throw invalid(original, "the port \(given) is not between 1 and 65535")
            }
            port = given
        } else if let authority = string.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first,
            authority.hasSuffix(":")
        {
            throw invalid(original, "the port is empty")
        }
        var database = 0
        let path = components.percentEncodedPath
        if !path.isEmpty && path != "/" {
            let segment = String(path.dropFirst())
            guard !segment.contains("/") else {
                throw invalid(original, "the path '\(path)' has more than a database number")
            }
            database = try parseDatabase(original, segment)
        }
        var username = components.user.flatMap { $0.isEmpty ? nil : $0 }
        var password = components.password
        var settings = TLS()
        for item in components.queryItems ?? [] {
            switch item.name {
            case "db": database = try parseDatabase(original, item.value ?? "")
            case "password": password = item.value
            case "user", "username": username = item.value
            default:
                guard try settings.apply(item, tls: tls, original) else {
                    throw invalid(original, "the query item '\(item.name)' is not known (\(knownItems(tls: tls)) are)")
                }
            }
        }
        if tls { try settings.validate(original) }
        if username != nil && password == nil {
            throw invalid(original, "the user '\(username!)' has no password (write redis://user:password@host)")
        }
        let bareHost = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        return RedisURL(
            endpoint: .tcp(host: bareHost, port: port),
            username: username,
            password: password,
            database: database,
            tls: tls ? settings : nil
        )
    }

    private static func parseUnix(_ original: String, _ string: String) throws(RedisClientError) -> RedisURL {
        let rest = string.dropFirst("unix://".count)
        let pathPart = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = pathPart.first.map(String.init) ?? ""
        guard path.hasPrefix("/"), path.count > 1 else {
            throw invalid(original, "the socket path must be absolute, as in unix:///var/run/redis.sock")
        }
        var database = 0
        var username: String?
        var password: String?
        if pathPart.count == 2 {
            for pair in pathPart[1].split(separator: "&") {
                let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(keyValue[0])
                let value =
                    keyValue.count == 2 ? String(keyValue[1]).removingPercentEncoding ?? String(keyValue[1]) : ""
                switch name {
                case "db": database = try parseDatabase(original, value)
                case "password": password = value
                case "user", "username": username = value
                default: throw invalid(original, "the query item '\(name)' is not known (db, user, password are)")
                }
            }
        }
        if let username, password == nil {
            throw invalid(original, "the user '\(username)' has no password (add &password=...)")
        }
        return RedisURL(endpoint: .unix(path: path), username: username, password: password, database: database)
    }

    /// Parses `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db][?query]`: URLComponents
    /// does not take several hosts, so the authority is split by hand.
    private static func parseSentinel(
        _ original: String,
        _ string: String,
        tls: Bool
    ) throws(RedisClientError) -> RedisURL {
        var rest = Substring(string.dropFirst((tls ? "rediss+sentinel://" : "redis+sentinel://").count))
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw invalid(original, "it names no master group (add /master-name after the Sentinels)")
        }
        var authority = rest[..<slash]
        let path = rest[rest.index(after: slash)...].split(separator: "/", omittingEmptySubsequences: false)
        var (username, password) = splitCredentials(&authority)
        var addresses: [Sentinel.Address] = []
        for hostPort in authority.split(separator: ",", omittingEmptySubsequences: false) {
            addresses.append(try parseAddress(original, hostPort))
        }
        guard let name = path.first, !name.isEmpty else {
            throw invalid(original, "the master group's name is empty (add /master-name after the Sentinels)")
        }
        guard path.count <= 2 else {
            throw invalid(original, "the path has more than a master name and a database number")
        }
        var database = path.count == 2 ? try parseDatabase(original, String(path[1])) : 0
        var sentinelUser: String?
        var sentinelPassword: String?
        var settings = TLS()
        for item in queryItems(query) {
            let (key, value) = (item.name, item.value ?? "")
            if try settings.apply(item, tls: tls, original) { continue }
            switch key {
            case "db": database = try parseDatabase(original, value)
            case "password": password = value
            case "user", "username": username = value
            case "sentinel_password": sentinelPassword = value
            case "sentinel_user", "sentinel_username": sentinelUser = value
            default:
                throw invalid(
                    original,
                    "the query item '\(key)' is not known (db, user, password, sentinel_user, sentinel_password"
                        + (tls ? ", ca_file, cert_file, key_file, sni, insecure" : "") + " are)"
                )
            }
        }
        if let username, password == nil {
            throw invalid(original, "the user '\(username)' has no password (write redis+sentinel://user:password@…)")
        }
        if let sentinelUser, sentinelPassword == nil {
            throw invalid(original, "the Sentinel user '\(sentinelUser)' has no sentinel_password")
        }
        let masterName = String(name).removingPercentEncoding ?? String(name)
        if tls { try settings.validate(original) }
        return RedisURL(
            endpoint: .sentinel(
                Sentinel(
                    addresses: addresses,
                    masterName: masterName,
                    username: sentinelUser,
                    password: sentinelPassword
                )
            ),
            username: username,
            password: password,
            database: database,
            tls: tls ? settings : nil
        )
    }

    /// Takes `user:password@` off the front of a multi-host authority (percent-decoded; an empty user is none).
    static func splitCredentials(_ authority: inout Substring) -> (username: String?, password: String?) {
        guard let at = authority.lastIndex(of: "@") else { return (nil, nil) }
        let credentials = authority[..<at]
        authority = authority[authority.index(after: at)...]
        let parts = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let user = String(parts[0]).removingPercentEncoding ?? String(parts[0])
        let password = parts.count == 2 ? String(parts[1]).removingPercentEncoding ?? String(parts[1]) : nil
        return (user.isEmpty ? nil : user, password)
    }

    /// The `name=value` items of a query (percent-decoded values; `nil` for an item without `=`).
    static func queryItems(_ query: Substring) -> [URLQueryItem] {
        query.split(separator: "&").map { pair in
            let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = keyValue.count == 2 ? String(keyValue[1]).removingPercentEncoding ?? String(keyValue[1]) : nil
            return URLQueryItem(name: String(keyValue[0]), value: value)
        }
    }

    /// Parses `host[:port]` or `[v6]:port` of a multi-host URL; `what` names the host in messages ("Sentinel").
    static func parseAddress(
        _ original: String,
        _ text: Substring,
        what: String = "Sentinel",
        defaultPort: Int = 26379
    ) throws(RedisClientError) -> Address {
        guard !text.isEmpty else { throw invalid(original, "a \(what) address is empty (check the commas)") }
        var host = text
        var portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw invalid(original, "the IPv6 address '\(text)' has no closing bracket")
            }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid(original, "'\(text)' is not host:port") }
                portText = after.dropFirst()
            }
        } else if let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty else { throw invalid(original, "the \(what) address '\(text)' has no host") }
        var port = defaultPort
        if let portText {
            guard let given = Int(portText), (1...65535).contains(given) else {
                throw invalid(original, "the \(what) port '\(portText)' is not a number between 1 and 65535")
            }
            port = given
        }
        return Address(host: String(host), port: port)
    }
}
