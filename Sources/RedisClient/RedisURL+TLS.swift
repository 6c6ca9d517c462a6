import Foundation

extension RedisURL {
    /// How a `rediss://` connection is secured: whom to trust, which client certificate to show, which name to check.
    ///
    /// The server's certificate and name are verified by default: its chain must lead to a trusted CA (the system
    /// trust store, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`, unless ``caFile`` is given), and it must be
    /// for ``serverName`` (else the host of the URL; an IP address must be in the certificate's IP addresses).
    ///
    /// Query items of a `rediss://` URL (the names in brackets are also accepted, as redis-py and go-redis write
    /// them):
    ///
    /// | Item | Meaning |
    /// | --- | --- |
    /// | `ca_file` (`ssl_ca_certs`) | PEM file of the CAs to trust, instead of the system trust store |
    /// | `cert_file` (`ssl_certfile`) | PEM client certificate (chain), for mutual TLS |
    /// | `key_file` (`ssl_keyfile`) | its unencrypted PEM private key; given together with `cert_file` |
    /// | `sni` (`server_name`) | the name sent as SNI and checked against the certificate |
    /// | `insecure=true` (`ssl_cert_reqs=none`, `skip_verify=true`) | no verification at all: for tests only |
    public struct TLS: Sendable, Hashable {
        /// PEM file of the CAs to trust; `nil` trusts the system store.
        public var caFile: String?
        /// PEM file of the client certificate for mutual TLS, or `nil`.
        public var certificateFile: String?
        /// PEM file of the client certificate's private key (unencrypted), or `nil`.
        public var keyFile: String?
        /// The name sent as SNI and checked against the server's certificate; `nil` uses the URL's host.
        public var serverName: String?
        /// Skips every check of the server's certificate and name. Anyone on the path can then read and change
        /// the traffic: for tests only.
        public var insecure: Bool

        /// Creates TLS settings; with no arguments, verification against the system trust store.
        ///
        /// - Parameters:
        ///   - caFile: PEM file of the CAs to trust, or `nil` for the system store.
        ///   - certificateFile: Client certificate for mutual TLS, or `nil`.
        ///   - keyFile: The client certificate's key, or `nil`.
        ///   - serverName: The name to send and check, or `nil` for the host.
        ///   - insecure: `true` to skip verification (tests only).
        public init(
            caFile: String? = nil,
            certificateFile: String? = nil,
            keyFile: String? = nil,
            serverName: String? = nil,
            insecure: Bool = false
        ) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.serverName = serverName
            self.insecure = insecure
        }

        /// The settings as the query of a `rediss://` URL (`?ca_file=…`), or "" for the defaults.
        var queryString: String {
            var items: [String] = []
            if let caFile { items.append("ca_file=\(Self.encoded(caFile))") }
            if let certificateFile { items.append("cert_file=\(Self.encoded(certificateFile))") }
            if let keyFile { items.append("key_file=\(Self.encoded(keyFile))") }
            if let serverName { items.append("sni=\(Self.encoded(serverName))") }
            if insecure { items.append("insecure=true") }
            return items.isEmpty ? "" : "?" + items.joined(separator: "&")
        }

        private static func encoded(_ value: String) -> String {
            var allowed = CharacterSet.urlQueryAllowed
            allowed.remove(charactersIn: "&=+#")
            return value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value
        }

        /// Takes one query item of the URL; `false` when it is not a TLS item.
        mutating func apply(
            _ item: URLQueryItem,
            tls: Bool,
            _ original: String
        ) throws(RedisClientError) -> Bool {
            let field: WritableKeyPath<TLS, String?>
            switch item.name {
            case "ca_file", "ssl_ca_certs": field = \.caFile
            case "cert_file", "ssl_certfile": field = \.certificateFile
            case "key_file", "ssl_keyfile": field = \.keyFile
            case "sni", "server_name": field = \.serverName
            case "insecure", "skip_verify", "ssl_cert_reqs":
                guard tls else { throw RedisURL.notTLS(original, item.name) }
                insecure = try Self.insecureValue(item, original)
                return true
            default:
                return false
            }
            guard tls else { throw RedisURL.notTLS(original, item.name) }
            guard let value = item.value, !value.isEmpty else {
                throw RedisURL.invalid(original, "the query item '\(item.name)' has no value")
            }
            self[keyPath: field] = value
            return true
        }

        private static func insecureValue(_ item: URLQueryItem, _ original: String) throws(RedisClientError) -> Bool {
            let value = (item.value ?? "").lowercased()
            if item.name == "ssl_cert_reqs" {
                switch value {
                case "none": return true
                case "required": return false
                default:
                    throw RedisURL.invalid(
                        original,
                        "ssl_cert_reqs='\(value)' is not supported (none or required are; the default is required)"
                    )
                }
            }
            switch value {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default: throw RedisURL.invalid(original, "\(item.name)='\(value)' is not true or false")
            }
        }

        /// Refuses combinations that cannot work.
        func validate(_ original: String) throws(RedisClientError) {
            if certificateFile != nil && keyFile == nil {
                throw RedisURL.invalid(
                    original,
                    "cert_file needs key_file, the client certificate's private key (for a PEM file that holds "
                        + "both, give it as both)"
                )
            }
            if keyFile != nil && certificateFile == nil {
                throw RedisURL.invalid(original, "key_file needs cert_file, the client certificate it belongs to")
            }
            if insecure && caFile != nil {
                throw RedisURL.invalid(
                    original,
                    "insecure=true turns verification off, so ca_file would be ignored; give one or the other"
                )
            }
        }
    }

    /// The query items a URL of this kind knows, for error messages.
    static func knownItems(tls: Bool) -> String {
        tls ? "db, user, password, ca_file, cert_file, key_file, sni, insecure" : "db, user, password"
    }

    fileprivate static func notTLS(_ original: String, _ name: String) -> RedisClientError {
        invalid(original, "the query item '\(name)' is a TLS setting: write rediss:// to connect over TLS")
    }
}
