public import Conveyor
import Foundation
import HTTPTypes
public import Hummingbird
public import Logging
import NIOCore
public import Prometheus

/// `conveyor serve`: the dashboard, the JSON API and `/metrics`, reading everything from Redis so that any number
/// of these processes behind a load balancer show the same picture.
public struct ConveyorServer: Sendable {
    let jobs: JobQueue
    let configuration: ServeConfiguration
    let logger: Logger
    let exporter: PrometheusExporter

    /// Creates a server.
    ///
    /// - Parameters:
    ///   - jobs: The job queue to show and change (its namespace and connection).
    ///   - configuration: Where to listen and who may use it.
    ///   - metrics: The registry of this process's swift-metrics (see
    ///     ``PrometheusExporter/bootstrapMetricsSystem()``); `nil`: `/metrics` shows the Redis part only.
    ///   - logger: The server's logger.
    /// - Throws: ``ConveyorError`` with ``ConveyorError/Code/invalidArgument`` when open access is asked for on an
    ///   address other than loopback.
    public init(
        jobs: JobQueue,
        configuration: ServeConfiguration,
        metrics: PrometheusCollectorRegistry? = nil,
        logger: Logger = Logger(label: "conveyor.serve")
    ) throws {
        if case .open = configuration.access, !configuration.bindsLoopback {
            throw ConveyorError(
                .invalidArgument,
                "open access (no token, no password) is allowed only on a loopback address, not on \(configuration.host): "
                    + "set CONVEYOR_SERVE_TOKEN or CONVEYOR_SERVE_USER and CONVEYOR_SERVE_PASSWORD"
            )
        }
        self.jobs = jobs
        self.configuration = configuration
        self.logger = logger
        self.exporter = PrometheusExporter(jobs: jobs, registry: metrics ?? PrometheusCollectorRegistry())
    }

