import Testing

@testable import RedisClient

@Suite("RedisURL: redis+sentinel://")
struct SentinelURLTests {
    @Test func parsesSeveralSentinelsAMasterNameADatabaseAndBothPasswords() throws {
        let url = try RedisURL(
            "redis+sentinel://app:pw%40x@10.0.0.1:26380,sentinel-b,[::1]:5000/orders/3?sentinel_password=sp"
        )
        let expected = RedisURL.Sentinel(
            addresses: [
                .init(host: "10.0.0.1", port: 26380), .init(host: "sentinel-b", port: 26379),
                .init(host: "::1", port: 5000),
            ],
            masterName: "orders",
            password: "sp"
        )
        #expect(url.endpoint == .sentinel(expected))
        #expect(url.username == "app" && url.password == "pw@x")
        #expect(url.database == 3)
        #expect(
            url.description
                == "redis+sentinel://app:***@10.0.0.1:26380,sentinel-b:26379,[::1]:5000/orders/3?sentinel_password=***"
        )
    }

    @Test func theDefaultsAreDatabaseZeroAndNoPasswords() throws {
        let url = try RedisURL("redis+sentinel://127.0.0.1/mymaster")
        #expect(
            url.endpoint == .sentinel(.init(addresses: [.init(host: "127.0.0.1", port: 26379)], masterName: "mymaster"))
        )
        #expect(url.database == 0 && url.password == nil)
        #expect(try RedisURL(url.description) == url)
    }

    @Test(
        arguments: [
            ("redis+sentinel://127.0.0.1:26379", "names no master group"),
            ("redis+sentinel://127.0.0.1:26379/", "master group's name is empty"),
            ("redis+sentinel:///mymaster", "Sentinel address is empty"),
            ("redis+sentinel://a,,b/m", "Sentinel address is empty"),
            ("redis+sentinel://a:0/m", "Sentinel port '0'"),
            ("redis+sentinel://a:x/m", "Sentinel port 'x'"),
            ("redis+sentinel://[::1/m", "no closing bracket"),
            ("redis+sentinel://a/m/1/2", "more than a master name"),
            ("redis+sentinel://a/m/x", "database 'x'"),
            ("redis+sentinel://a/m?sentinel_user=u", "no sentinel_password"),
            ("redis+sentinel://a/m?tls=1", "query item 'tls' is not known"),
        ]
    )
    func aBadSentinelURLSaysWhatIsWrong(url: String, reason: String) {
        #expect {
            _ = try RedisURL(url)
        } throws: { error in
            let error = error as? RedisClientError
            return error?.code == .invalidURL && error?.message.contains(reason) == true
                && error?.message.contains("redis+sentinel://[[user]:password@]host[:port]") == true
        }
    }
}
