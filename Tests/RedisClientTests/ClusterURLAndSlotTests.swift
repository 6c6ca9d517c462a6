import Foundation
import Testing

@testable import RedisClient

@Suite("RedisURL: redis+cluster://, and the key → slot rule")
struct ClusterURLAndSlotTests {
    @Test func parsesSeveralNodesCredentialsAndDefaultPorts() throws {
        let url = try RedisURL("redis+cluster://app:pw%40x@10.0.0.1:7000,node-b,[::1]:7002")
        #expect(
            url.endpoint
                == .cluster(
                    .init(seeds: [
                        .init(host: "10.0.0.1", port: 7000), .init(host: "node-b", port: 6379),
                        .init(host: "::1", port: 7002),
                    ])
                )
        )
        #expect(url.username == "app" && url.password == "pw@x" && url.database == 0)
        #expect(url.description == "redis+cluster://app:***@10.0.0.1:7000,node-b:6379,[::1]:7002")
        #expect(try RedisURL("redis+cluster://127.0.0.1:7000/") == RedisURL("redis+cluster://127.0.0.1:7000"))
        let again = try RedisURL("redis+cluster://127.0.0.1:7000,127.0.0.1:7001?password=secret")
        #expect(again.password == "secret")
        #expect(try RedisURL(again.description.replacingOccurrences(of: "***", with: "secret")) == again)
    }

    @Test func rediss_ClusterCarriesTheTLSSettingsToEveryNode() throws {
        let url = try RedisURL("rediss+cluster://127.0.0.1:7000,127.0.0.1:7001?insecure=true")
        #expect(url.tls?.insecure == true)
        #expect(url.node(.init(host: "127.0.0.1", port: 7005)).tls == url.tls)
        #expect(url.node(.init(host: "127.0.0.1", port: 7005)).endpoint == .tcp(host: "127.0.0.1", port: 7005))
    }

    @Test(
        arguments: [
            ("redis+cluster://", "names no cluster node"),
            ("redis+cluster://127.0.0.1:7000/3", "only database 0"),
            ("redis+cluster://127.0.0.1:7000?db=2", "only database 0"),
            ("redis+cluster://127.0.0.1:7000,,127.0.0.1:7001", "address is empty"),
            ("redis+cluster://127.0.0.1:99999", "not a number between 1 and 65535"),
            ("redis+cluster://app@127.0.0.1:7000", "has no password"),
            ("redis+cluster://127.0.0.1:7000?timeout=3", "query item 'timeout' is not known"),
            ("redis+clusters://127.0.0.1:7000", "redis+cluster://"),
        ]
    )
    func badClusterURLsSayWhatIsWrong(url: String, reason: String) {
        #expect {
            _ = try RedisURL(url)
        } throws: { error in
            let error = error as? RedisClientError
            return error?.code == .invalidURL && error?.message.contains(reason) == true
        }
    }

    @Test func slotsAreCRC16XModemOfTheKeyOrItsHashTag() {
        // The check value of CRC-16/XMODEM, and the examples of the Redis Cluster specification.
        #expect(ClusterSlot.crc16(Array("123456789".utf8)) == 0x31C3)
        #expect(ClusterSlot.of("foo") == 12182)
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("{user1000}.followers"))
        #expect(ClusterSlot.of("{user1000}.following") == ClusterSlot.of("user1000"))
        // An empty tag does not count: the whole key is hashed.
        #expect(ClusterSlot.of("foo{}{bar}") == Int(ClusterSlot.crc16(Array("foo{}{bar}".utf8)) & 0x3FFF))
        // The tag ends at the first } after the first {.
        #expect(ClusterSlot.of("foo{{bar}}zap") == ClusterSlot.of("{bar"))
        #expect(ClusterSlot.of("foo{bar}{zap}") == ClusterSlot.of("bar"))
        #expect(ClusterSlot.of("foo{bar") == Int(ClusterSlot.crc16(Array("foo{bar".utf8)) & 0x3FFF))
        // Every key of a Conveyor queue shares the queue's slot.
        let queue = ClusterSlot.of("conveyor:{emails}")
        #expect(ClusterSlot.of("conveyor:{emails}:job:0193-abc") == queue)
        #expect(ClusterSlot.of("conveyor:{emails}:pending") == queue)
    }

    @Test func commandsAreRoutedByTheirFirstKeyOrTheirRoute() {
        #expect(ClusterSlot.target(of: RedisCommand("GET", "foo")) == .slot(12182))
        #expect(ClusterSlot.target(of: RedisCommand("FCALL", "f", 1, "foo", "x")) == .slot(12182))
        #expect(ClusterSlot.target(of: RedisCommand("FCALL", "conveyor_version", 0)) == .anywhere)
        #expect(ClusterSlot.target(of: RedisCommand("XREAD", "COUNT", 5, "STREAMS", "foo", "0")) == .slot(12182))
        #expect(ClusterSlot.target(of: RedisCommand("XINFO", "STREAM", "foo")) == .slot(12182))
        #expect(ClusterSlot.target(of: RedisCommand("BLPOP", "foo", "bar", 1)) == .slot(12182))
        #expect(ClusterSlot.target(of: RedisCommand("WAIT", 1, 100)) == .anywhere)
        #expect(ClusterSlot.target(of: RedisCommand("INFO", "memory")) == .anywhere)
        #expect(ClusterSlot.target(of: RedisCommand("SCAN", 0).routed(bySlotOf: "foo")) == .slot(12182))
        let node = RedisURL.Address(host: "127.0.0.1", port: 7001)
        #expect(ClusterSlot.target(of: RedisCommand("INFO").routed(toNode: node)) == .node(node))
        #expect(RedisCommand("SET", "k", "v").arguments.map { Array($0) } == [Array("SET".utf8), [107], [118]])
    }
}
