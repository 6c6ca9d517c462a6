import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import RedisClient

/// `rediss://` against real `redis-server`s that listen with TLS only (`port 0`), with certificates made by the
/// `openssl` command for each test.
@Suite("TLS", .timeLimit(.minutes(2)))
struct TLSTests {
    /// The error a connection to `url` fails with (the test fails when it connects).
    private func connectError(
        _ url: RedisURL,
        connectTimeout: Duration = .seconds(2)
    ) async throws -> RedisClientError {
        let connection = RedisConnection(configuration: .init(url: url, connectTimeout: connectTimeout))
        defer { connection.close() }
        do {
            let reply = try await connection.send("PING")
            Issue.record("connected to \(url) and got \(reply)")
            return RedisClientError(.connectionFailed, "connected")
        } catch let error as RedisClientError {
            #expect(error.code == .connectionFailed, "\(error)")
            return error
        }
    }

    private func tlsURL(
        _ server: LocalRedisServer,
        host: String = "127.0.0.1",
        _ settings: RedisURL.TLS
    ) -> RedisURL {
        RedisURL(endpoint: .tcp(host: host, port: server.port), tls: settings)
    }

    @Test func commandsRunOverTLS() async throws {
        try await withTLSRedisServer { (server, _) async throws in
            #expect(server.url.description.hasPrefix("rediss://127.0.0.1:\(server.port)?ca_file="))
            let redis = server.makeClient()
            defer { redis.shutdown() }
            #expect(try await redis.send("PING") == .status("PONG"))
            #expect(try await redis.send("SET", "greeting", "hello over TLS") == .status("OK"))
            #expect(try await redis.send("GET", "greeting").string == "hello over TLS")
            // The server has no plain port: what answered came through TLS.
            #expect(
                try await redis.send("CONFIG", "GET", "port")
                    == .array([.bulkString(Array("port".utf8)), .bulkString(Array("0".utf8))])
            )
            // Many callers at once, each on a pooled connection with its own tunnel.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<32 {
                    group.addTask {
                        for round in 0..<50 {
                            let key = "key-\(index)-\(round)"
                            _ = try await redis.send("SET", key, "\(round)")
                            #expect(try await redis.send("GET", key).string == "\(round)")
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }

    /// Values larger than the relay's buffers and many TLS records, in both directions, in a pipeline.
    @Test func largeValuesAndPipelinesPassIntact() async throws {
        try await withTLSRedisServer { (server, _) async throws in
            let connection = RedisConnection(configuration: .init(url: server.url))
            defer { connection.close() }
            let value = (0..<(3 * 1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 11) }
            #expect(try await connection.send("SET", "big", value) == .status("OK"))
            #expect(try await connection.send("GET", "big") == .bulkString(value))
            let batch = (0..<5000).map { RedisCommand("RPUSH", "list", "value-\($0)") }
            let replies = try await connection.pipeline(batch)
            #expect(replies.last == .integer(5000))
            let range = try await connection.send("LRANGE", "list", 0, -1)
            #expect(range.array?.count == 5000)
        }
    }

    @Test func theHostNameLocalhostIsCheckedAgainstTheCertificate() async throws {
        try await withTLSRedisServer { (server, certificates) async throws in
            // localhost resolves to 127.0.0.1 (and maybe ::1, where nothing listens: the next address is tried).
            let url = tlsURL(server, host: "localhost", RedisURL.TLS(caFile: certificates.caFile))
            let connection = RedisConnection(configuration: .init(url: url))
            defer { connection.close() }
            #expect(try await connection.send("PING") == .status("PONG"))
            // sni checks another name than the host, here one the certificate lists.
            let named = RedisConnection(
                configuration: .init(
                    url: tlsURL(server, RedisURL.TLS(caFile: certificates.caFile, serverName: "localhost"))
                )
            )
            defer { named.close() }
            #expect(try await named.send("PING") == .status("PONG"))
        }
    }

    @Test func aServerCertificateFromAnotherCAIsRefused() async throws {
        try await withTLSRedisServer { (server, certificates) async throws in
            let error = try await connectError(tlsURL(server, .init(caFile: certificates.otherCAFile)))
            #expect(error.message.contains("over TLS"), "\(error)")
            #expect(error.message.contains("is not signed by the CA in ca_file"), "\(error)")
            #expect(
                error.message.contains("self-signed certificate in certificate chain")
                    || error.message.contains("unable to get local issuer certificate"),
                "\(error)"
            )
            #expect(error.message.contains("?ca_file="), "\(error)")
        }
    }

    /// Without ca_file the system trust store is used, which does not hold the test CA.
    @Test func aServerCertificateTheSystemStoreDoesNotTrustIsRefused() async throws {
        try await withTLSRedisServer { (server, _) async throws in
            let error = try await connectError(tlsURL(server, .init()))
            #expect(error.message.contains("not signed by a trusted CA"), "\(error)")
            #expect(error.message.contains("give the CA with ?ca_file="), "\(error)")
        }
    }

    @Test(arguments: ["wrong.example", "127.0.0.2"])
    func aNameTheCertificateIsNotForIsRefused(name: String) async throws {
        try await withTLSRedisServer { (server, certificates) async throws in
            let error = try await connectError(
                tlsURL(server, .init(caFile: certificates.caFile, serverName: name))
            )
            #expect(error.message.contains("does not match the name checked"), "\(error)")
            #expect(error.message.contains("mismatch"), "\(error)")
            #expect(error.message.contains("127.0.0.1, ::1, localhost, not for '\(name)'"), "\(error)")
        }
    }

    /// Contexts are reused while their files are unchanged: a CA file that is replaced is read again.
    @Test func aReplacedCAFileIsReadAgain() async throws {
        try await withTLSRedisServer { (server, certificates) async throws in
            let caFile = certificates.directory + "/rotating-ca.crt"
            try FileManager.default.copyItem(atPath: certificates.otherCAFile, toPath: caFile)
            let url = tlsURL(server, RedisURL.TLS(caFile: caFile))
            let error = try await connectError(url)
            #expect(error.message.contains("is not signed by the CA in ca_file"), "\(error)")
            try FileManager.default.removeItem(atPath: caFile)
            try FileManager.default.copyItem(atPath: certificates.caFile, toPath: caFile)
            let connection = RedisConnection(configuration: .init(url: url))
            defer { connection.close() }
            #expect(try await connection.send("PING") == .status("PONG"))
        }
    }

    @Test func insecureSkipsVerification() async throws {
        try await withTLSRedisServer { (server, _) async throws in
            let url = try RedisURL("rediss://127.0.0.1:\(server.port)?insecure=true&sni=wrong.example")
            let connection = RedisConnection(configuration: .init(url: url))
            defer { connection.close() }
            #expect(try await connection.send("PING") == .status("PONG"))
        }
    }

    @Test func mutualTLSNeedsTheClientCertificate() async throws {
        try await withTLSRedisServer(clientAuthentication: .yes) { (server, certificates) async throws in
            // The server's URL shows the client certificate.
            let redis = server.makeClient()
            defer { redis.shutdown() }
            #expect(try await redis.send("PING") == .status("PONG"))

            let error = try await connectError(tlsURL(server, .init(caFile: certificates.caFile)))
            #expect(error.message.contains("requires a client certificate"), "\(error)")
            #expect(error.message.contains("?cert_file="), "\(error)")

            // A key that is not the certificate's is refused before anything is sent.
            let mismatched = try await connectError(
                tlsURL(
                    server,
                    .init(
                        caFile: certificates.caFile,
                        certificateFile: certificates.clientCertificateFile,
                        keyFile: certificates.serverKeyFile
                    )
                )
            )
            #expect(mismatched.message.contains("is not the key of the certificate"), "\(mismatched)")
        }
    }

    @Test func aMissingFileIsNamed() async throws {
        try await withTLSRedisServer { (server, certificates) async throws in
            let missingCA = try await connectError(tlsURL(server, .init(caFile: "/nonexistent/ca.crt")))
            #expect(
                missingCA.message.contains("cannot read the CA file (ca_file) '/nonexistent/ca.crt': No such file"),
                "\(missingCA)"
            )
            let notPEM = try await connectError(tlsURL(server, .init(caFile: certificates.directory + "/server.ext")))
            #expect(notPEM.message.contains("cannot load the CA file"), "\(notPEM)")
            let missingKey = try await connectError(
                tlsURL(
                    server,
                    .init(
                        caFile: certificates.caFile,
                        certificateFile: certificates.clientCertificateFile,
                        keyFile: "/nonexistent/client.key"
                    )
                )
            )
            #expect(missingKey.message.contains("client key file (key_file)"), "\(missingKey)")
        }
    }

