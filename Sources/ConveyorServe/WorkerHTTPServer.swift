import Conveyor
import Foundation
import Hummingbird
public import Logging

/// The small HTTP server of `conveyor worker --metrics-port N`: `GET /metrics` (see ``PrometheusExporter``),
/// `GET /health/live` and `GET /health/ready` (see ``HealthRoutes``). It has no authentication, shows no job
/// payloads, and listens on 127.0.0.1 unless told otherwise.
public struct WorkerHTTPServer: Sendable {
    let exporter: PrometheusExporter
    let health: HealthRoutes
    let host: String
    let port: Int
    let logger: Logger

    /// Creates the server.
    ///
    /// - Parameters:
    ///   - exporter: What `/metrics` answers.
    ///   - health: The readiness probe.
    ///   - host: The address to listen on.
    ///   - port: The port (0: any free port, see `onListening` of ``run(onListening:)``).
    ///   - logger: The server's logger.
    public init(exporter: PrometheusExporter, health: HealthRoutes, host: String, port: Int, logger: Logger) {
        self.exporter = exporter
        self.health = health
        self.host = host
        self.port = port
        self.logger = logger
    }

    /// The router with every route.
    func router() -> Router<BasicRequestContext> {
        let router = Router()
        exporter.addRoute(to: router)
        health.add(to: router)
        return router
    }

    /// Serves until the task is cancelled.
    ///
    /// - Parameter onListening: Called with the port once the server listens.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let application = Application(
            router: router(),
            configuration: .init(address: .hostname(host, port: port), serverName: "conveyor-worker"),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger
        )
        try await application.runService(gracefulShutdownSignals: [])
    }
}
