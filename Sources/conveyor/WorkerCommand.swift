import ArgumentParser
import Conveyor
import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import UnixSignals

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

            Examples:
              conveyor worker --queue emails --exec send_email=./send.sh --concurrency 8
              conveyor worker --queue critical --queue default --exec report='python3 report.py' --timeout 5m
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The key namespace.")
    var namespace = "conveyor"

    @Option(name: .customLong("queue"), help: "A queue to serve; repeat in priority order (default: default).")
    var queues: [String] = []

    @Option(
        name: .customLong("exec"),
        help: ArgumentHelp("A handler: TYPE=COMMAND (repeatable).", valueName: "type=command")
    )
    var commands: [String] = []

    @Option(help: "Jobs run at once.")
    var concurrency = 10

    @Option(help: ArgumentHelp("Lease per claim, renewed by heartbeats.", valueName: "duration"))
    var lease = DurationArgument(argument: "30s")!

    @Option(
        help: ArgumentHelp(
            "Lease renewal interval (default: a third of the lease, at most 10s).",
            valueName: "duration"
        )
    )
    var heartbeat: DurationArgument?

    @Option(help: ArgumentHelp("How often expired leases are reclaimed.", valueName: "duration"))
    var reclaim = DurationArgument(argument: "15s")!

    @Option(help: ArgumentHelp("How long running jobs may finish after SIGTERM.", valueName: "duration"))
    var grace = DurationArgument(argument: "25s")!

    @Option(help: ArgumentHelp("Time limit per attempt when the job sets none.", valueName: "duration"))
    var timeout: DurationArgument?

    @Option(help: ArgumentHelp("How long a command gets after SIGTERM before SIGKILL.", valueName: "duration"))
    var killGrace = DurationArgument(argument: "5s")!

    @Option(help: "Lease expiries a job may have before it fails.")
    var maxStalls = 3

    @Flag(help: "Also run the built-in example handlers: sleep ({\"ms\": N}), echo and fail.")
    var exampleHandlers = false

    @Flag(help: "Do not run the embedded recurring-job scheduler (by default every worker takes part in the election).")
    var noScheduler = false

    @Option(help: ArgumentHelp("Lease of the embedded scheduler's leader election.", valueName: "duration"))
    var schedulerLease = DurationArgument(argument: "10s")!

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard !commands.isEmpty || exampleHandlers else {
            throw ValidationError("give at least one handler: --exec TYPE=COMMAND (or --example-handlers)")
        }
        for command in commands where !command.contains("=") || command.hasPrefix("=") || command.hasSuffix("=") {
            throw ValidationError("--exec '\(command)' must be TYPE=COMMAND, for example send_email=./send.sh")
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
        }
    }

    func run() async throws {
        let logger = bootstrapLogging(logLevel)
        var clientConfiguration = try connection.clientConfiguration()
        clientConfiguration.clientName = "conveyor-worker"
        clientConfiguration.commandTimeout = .seconds(10)
        let redis = RedisClient(configuration: clientConfiguration, logger: logger)
        defer { redis.shutdown() }
        let jobs = JobQueue(redis: redis, configuration: .init(namespace: namespace), logger: logger)

        var handlers = JobHandlers()
        for entry in commands {
            let parts = entry.split(separator: "=", maxSplits: 1)
            handlers.registerCommand(String(parts[0]), command: String(parts[1]), killGrace: killGrace.duration)
        }
        if exampleHandlers { ExampleHandlers.register(into: &handlers) }

        var configuration = Worker.Configuration(
            queues: queues.isEmpty ? ["default"] : queues,
            concurrency: concurrency,
            lease: lease.duration,
            reclaimInterval: reclaim.duration,
            gracePeriod: grace.duration,
            maxStalls: maxStalls,
            defaultTimeout: timeout?.duration
        )
        if let heartbeat { configuration.heartbeatInterval = min(heartbeat.duration, lease.duration / 3) }
        let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration, logger: logger)
        var services: [any Service] = [worker]
        if !noScheduler {
            services.append(
                Scheduler(queue: jobs, configuration: .init(lease: schedulerLease.duration), logger: logger)
            )
        }
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: services, logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                // First SIGTERM/SIGINT: graceful shutdown; second: no more grace.
                var received = 0
                for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    received += 1
                    if received == 1 {
                        await group.triggerGracefulShutdown()
                    } else {
                        worker.shutdown(gracePeriod: .zero)
                    }
                }
            }
            try await group.run()
            tasks.cancelAll()
        }
    }
}

/// Built-in handlers for trying Conveyor and for tests: `sleep`, `echo` and `fail`.
enum ExampleHandlers {
    struct Sleep: Codable, Sendable {
        var ms: Int
    }

    static func register(into handlers: inout JobHandlers) {
        handlers.register("sleep") { (payload: Sleep, context: JobContext) -> [String: Int] in
            try await Task.sleep(for: .milliseconds(payload.ms))
            return ["slept_ms": payload.ms, "attempt": context.attempt]
        }
        handlers.registerJSON("echo") { context in context.job.payload }
        handlers.registerJSON("fail") { context in
            throw JobFailure("failing on purpose (attempt \(context.attempt))")
        }
    }
}