    /// The router with every route.
    public func router() -> Router<ServeRequestContext> {
        let access = AccessMiddleware(configuration: configuration)
        let api = ServeAPI(jobs: jobs, configuration: configuration)
        let dashboard = Dashboard(jobs: jobs, configuration: configuration, api: api)
        let router = Router(context: ServeRequestContext.self)
        router.add(middleware: access)
        router.add(middleware: APIFallbackMiddleware())

        router.get("/health") { _, _ in APIResponses.json(["status": "ok"]) }
        HealthRoutes(jobs: jobs).add(to: router)
        exporter.addRoute(to: router)
        router.get("/assets/app.js") { _, _ in
            DashboardAssets.response(DashboardAssets.script, type: "text/javascript; charset=utf-8")
        }
        router.get("/assets/app.css") { _, _ in
            DashboardAssets.response(DashboardAssets.style, type: "text/css; charset=utf-8")
        }

        // Sign-in.
        router.get("/login") { request, context in dashboard.signInPage(request, context) }
        router.post("/login") { request, context in
            let form = (try? await request.body.collect(upTo: 16_384)).map { String(buffer: $0) } ?? ""
            let fields = Self.formFields(form)
            guard access.acceptsSignIn(user: fields["user"] ?? "", secret: fields["secret"] ?? ""),
                let session = access.session
            else { return dashboard.signInPage(request, context, failed: true) }
            let next = QueryParameters(request: request).string("next") ?? "/"
            var response = Response(
                status: .seeOther,
                headers: [.location: next.hasPrefix("/") && !next.hasPrefix("//") ? next : "/"]
            )
            response.setCookie(
                Cookie(
                    name: AccessMiddleware.sessionCookie,
                    value: session.issue(),
                    maxAge: Int(SignedSession.lifetime.components.seconds),
                    path: "/",
                    httpOnly: true,
                    sameSite: .strict
                )
            )
            return response
        }
        router.post("/logout") { _, _ in
            var response = Response(status: .seeOther, headers: [.location: "/login"])
            response.setCookie(
                Cookie(
                    name: AccessMiddleware.sessionCookie,
                    value: "",
                    maxAge: 0,
                    path: "/",
                    httpOnly: true,
                    sameSite: .strict
                )
            )
            return response
        }

        // Pages.
        router.get("/") { request, context in await dashboard.overview(request, context) }
        router.get("/queues/:queue") { request, context in await dashboard.queuePage(request, context) }
        router.get("/jobs/:queue/:id") { request, context in await dashboard.jobPage(request, context) }
        router.get("/schedules") { request, context in await dashboard.schedulesPage(request, context) }
        router.get("/workers") { request, context in await dashboard.workersPage(request, context) }

        // The API.
        router.get("/api/openapi.json") { _, _ in
            DashboardAssets.response(OpenAPIDocument.json, type: "application/json; charset=utf-8")
        }
        router.get("/api/queues") { _, _ in await ServeAPI.answer { try await api.listQueues() } }
        router.get("/api/queues/:queue") { _, context in await ServeAPI.answer { try await api.getQueue(context) } }
        router.post("/api/queues/:queue/pause") { _, context in
            await ServeAPI.answer { try await api.pauseQueue(context, paused: true) }
        }
        router.post("/api/queues/:queue/resume") { _, context in
            await ServeAPI.answer { try await api.pauseQueue(context, paused: false) }
        }
        router.post("/api/queues/:queue/retry-failed") { request, context in
            await ServeAPI.answer { try await api.retryAll(request, context) }
        }
        router.get("/api/queues/:queue/throughput") { request, context in
            await ServeAPI.answer { try await api.throughput(request, context) }
        }
        router.get("/api/queues/:queue/history") { request, context in
            await ServeAPI.answer { try await api.history(request, context) }
        }
        router.get("/api/jobs") { request, _ in await ServeAPI.answer { try await api.listJobs(request) } }
        router.post("/api/jobs") { request, _ in await ServeAPI.answer { try await api.enqueue(request) } }
        router.post("/api/jobs/bulk") { request, _ in await ServeAPI.answer { try await api.enqueueBulk(request) } }
        router.get("/api/jobs/:queue/:id") { _, context in await ServeAPI.answer { try await api.getJob(context) } }
        router.delete("/api/jobs/:queue/:id") { request, context in
            await ServeAPI.answer { try await api.remove(request, context) }
        }
        router.get("/api/jobs/:queue/:id/events") { _, context in
            await ServeAPI.answer { try await api.jobEvents(context) }
        }
        router.post("/api/jobs/:queue/:id/retry") { _, context in await ServeAPI.answer { try await api.retry(context) }
        }
        router.post("/api/jobs/:queue/:id/cancel") { _, context in
            await ServeAPI.answer { try await api.cancel(context) }
        }
        router.get("/api/schedules") { _, _ in await ServeAPI.answer { try await api.listSchedules() } }
        router.post("/api/schedules") { request, _ in await ServeAPI.answer { try await api.addSchedule(request) } }
        router.delete("/api/schedules/:queue/:name") { _, context in
            await ServeAPI.answer { try await api.changeSchedule(context, .remove) }
        }
        router.post("/api/schedules/:queue/:name/pause") { _, context in
            await ServeAPI.answer { try await api.changeSchedule(context, .pause) }
        }
        router.post("/api/schedules/:queue/:name/resume") { _, context in
            await ServeAPI.answer { try await api.changeSchedule(context, .resume) }
        }
        router.post("/api/schedules/:queue/:name/run") { _, context in
            await ServeAPI.answer { try await api.changeSchedule(context, .runNow) }
        }
        router.get("/api/workers") { _, _ in await ServeAPI.answer { try await api.listWorkers() } }
        router.get("/api/leader") { _, _ in await ServeAPI.answer { try await api.leader() } }
        router.get("/api/stats") { _, _ in await ServeAPI.answer { try await api.stats() } }
        router.get("/api/events") { request, _ in
            await ServeAPI.answer {
                try await LiveEvents.response(jobs: jobs, queues: QueryParameters(request: request).strings("queue"))
            }
        }
        return router
    }

    /// Runs the server until the task is cancelled or the service group shuts down.
    ///
    /// - Parameter onListening: Called with the port once the server listens (useful with port 0).
    public func application(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol
    {
        Application(
            router: router(),
            configuration: .init(
                address: .hostname(configuration.host, port: configuration.port),
                serverName: "conveyor"
            ),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            logger: logger
        )
    }

    /// The fields of an `application/x-www-form-urlencoded` body.
    static func formFields(_ body: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            if let name = parts.first { fields[name] = parts.count > 1 ? parts[1] : "" }
        }
        return fields
    }
}
