import Foundation
public import LocalRedis

/// Runs `body` with a private `redis-server` that listens only with TLS (`port 0`, `tls-port` on a free loopback
/// port), with a throw-away CA, server and client certificate made by ``LocalRedis/LocalRedisServer/TestCertificates``;
/// the server is always stopped and the certificates removed afterwards.
///
/// The server's ``LocalRedis/LocalRedisServer/url`` is a `rediss://` URL that trusts the CA and shows the client
/// certificate, so ``LocalRedis/LocalRedisServer/makeClient(maximumConnections:commandTimeout:)`` works as for a
/// plain server.
///
/// - Parameters:
///   - clientAuthentication: The server's `tls-auth-clients` (`.optional` by default).
///   - plainPort: Whether the server also listens on a plain port (``LocalRedis/LocalRedisServer/plainPort``).
///   - arguments: Extra `redis-server` options.
///   - body: The test, given the running server and the certificates.
/// - Throws: What `body` throws, or ``LocalRedis/LocalRedisServerError`` when the certificates or the server cannot
///   be made.
public func withTLSRedisServer(
    clientAuthentication: LocalRedisServer.ClientAuthentication = .optional,
    plainPort: Bool = false,
    arguments: [String] = [],
    _ body: (LocalRedisServer, LocalRedisServer.TestCertificates) async throws -> Void
) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "conveyor-tls-\(UUID().uuidString)"
    ).path
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let certificates = try LocalRedisServer.TestCertificates.make(in: directory)
    let options = LocalRedisServer.Options(
        arguments: arguments,
        tls: certificates.serverOptions(clientAuthentication: clientAuthentication, plainPort: plainPort)
    )
    try await withRedisServer(options) { server in try await body(server, certificates) }
}
