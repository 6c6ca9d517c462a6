import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@Suite("withRedisServer")
struct LocalRedisServerTests {
    struct Expected: Error {}

    @Test func startsOnAFreeLoopbackPortAndStopsEvenWhenTheTestThrows() async throws {
        var seen: (pid: Int32, directory: String)?
        await #expect(throws: Expected.self) {
            try await withRedisServer { server in
                #expect(server.port != 6379)
                #expect(server.pid > 0)
                let reply = try await server.makeClient().send("PING")
                #expect(reply == .status("PONG"))
                seen = (server.pid, server.directory)
                throw Expected()
            }
        }
        let (pid, directory) = try #require(seen)
        #expect(kill(pid, 0) != 0, "redis-server \(pid) outlived its test")
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test func missingExecutableGivesAnInstallHint() async throws {
        let error = await #expect(throws: LocalRedisServerError.self) {
            try await withRedisServer(.init(executable: "no-such-redis-server")) { _ in }
        }
        #expect(error?.message.contains("apt-get install -y redis-server") == true)
    }

    @Test func badConfigurationReportsTheServerLog() async throws {
        let error = await #expect(throws: LocalRedisServerError.self) {
            try await withRedisServer(.init(arguments: ["--maxmemory-policy", "not-a-policy"])) { _ in }
        }
        #expect(error?.message.contains("exited at start") == true)
    }
}
