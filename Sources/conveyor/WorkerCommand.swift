import ArgumentParser
import Conveyor
import ConveyorServe
import Foundation
import Logging
import RedisClient

/// `conveyor worker`: runs a worker whose handlers are external commands.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run jobs from Redis with external commands as handlers.",
        discussion: """
            Each --exec TYPE=COMMAND runs COMMAND through /bin/sh for jobs of TYPE. The command gets the job as \
            JSON on standard input and in CONVEYOR_JOB_ID, CONVEYOR_JOB_TYPE, CONVEYOR_QUEUE and CONVEYOR_ATTEMPT; \
            what it prints on standard output (JSON, or nothing) becomes the result; a non-zero exit fails the \
            attempt with the end of its standard error as the error (exit 65: fail without retrying). On a timeout, \
            a cancel or a shutdown it gets SIGTERM, then SIGKILL.

            SIGTERM or SIGINT shuts the worker down gracefully: it stops claiming, lets running jobs finish within \
            --grace, gives the rest back to pending, and exits 0. A second signal ends the grace period at once.

            With --metrics-port N the worker serves GET /metrics (Prometheus text: this process's job counters and \
            histograms, and its queues' state in Redis), GET /health/live and GET /health/ready (200 when Redis \
            answers with this build's function library, 503 otherwise and while shutting down), without \
            authentication, on --metrics-host (127.0.0.1 by default).

            Examples:
              conveyor worker --queue emails --exec send_email=./send.sh --concurrency 8
              conveyor worker --queue critical --queue default --exec report='python3 report.py' --timeout 5m
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The key namespace.")
    var namespace = "conveyor"

    @OptionGroup var worker: WorkerOptions

    @Option(
        parsing: .unconditional,
        help:
            "Serve /metrics, /health/live and /health/ready on this port, 0-65535 (0: any free port, printed at start)."
    )
    var metricsPort: Int?

    @Option(help: "The address the metrics port listens on.")
    var metricsHost = "127.0.0.1"

    func validate() throws {
        try JobStoreOptions.validateNamespace(namespace)
        guard !worker.commands.isEmpty || worker.exampleHandlers else {
            throw ValidationError("give at least one handler: --exec TYPE=COMMAND (or --example-handlers)")
        }
        if let metricsPort, !(0...65535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be 0-65535, not \(metricsPort)")
        }
        guard !metricsHost.isEmpty else { throw ValidationError("--metrics-host must not be empty") }
    }

    func run() async throws {
        let logger = bootstrapLogging(worker.logLevel)
        let jobs = try connection.processQueue(clientName: "conveyor-worker", namespace: namespace, logger: logger)
        defer { jobs.redis.shutdown() }
        guard let metricsPort else {
            try await worker.run(jobs: jobs, handlers: worker.handlers(), logger: logger)
            return
        }
        // Bootstrapped before the worker makes its first metric handle.
        let registry = PrometheusExporter.bootstrapMetricsSystem()
        let exporter = PrometheusExporter(
            jobs: jobs,
            registry: registry,
            queues: worker.queues.isEmpty ? nil : worker.queues
        )
        let host = metricsHost
        try await worker.run(jobs: jobs, handlers: worker.handlers(), logger: logger) { isStopping in
            let server = WorkerHTTPServer(
                exporter: exporter,
                health: HealthRoutes(jobs: jobs, isStopping: isStopping),
                host: host,
                port: metricsPort,
                logger: logger
            )
            try await server.run { port in
                print("conveyor worker: metrics on http://\(host.contains(":") ? "[\(host)]" : host):\(port)/metrics")
                fflush(nil)
            }
        }
    }
}
