public import LocalRedis
public import RedisClient

/// Runs `body` with a private `redis-server` on a free loopback port, and always stops it afterwards, also when
/// `body` throws.
///
/// ```swift
/// @Test func roundTrip() async throws {
///     try await withRedisServer { server in
///         let redis = server.makeClient()
///         #expect(try await redis.send("PING") == .status("PONG"))
///     }
/// }
/// ```
///
/// - Parameters:
///   - options: How to start the server (extra configuration, Unix socket, …).
///   - body: The test, given the running server.
/// - Throws: What `body` throws, or ``LocalRedis/LocalRedisServerError`` when the server cannot start.
public func withRedisServer(
    _ options: LocalRedisServer.Options = LocalRedisServer.Options(),
    _ body: (LocalRedisServer) async throws -> Void
) async throws {
    let server = try await LocalRedisServer.start(options)
    do {
        try await body(server)
        await server.stop()
    } catch {
        await server.stop()
        throw error
    }
}

extension LocalRedisServer {
    /// A client for this server with short timeouts suited to tests (connect 2 s, command 5 s).
    ///
    /// - Parameters:
    ///   - maximumConnections: The pool size.
    ///   - commandTimeout: How long a reply may take.
    /// - Returns: A new client; shut it down or drop it when done.
    public func makeClient(maximumConnections: Int = 16, commandTimeout: Duration = .seconds(5)) -> RedisClient {
        RedisClient(
            configuration: .init(url: url, commandTimeout: commandTimeout, maximumConnections: maximumConnections)
        )
    }
}
