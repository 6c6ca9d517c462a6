import ArgumentParser
import Foundation
import LocalRedis
import RedisClient

/// `conveyor demo`: the README's run command. Uses `--redis`/`REDIS_URL` when given, else a private
/// `redis-server` it starts and stops.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run Conveyor's demo against Redis (a private redis-server when no URL is given).",
        discussion: """
            Without --redis and without REDIS_URL, starts a private redis-server on a free loopback port \
            (data in a temporary folder), runs the demo against it and stops it.

            Examples:
              conveyor demo
              conveyor demo --redis redis://127.0.0.1:6379
            """
    )

    @Option(help: ArgumentHelp("The Redis server; default $REDIS_URL, else a private redis-server.", valueName: "url"))
    var redis: String?

    func run() async throws {
        let given = redis ?? ProcessInfo.processInfo.environment["REDIS_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if let given {
            try await demo(RedisClient.Configuration(url: try RedisURL(given)))
            return
        }
        print("Starting a private redis-server…")
        let server: LocalRedisServer
        do {
            server = try await LocalRedisServer.start()
        } catch {
            throw CommandFailure(message: "\(error)")
        }
        print("Private redis-server (pid \(server.pid)) listening at \(server.url), data in \(server.directory)")
        do {
            try await demo(RedisClient.Configuration(url: server.url))
            await server.stop()
            print("Stopped the private redis-server.")
        } catch {
            await server.stop()
            throw error
        }
    }

    private func demo(_ configuration: RedisClient.Configuration) async throws {
        let report = try await PingCommand.ping(configuration)
        print(
            "\(report.reply) from \(configuration.url) (Redis \(report.version)) in "
                + String(format: "%.2f ms", report.roundTrip.milliseconds)
        )
    }
}
