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
            ("rediss://localhost", "TLS"),
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
}
