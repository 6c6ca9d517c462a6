import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import RedisClient

/// Issue 12: Sentinel over TLS (`rediss+sentinel://`): the Sentinels and the servers reached with the same TLS
/// settings, verified.
@Suite("Redis Sentinel over TLS", .timeLimit(.minutes(3)))
struct SentinelTLSTests {
    @Test func parsesRedissSentinelWithTLSItems() throws {
        let url = try RedisURL(
            "rediss+sentinel://:pw@127.0.0.1:26380,127.0.0.1/group?ca_file=/etc/ca.crt&sentinel_password=s"
        )
        #expect(url.tls == RedisURL.TLS(caFile: "/etc/ca.crt"))
        #expect(url.description.hasPrefix("rediss+sentinel://:***@127.0.0.1:26380,127.0.0.1:26379/group?"))
        #expect(url.description.contains("ca_file=/etc/ca.crt") && url.description.contains("sentinel_password=***"))
        #expect(throws: RedisClientError.self) { try RedisURL("redis+sentinel://127.0.0.1/group?ca_file=/etc/ca.crt") }
        #expect(throws: RedisClientError.self) { try RedisURL("rediss+sentinel://127.0.0.1/group?cert_file=/c.crt") }
    }

    @Test func commandsFollowAFailoverWithSentinelsAndServersOnTLSOnly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-stls-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificates = try LocalRedisServer.TestCertificates.make(in: directory)
        let options = LocalSentinelGroup.Options(tls: certificates.serverOptions(clientAuthentication: .optional))
        try await withSentinelGroup(options) { group in
            #expect(group.url.description.hasPrefix("rediss+sentinel://127.0.0.1:"))
            let redis = RedisClient(configuration: .init(url: group.url, failoverTimeout: .seconds(60)))
            defer { redis.shutdown() }
            #expect(try await redis.send("SET", "k", "v") == .status("OK"))
            let first = try #require(try await group.primary())
            let sentinel = RedisConnection(configuration: .init(url: group.sentinels[0].url))
            defer { sentinel.close() }
            #expect(try await sentinel.send("SENTINEL", "FAILOVER", group.options.masterName) == .status("OK"))
            try await eventually(timeout: .seconds(60), "the client to write on the new primary") {
                let reply = try await redis.send("INCR", "n")
                #expect(reply.int != nil, "a write during the failover got \(reply)")
                // The server the client is on, by its TLS port.
                let port = try await redis.send("CONFIG", "GET", "tls-port").array?.last?.string.flatMap { Int($0) }
                let primary = try await group.primary()
                return primary?.port != first.port && port == primary?.port
            }
            // A client that trusts another CA is refused by the Sentinels, with the reason.
            var wrongCA = group.url
            wrongCA.tls = RedisURL.TLS(caFile: certificates.otherCAFile)
            let refused = RedisClient(configuration: .init(url: wrongCA, connectTimeout: .seconds(2)))
            defer { refused.shutdown() }
            await #expect {
                _ = try await refused.send("PING")
            } throws: { error in
                let message = (error as? RedisClientError)?.message ?? ""
                return message.contains("cannot find the primary")
                    && message.contains("not signed by the CA in ca_file")
            }
        }
    }
}
