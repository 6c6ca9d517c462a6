import ArgumentParser
import Foundation
import RedisClient

/// `conveyor ping`: checks that Redis answers, and shows its version and the round-trip time.
struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Check that Redis answers; print its reply, version and round-trip time.",
        discussion: """
            Examples:
              conveyor ping
              conveyor ping --redis redis://:secret@10.0.0.5:6379/2
              REDIS_URL=unix:///var/run/redis/redis.sock conveyor ping --json
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() async throws {
        let configuration = try connection.clientConfiguration()
        let report = try await Self.ping(configuration)
        if json {
            let object: [String: any Sendable] = [
                "url": "\(configuration.url)", "reply": report.reply, "version": report.version,
                "round_trip_ms": report.roundTrip.milliseconds,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(
                "\(report.reply) from \(configuration.url) (Redis \(report.version)) in "
                    + String(format: "%.2f ms", report.roundTrip.milliseconds)
            )
        }
    }

    /// What one ping found out.
    struct Report {
        var reply: String
        var version: String
        var roundTrip: Duration
    }

    /// Connects, pings and reads the server version.
    static func ping(_ configuration: RedisClient.Configuration) async throws -> Report {
        let connection = RedisConnection(configuration: configuration)
        defer { connection.close() }
        // The first command connects; time a second one for a fair round trip.
        let first = try await connection.send("PING")
        if let message = first.errorMessage {
            throw CommandFailure(message: "Redis at \(configuration.url) answered PING with an error: \(message)")
        }
        let clock = ContinuousClock()
        let started = clock.now
        let reply = try await connection.send("PING")
        let roundTrip = clock.now - started
        let info = try await connection.send("INFO", "server").string ?? ""
        let version =
            info.split(whereSeparator: \.isNewline)
            .first { $0.hasPrefix("redis_version:") }
            .map { String($0.dropFirst("redis_version:".count)) } ?? "unknown version"
        return Report(reply: reply.string ?? reply.description, version: version, roundTrip: roundTrip)
    }
}
