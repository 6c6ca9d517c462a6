import Conveyor
import Foundation
import LocalRedis
import Logging
import RedisClient

/// The Redis of `conveyor dev` and `conveyor demo`: a URL the user gave, or a private `redis-server` started for
/// the command and stopped when it ends, however it ends.
enum PrivateRedis {
    /// Runs `body` with the server's URL: `given` when there is one, else a private server started with `options`.
    static func with(
        given: String?,
        options: LocalRedisServer.Options,
        _ body: (RedisURL, LocalRedisServer?) async throws -> Void
    ) async throws {
        if let given {
            try await body(try RedisURL(given), nil)
            return
        }
        let server: LocalRedisServer
        do {
            server = try await LocalRedisServer.start(options)
        } catch {
            throw CommandFailure(
                message: "cannot start a private redis-server: \(error) "
                    + "(install it with: apt-get install -y redis-server, or give --redis URL)"
            )
        }
        do {
            try await body(server.url, server)
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }

    /// A client for a long-running command (10 s command timeout) and a job queue on it; shut the client down after.
    static func jobQueue(
        _ url: RedisURL,
        clientName: String,
        namespace: String,
        logger: Logger
    ) -> (RedisClient, JobQueue) {
        let redis = RedisClient(
            configuration: RedisClient.Configuration(url: url, commandTimeout: .seconds(10), clientName: clientName),
            logger: logger
        )
        // dev and the demo install the library themselves: their server (or namespace) is theirs alone.
        let configuration = JobQueue.Configuration(namespace: namespace, installsLibrary: true)
        return (redis, JobQueue(redis: redis, configuration: configuration, logger: logger))
    }

    /// The URL from `--redis`, else `REDIS_URL` when set and not empty.
    static func givenURL(_ option: String?) -> String? {
        option ?? ProcessInfo.processInfo.environment["REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }
}
