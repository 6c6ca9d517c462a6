import ArgumentParser
import Conveyor
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// The options of a worker process, shared by `conveyor worker`, `conveyor dev` and `conveyor demo`.
struct WorkerOptions: ParsableArguments {
    @Option(name: .customLong("queue"), help: "A queue to serve; repeat in priority order (default: default).")
    var queues: [String] = []

    @Option(
        name: .customLong("exec"),
        help: ArgumentHelp("A handler: TYPE=COMMAND (repeatable).", valueName: "type=command")
    )
    var commands: [String] = []

    @Option(parsing: .unconditional, help: "Jobs run at once, 1-10000.")
    var concurrency = 10

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Lease per claim, renewed by heartbeats; 1s to 1d." + DurationArgument.hint,
            valueName: "duration"
        )
    )
    var lease = DurationArgument(argument: "30s")!

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Lease renewal interval, at least 100ms and shorter than the lease (default: a third of the lease, at "
                + "most 10s; a longer one is cut to a third of the lease)." + DurationArgument.hint,
            valueName: "duration"
        )
    )
    var heartbeat: DurationArgument?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "How often expired leases are reclaimed; 100ms to 1d." + DurationArgument.hint,
            valueName: "duration"
        )
    )
    var reclaim = DurationArgument(argument: "15s")!

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "How long running jobs may finish after SIGTERM, at most 1d." + DurationArgument.hint,
            valueName: "duration"
        )
    )
    var grace = DurationArgument(argument: "25s")!

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Time limit per attempt when the job sets none, at most 30d." + DurationArgument.hint,
            valueName: "duration"
        )
    )
    var timeout: DurationArgument?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "How long a command gets after SIGTERM before SIGKILL, at most 1h." + DurationArgument.hint,
            valueName: "duration"
        )
    )
    var killGrace = DurationArgument(argument: "5s")!

    @Option(parsing: .unconditional, help: "Lease expiries a job may have before it fails, 0-1000.")
    var maxStalls = 3

    @Flag(help: "Also run the built-in example handlers: sleep ({\"ms\": N}), echo and fail.")
    var exampleHandlers = false

    @Flag(help: "Do not run the embedded recurring-job scheduler (by default every worker takes part in the election).")
    var noScheduler = false

    @Flag(
        help: ArgumentHelp(
            "Run even when Redis may evict keys (a maxmemory-policy other than noeviction).",
            discussion:
                "Evicting Redis deletes acknowledged jobs under memory pressure; without this the worker refuses to start."
        )
    )
    var allowEviction = false

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Lease of the embedded scheduler's leader election; 1s to 1h." + DurationArgument.hint,
            valueName: "duration"
        )
    )
    var schedulerLease = DurationArgument(argument: "10s")!

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        try validateTimings()
        var types: Set<String> = []
        for command in commands {
            let parts = command.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError("--exec '\(command)' must be TYPE=COMMAND, for example send_email=./send.sh")
            }
            guard JobTypeArgument.isValid(parts[0]) else {
                throw ValidationError(
                    "--exec '\(command)': the job type '\(parts[0])' must be \(JobTypeArgument.rule) (no job can "
                        + "have another type), for example send_email=./send.sh"
                )
            }
            guard types.insert(parts[0]).inserted else {
                throw ValidationError("--exec \(parts[0]) given twice: give one command per job type")
            }
            if let problem = Self.programProblem(parts[1]) {
                throw ValidationError("--exec \(parts[0]): \(problem)")
            }
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be trace, debug, info, notice, warning, error or critical")
        }
    }

    /// Refuses counts and durations out of range, naming the flag, before anything connects to Redis; the library's
    /// own check (``Worker/Configuration/validate()``) then agrees.
    func validateTimings() throws {
        let limits = Worker.Configuration.self
        try NumberArgument.check(concurrency, "--concurrency", limits.concurrencyRange)
        try NumberArgument.check(maxStalls, "--max-stalls", limits.maxStallsRange)
        try lease.check("--lease", atLeast: limits.leaseRange.lowerBound, atMost: limits.leaseRange.upperBound)
        if let heartbeat {
            guard heartbeat.milliseconds < lease.milliseconds else {
                throw ValidationError(
                    "--heartbeat must be shorter than --lease (\(lease.text)), not \(heartbeat.text): a lease must "
                        + "be renewed before it runs out"
                )
            }
            try heartbeat.check("--heartbeat", atLeast: limits.shortestHeartbeat, atMost: lease.duration)
        }
        try reclaim.check("--reclaim", atLeast: limits.reclaimRange.lowerBound, atMost: limits.reclaimRange.upperBound)
        try grace.check("--grace", atMost: limits.longestGracePeriod)
        try timeout?.check("--timeout", atLeast: .milliseconds(1), atMost: limits.longestTimeout)
        try killGrace.check("--kill-grace", atMost: .seconds(3600))
        try schedulerLease.check("--scheduler-lease", atLeast: .seconds(1), atMost: .seconds(3600))
        do {
            try configuration.validate()
        } catch let error as ConveyorError {
            throw ValidationError(error.message)
        }
    }

    /// What is wrong with the program a command line starts, or `nil` when it can be run (or cannot be checked
    /// without running the shell: builtins, variables, quoting).
    static func programProblem(_ command: String) -> String? {
        let words = command.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        // Skip leading VAR=value assignments.
        guard let programIndex = words.firstIndex(where: { !$0.contains("=") }) else { return nil }
        let program = words[programIndex]
        if let problem = scriptProblem(program, Array(words[(programIndex + 1)...])) { return problem }
        let plain = program.allSatisfy { $0.isLetter || $0.isNumber || "_./+-@,".contains($0) }
        let shellWords: Set<String> = [
            ".", ":", "[", "cd", "command", "echo", "eval", "exec", "exit", "export", "false", "printf", "read",
            "set", "test", "true", "trap", "ulimit", "umask", "unset", "wait",
        ]
        guard plain, !shellWords.contains(program) else { return nil }
        let files = FileManager.default
        if program.contains("/") {
            var isDirectory: ObjCBool = false
            guard files.fileExists(atPath: program, isDirectory: &isDirectory), !isDirectory.boolValue else {
                return "'\(program)' does not exist (relative paths start from \(files.currentDirectoryPath))"
            }
            guard files.isExecutableFile(atPath: program) else {
                return "'\(program)' is not executable: chmod +x it, or write 'sh \(program)'"
            }
            return nil
        }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for folder in path.split(separator: ":") where files.isExecutableFile(atPath: "\(folder)/\(program)") {
            return nil
        }
        return "'\(program)' is not a command in PATH (\(path)); give its path"
    }

    /// What is wrong with the script an interpreter is given (`sh ./send.sh`, `python3 report.py`), or `nil`.
    static func scriptProblem(_ program: String, _ arguments: [String]) -> String? {
        let interpreters: Set<String> = ["sh", "bash", "dash", "zsh", "python3", "python", "perl", "ruby", "node"]
        let name = String(program.split(separator: "/").last ?? "")
        // With -c or -m the next word is code or a module, not a file.
        guard interpreters.contains(name), !arguments.contains("-c"), !arguments.contains("-m"),
            let script = arguments.first(where: { !$0.hasPrefix("-") }),
            script.allSatisfy({ $0.isLetter || $0.isNumber || "_./+-@,".contains($0) }),
            script.contains("/") || [".sh", ".py", ".pl", ".rb", ".js"].contains(where: { script.hasSuffix($0) })
        else { return nil }
        guard FileManager.default.fileExists(atPath: script) else {
            let folder = FileManager.default.currentDirectoryPath
            return "the script '\(script)' does not exist (relative paths start from \(folder))"
        }
        return nil
    }

    /// The handlers: one command per `--exec`, plus the examples when asked for.
    func handlers(examples: Bool = false) -> JobHandlers {
        var handlers = JobHandlers()
        for entry in commands {
            let parts = entry.split(separator: "=", maxSplits: 1)
            handlers.registerCommand(String(parts[0]), command: String(parts[1]), killGrace: killGrace.duration)
        }
        if exampleHandlers || examples { ExampleHandlers.register(into: &handlers) }
        return handlers
    }

    /// The worker's configuration.
    var configuration: Worker.Configuration {
        var configuration = Worker.Configuration(
            queues: queues.isEmpty ? nil : queues,
            concurrency: concurrency,
            lease: lease.duration,
            reclaimInterval: reclaim.duration,
            gracePeriod: grace.duration,
            maxStalls: maxStalls,
            defaultTimeout: timeout?.duration,
            runsScheduler: !noScheduler,
            schedulerLease: schedulerLease.duration
        )
        if let heartbeat { configuration.heartbeatInterval = min(heartbeat.duration, lease.duration / 3) }
        return configuration
    }

    /// Runs a worker (with its embedded scheduler, unless `--no-scheduler`) on `jobs` until SIGTERM or SIGINT, while
    /// `alongside` runs too (it is told whether the worker is shutting down, and cancelled once it has). The first
    /// signal shuts down gracefully; a second one ends the grace period at once.
    func run(
        jobs: JobQueue,
        handlers: JobHandlers,
        logger: Logger,
        alongside: (@Sendable (_ isStopping: @escaping @Sendable () -> Bool) async throws -> Void)? = nil
    ) async throws {
        if let warning = await jobs.evictionWarning() {
            guard allowEviction else {
                throw CommandFailure(message: warning + "; or start the worker with --allow-eviction to run anyway")
            }
            logger.warning("\(warning)")
        }
        // The worker runs the scheduler itself (Worker.Configuration.runsScheduler), so it is the group's only
        // service: the first signal shuts it down, scheduler included, and a second one (which ends the worker's
        // grace) always finds it shutting down. With the scheduler a separate service, a worker that stopped while the
        // scheduler was still letting go of its lease was "a service that finished unexpectedly" (exit 1).
        let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(services: [worker], logger: logger))
        let stopping = StopFlag()
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                var received = 0
                for await _ in await UnixSignalsSequence(trapping: .sigterm, .sigint) {
                    received += 1
                    if received == 1 {
                        stopping.set()
                        await group.triggerGracefulShutdown()
                    } else {
                        worker.shutdown(gracePeriod: .zero)
                    }
                }
            }
            if let alongside {
                tasks.addTask {
                    do {
                        try await alongside { stopping.isSet }
                    } catch is CancellationError {
                    } catch {
                        logger.error("\(error)")
                    }
                }
            }
            try await group.run()
            tasks.cancelAll()
        }
    }
}

/// Set once a shutdown starts.
private final class StopFlag: Sendable {
    private let state = Mutex(false)

    func set() { state.withLock { $0 = true } }

    var isSet: Bool { state.withLock { $0 } }
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
