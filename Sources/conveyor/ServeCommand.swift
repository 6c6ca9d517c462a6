import ArgumentParser
import Conveyor
import ConveyorServe
import Foundation
import Hummingbird
import Logging
import RedisClient
import ServiceLifecycle
import UnixSignals

/// `conveyor serve`: the web dashboard, the JSON API and `/metrics`.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the web dashboard, the JSON API (/api, described at /api/openapi.json) and /metrics.",
        discussion: """
            Everything is read from Redis, so any number of serve processes (behind a load balancer) show the same. \
            Who may use it: a token from $CONVEYOR_SERVE_TOKEN or --token-file (API: Authorization: Bearer <token>), \
            or a user and password from $CONVEYOR_SERVE_USER and $CONVEYOR_SERVE_PASSWORD or --password-file \
            (API: Basic); browsers sign in on /login. Without a credential it refuses to start, unless \
            --allow-unauthenticated and a loopback --host.

            Examples:
              CONVEYOR_SERVE_TOKEN=$(cat /etc/conveyor/token) conveyor serve --port 8080
              conveyor serve --allow-unauthenticated --read-only
            """
    )

    @OptionGroup var store: JobStoreOptions

    @Option(help: "The address to listen on (a loopback address unless you mean to expose it).")
    var host = "127.0.0.1"

    @Option(parsing: .unconditional, help: "The port, 0-65535 (0: any free port, printed at start).")
    var port = 8080

    @Option(help: ArgumentHelp("Read the token from this file (instead of $CONVEYOR_SERVE_TOKEN).", valueName: "path"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Read the password from this file (user from $CONVEYOR_SERVE_USER).", valueName: "path"))
    var passwordFile: String?

    @Flag(help: "Refuse every change (retry, cancel, pause, …); the dashboard shows no actions.")
    var readOnly = false

    @Flag(help: "Serve without a credential: only on a loopback --host.")
    var allowUnauthenticated = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        try NumberArgument.check(port, "--port", 0...65535)
    }

    /// The access the environment and the flags give.
    func access(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServeConfiguration.Access
    {
        func read(_ path: String) throws -> String {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw CommandFailure(message: "cannot read \(path)", exitCode: .validationFailure)
            }
            let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !secret.isEmpty else {
                throw CommandFailure(message: "\(path) is empty", exitCode: .validationFailure)
            }
            return secret
        }
        if let tokenFile { return .token(try read(tokenFile)) }
        if let token = environment["CONVEYOR_SERVE_TOKEN"], !token.isEmpty { return .token(token) }
        let password = try passwordFile.map(read) ?? environment["CONVEYOR_SERVE_PASSWORD"]
        if let password, !password.isEmpty {
            guard let user = environment["CONVEYOR_SERVE_USER"], !user.isEmpty else {
                throw CommandFailure(
                    message: "a password needs a user: set CONVEYOR_SERVE_USER",
                    exitCode: .validationFailure
                )
            }
            return .user(name: user, password: password)
        }
        guard allowUnauthenticated else {
            throw CommandFailure(
                message: "no credential: set CONVEYOR_SERVE_TOKEN (or --token-file), or CONVEYOR_SERVE_USER and "
                    + "CONVEYOR_SERVE_PASSWORD (or --password-file); --allow-unauthenticated serves without one on a "
                    + "loopback --host only",
                exitCode: .validationFailure
            )
        }
        return .open
    }

    func run() async throws {
        let logger = bootstrapLogging(logLevel)
        let configuration = ServeConfiguration(host: host, port: port, access: try access(), readOnly: readOnly)
        let jobs = try store.connection.processQueue(
            clientName: "conveyor-serve",
            namespace: store.namespace,
            logger: logger
        )
        defer { jobs.redis.shutdown() }
        let server: ConveyorServer
        do {
            server = try ConveyorServer(
                jobs: jobs,
                configuration: configuration,
                metrics: PrometheusExporter.bootstrapMetricsSystem(),
                logger: logger
            )
        } catch let error as ConveyorError {
            throw CommandFailure(message: error.message, exitCode: .validationFailure)
        }
        let host = self.host
        let application = server.application { port in
            print("conveyor serve: listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port)")
            fflush(nil)
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [application],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}
