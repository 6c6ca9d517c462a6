import Foundation
import Testing

@testable import RedisClient

@Suite("RedisURL")
struct RedisURLTests {
    @Test func parsesTCPWithDefaults() throws {
        let url = try RedisURL("redis://localhost")
        #expect(url.endpoint == .tcp(host: "localhost", port: 6379))
        #expect(url.database == 0)
        #expect(url.username == nil && url.password == nil)
    }

    @Test func parsesEveryPart() throws {
        let url = try RedisURL("redis://alice:s3cr%40t@10.0.0.1:6380/4")
        #expect(url.endpoint == .tcp(host: "10.0.0.1", port: 6380))
        #expect(url.username == "alice")
        #expect(url.password == "s3cr@t")
        #expect(url.database == 4)
        #expect(url.description == "redis://alice:***@10.0.0.1:6380/4")
    }

    @Test func parsesPasswordOnlyAndIPv6() throws {
        let url = try RedisURL("redis://:pw@[::1]:7000")
        #expect(url.endpoint == .tcp(host: "::1", port: 7000))
        #expect(url.username == nil)
        #expect(url.password == "pw")
        #expect(url.description == "redis://:***@[::1]:7000")
    }

    @Test func parsesUnixSocket() throws {
        let url = try RedisURL("unix:///var/run/redis.sock?db=2&password=x")
        #expect(url.endpoint == .unix(path: "/var/run/redis.sock"))
        #expect(url.database == 2)
        #expect(url.password == "x")
        #expect(url.description == "unix:///var/run/redis.sock?db=2&password=***")
    }

    @Test func readsREDIS_URL() throws {
        #expect(try RedisURL.fromEnvironment(["REDIS_URL": "redis://h:1"]).endpoint == .tcp(host: "h", port: 1))
        #expect(try RedisURL.fromEnvironment([:]).endpoint == .tcp(host: "127.0.0.1", port: 6379))
        #expect(throws: RedisClientError.self) { try RedisURL.fromEnvironment(["REDIS_URL": "http://x"]) }
    }

    @Test(
        arguments: [
            ("", "empty"),
            ("localhost:6379", "no scheme"),
            ("http://localhost", "scheme 'http'"),
            ("redis://", "no host"),
            ("redis://localhost:0", "port 0"),
            ("redis://localhost:70000", "port"),
            ("redis://localhost:abc", "well-formed"),
            ("redis://localhost/-1", "database '-1'"),
            ("redis://localhost/db", "database 'db'"),
            ("redis://localhost/1/2", "more than a database"),
            ("redis://localhost?color=red", "query item 'color'"),
            ("redis://alice@localhost", "no password"),
            ("unix://relative.sock", "absolute"),
            ("unix:///tmp/r.sock?db=x", "database 'x'"),
        ]
    )
    func rejectsBadURLs(input: String, mentions: String) throws {
        let error = try #require(throws: RedisClientError.self) { try RedisURL(input) }
        #expect(error.code == .invalidURL)
        #expect(error.message.contains(mentions), "\(error.message)")
        #expect(error.message.contains("expected redis://"))
    }

    @Test func masksPasswordInErrors() throws {
        let error = try #require(throws: RedisClientError.self) { try RedisURL("redis://u:hunter2@host:99999") }
        #expect(!error.message.contains("hunter2"))
        #expect(error.message.contains("***"))
    }

    @Test func sha1MatchesKnownDigests() {
        #expect(SHA1.hexDigest([]) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(SHA1.hexDigest(Array("abc".utf8)) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(SHA1.hexDigest(long) == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    }

    @Test func encodesRESP() {
        let buffer = RedisCommand("SET", "k", [0, 13, 10]).encoded
        #expect(RedisCommand(arguments: [Array("SET".utf8), [107], [0, 13, 10]]).encoded == buffer)
        #expect(RedisCommand("set").name == "SET")
        #expect(
            Array(RedisCommand("ECHO", String(repeating: "x", count: 12_345)).encoded.prefix(22))
                == Array("*2\r\n$4\r\nECHO\r\n$12345\r\n".utf8)
        )
        #expect(buffer == Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\n".utf8) + [0, 13, 10] + [13, 10])
    }