    /// A plain port that gets a ClientHello either answers with a RESP error (not TLS) or waits for the rest of a
    /// command: both end within the connect timeout, with an error that points at the port.
    @Test func aHandshakeWithAPlainPortFailsWithinTheConnectTimeout() async throws {
        try await withRedisServer { server async throws in
            let url = try RedisURL("rediss://127.0.0.1:\(server.port)?insecure=true")
            let clock = ContinuousClock()
            let started = clock.now
            let error = try await connectError(url, connectTimeout: .seconds(1))
            let elapsed = clock.now - started
            // Redis 7's plain port waits for the end of the "command" it sees, so the connect timeout ends the wait
            // (the margin is for a loaded machine: under AddressSanitizer with the suite in parallel it took 2.05 s).
            #expect(elapsed < .milliseconds(2500), "took \(elapsed)")
            #expect(
                error.message.contains("plain Redis port") || error.message.contains("tls-port"),
                "\(error)"
            )
        }
    }

    @Test func aClosedPortIsReportedAsRefused() async throws {
        let port = try LocalRedisServer.freeLoopbackPort()
        let error = try await connectError(try RedisURL("rediss://127.0.0.1:\(port)?insecure=true"))
        #expect(error.message.contains("Connection refused"), "\(error)")
    }

    @Test func aKilledConnectionReconnectsOverTLS() async throws {
        try await withTLSRedisServer { (server, _) async throws in
            let connection = RedisConnection(configuration: .init(url: server.url))
            defer { connection.close() }
            let admin = server.makeClient(maximumConnections: 1)
            defer { admin.shutdown() }
            let firstID = try await connection.send("CLIENT", "ID").int
            #expect(try await admin.send("CLIENT", "KILL", "ID", firstID ?? -1) == .integer(1))
            // The relay sees the TLS connection close and closes hiredis's end: the stale check reconnects.
            try await Task.sleep(for: .milliseconds(20))
            let secondID = try await connection.send("CLIENT", "ID").int
            #expect(secondID != nil && secondID != firstID)
            #expect(try await connection.send("PING") == .status("PONG"))
            // Killed between two commands with no pause: the next call fails at most once, then reconnects.
            for _ in 0..<20 {
                let id = try await connection.send("CLIENT", "ID").int ?? -1
                _ = try await admin.send("CLIENT", "KILL", "ID", id)
                do {
                    _ = try await connection.send("PING")
                } catch let error as RedisClientError {
                    #expect(error.code == .connectionLost, "\(error)")
                }
                #expect(try await connection.send("PING") == .status("PONG"))
            }
        }
    }

    /// Closing a connection ends its relay thread, which closes the TLS connection: the server sees the clients go.
    @Test func closedConnectionsCloseTheirTLSConnections() async throws {
        try await withTLSRedisServer { (server, _) async throws in
            let admin = RedisConnection(configuration: .init(url: server.url))
            defer { admin.close() }
            func connectedClients() async throws -> Int {
                let info = try await admin.send("INFO", "clients").string ?? ""
                let line = info.split(separator: "\r\n").first { $0.hasPrefix("connected_clients:") } ?? ""
                return Int(line.dropFirst("connected_clients:".count)) ?? -1
            }
            let connections = (0..<10).map { _ in RedisConnection(configuration: .init(url: server.url)) }
            for connection in connections { #expect(try await connection.send("PING") == .status("PONG")) }
            #expect(try await connectedClients() == 11)
            for connection in connections { connection.close() }
            try await eventually("the server to see the closed connections go") { try await connectedClients() == 1 }
        }
    }

    @Test func aCommandTimeoutAndAnInterruptWorkOnTheTunnel() async throws {
        try await withTLSRedisServer(arguments: ["--enable-debug-command", "local"]) { (server, _) async throws in
            let slow = RedisConnection(configuration: .init(url: server.url, commandTimeout: .milliseconds(300)))
            defer { slow.close() }
            do {
                _ = try await slow.send("DEBUG", "SLEEP", "1")
                Issue.record("DEBUG SLEEP 1 answered within a 300 ms timeout")
            } catch let error as RedisClientError {
                #expect(error.code == .timeout, "\(error)")
            }
            try await Task.sleep(for: .seconds(1))
            #expect(try await slow.send("PING") == .status("PONG"))

            let blocked = RedisConnection(configuration: .init(url: server.url))
            _ = try await blocked.send("PING")
            let clock = ContinuousClock()
            let started = clock.now
            let waiter = Task {
                try await blocked.send(RedisCommand("BLPOP", "never", 0), blockingFor: .zero)
            }
            let admin = server.makeClient(maximumConnections: 1)
            defer { admin.shutdown() }
            try await eventually("BLPOP to block") { try await blockedClients(admin) == 1 }
            blocked.close()
            do {
                let reply = try await waiter.value
                Issue.record("BLPOP answered \(reply)")
            } catch let error as RedisClientError {
                #expect(error.code == .closed, "\(error)")
            }
            #expect(clock.now - started < .seconds(5))
            try await eventually("the server to see the client go") { try await blockedClients(admin) == 0 }
        }
    }
}
