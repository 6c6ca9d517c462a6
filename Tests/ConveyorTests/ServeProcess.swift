import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A `conveyor serve` process on a free port, and an HTTP client for it.
final class ServeProcess: Sendable {
    let process: ConveyorProcess
    let port: Int
    let token: String?

    /// Starts `conveyor serve --port 0` against `server` with a token (or other `arguments`), and waits until it
    /// listens.
    static func start(
        _ server: LocalRedisServer,
        token: String? = "test-token",
        arguments: [String] = [],
        environment: [String: String] = [:]
    ) async throws -> ServeProcess {
        var environment = environment
        if let token { environment["CONVEYOR_SERVE_TOKEN"] = token }
        let process = ConveyorProcess(
            ["serve", "--redis", "redis://127.0.0.1:\(server.port)", "--port", "0"] + arguments,
            environment: environment
        )
        try await process.waitFor("listening on http://")
        let line = try #require(process.output.split(separator: "\n").first { $0.contains("listening on http://") })
        let port = try #require(Int(line.split(separator: ":").last ?? ""))
        return ServeProcess(process: process, port: port, token: token)
    }

    private init(process: ConveyorProcess, port: Int, token: String?) {
        self.process = process
        self.port = port
        self.token = token
    }

    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: Data

        var text: String { String(decoding: body, as: UTF8.self) }

        /// The body as a JSON object.
        func json() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any], "not a JSON object: \(text)")
        }

        /// The code of a JSON error body.
        var errorCode: String? {
            ((try? JSONSerialization.jsonObject(with: body) as? [String: Any])?["error"] as? [String: Any])?["code"]
                as? String
        }
    }

    /// Sends a request; `authorized` adds `Authorization: Bearer <token>`.
    func request(
        _ method: String,
        _ path: String,
        body: Data? = nil,
        json: Any? = nil,
        headers: [String: String] = [:],
        authorized: Bool = true
    ) async throws -> Answer {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.timeoutInterval = 30
        if authorized, let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let json {
            request.httpBody = try JSONSerialization.data(withJSONObject: json, options: [.fragmentsAllowed])
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let body {
            request.httpBody = body
        }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let (data, response) = try await session.data(for: request)
        let http = try #require(response as? HTTPURLResponse)
        var fields: [String: String] = [:]
        for (name, value) in http.allHeaderFields {
            if let name = name as? String, let value = value as? String { fields[name.lowercased()] = value }
        }
        return Answer(status: http.statusCode, headers: fields, body: data)
    }
}

/// Lets a test see redirects instead of following them.
final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
    func urlSession(
        _ session: URLSession,
        task: URLSessionTask,
        willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest,
        completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }
}

/// Every key of the database with a dump of its value: equal fingerprints mean nothing changed.
func redisFingerprint(_ server: LocalRedisServer) async throws -> [String: String] {
    let connection = RedisConnection(configuration: .init(url: server.url))
    defer { connection.close() }
    var cursor = "0"
    var keys: [String] = []
    repeat {
        let reply = try await connection.send(RedisCommand("SCAN", cursor, "COUNT", 1000))
        let parts = reply.array ?? []
        cursor = parts.first?.string ?? "0"
        keys += (parts.last?.array ?? []).compactMap(\.string)
    } while cursor != "0"
    var fingerprint: [String: String] = [:]
    for key in keys {
        let dump = try await connection.send(RedisCommand("DUMP", key))
        fingerprint[key] = dump.bytes.map { Data($0).base64EncodedString() } ?? "\(dump)"
    }
    return fingerprint
}