    @Test func parsesRedissWithDefaults() throws {
        let url = try RedisURL("rediss://:pw@cache.example.com:6380/2")
        #expect(url.endpoint == .tcp(host: "cache.example.com", port: 6380))
        #expect(url.tls == RedisURL.TLS())
        #expect(url.tls?.insecure == false)
        #expect(url.password == "pw" && url.database == 2)
        #expect(url.description == "rediss://:***@cache.example.com:6380/2")
        #expect(try RedisURL("redis://h").tls == nil)
        #expect(try RedisURL("rediss://h").endpoint == .tcp(host: "h", port: 6379))
    }

    @Test func parsesEveryTLSItem() throws {
        let url = try RedisURL(
            "rediss://alice:secret@[::1]:7000?ca_file=/etc/ca%20dir/ca.crt&cert_file=/c.crt&key_file=/c.key"
                + "&sni=redis.internal&db=3"
        )
        #expect(url.endpoint == .tcp(host: "::1", port: 7000))
        #expect(
            url.tls
                == RedisURL.TLS(
                    caFile: "/etc/ca dir/ca.crt",
                    certificateFile: "/c.crt",
                    keyFile: "/c.key",
                    serverName: "redis.internal"
                )
        )
        #expect(url.database == 3 && url.username == "alice")
        #expect(
            url.description
                == "rediss://alice:***@[::1]:7000/3?ca_file=/etc/ca%20dir/ca.crt&cert_file=/c.crt&key_file=/c.key"
                + "&sni=redis.internal"
        )
        #expect(!url.description.contains("secret"))
        // The description parses back to the same URL, password aside.
        var reparsed = try RedisURL(url.description.replacingOccurrences(of: "***", with: "secret"))
        #expect(reparsed == url)
        reparsed.tls?.serverName = nil
        #expect(reparsed != url)
    }

    @Test(arguments: [
        "rediss://h?insecure=true", "rediss://h?insecure=1", "rediss://h?skip_verify=true",
        "rediss://h?ssl_cert_reqs=none",
    ])
    func parsesTheInsecureOptOut(input: String) throws {
        let url = try RedisURL(input)
        #expect(url.tls?.insecure == true)
        #expect(url.description == "rediss://h:6379?insecure=true")
    }

    @Test func acceptsRedisPyItemNames() throws {
        let url = try RedisURL(
            "rediss://h?ssl_ca_certs=/ca.pem&ssl_certfile=/c.pem&ssl_keyfile=/k.pem&ssl_cert_reqs=required"
        )
        #expect(url.tls == RedisURL.TLS(caFile: "/ca.pem", certificateFile: "/c.pem", keyFile: "/k.pem"))
    }

    @Test(arguments: [
        ("rediss://h?cafile=/x", "the query item 'cafile' is not known (db, user, password, ca_file, cert_file"),
        ("rediss://h?cert_file=/c.crt", "cert_file needs key_file"),
        ("rediss://h?key_file=/c.key", "key_file needs cert_file"),
        ("rediss://h?ca_file=", "the query item 'ca_file' has no value"),
        ("rediss://h?insecure=maybe", "insecure='maybe' is not true or false"),
        ("rediss://h?ssl_cert_reqs=optional", "ssl_cert_reqs='optional' is not supported"),
        ("rediss://h?insecure=true&ca_file=/ca.crt", "insecure=true turns verification off"),
        ("redis://h?ca_file=/ca.crt", "is a TLS setting: write rediss://"),
        ("redis://h?insecure=true", "is a TLS setting: write rediss://"),
        ("rediss://:pw@h:0", "the port 0 is not between 1 and 65535"),
    ])
    func refusesBadTLSURLs(input: String, mentions: String) throws {
        let error = try #require(throws: RedisClientError.self) { try RedisURL(input) }
        #expect(error.code == .invalidURL)
        #expect(error.message.contains(mentions), "\(error.message)")
        #expect(!error.message.contains(":pw@"))
    }
}
