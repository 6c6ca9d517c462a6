import ArgumentParser
import Conveyor
import Foundation
import Logging
import RedisClient

/// The `conveyor` command-line tool.
@main
struct ConveyorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conveyor",
        abstract: "Conveyor: a distributed job scheduler for Swift, backed by Redis.",
        discussion: """
            Exit codes: 0 success; 1 the operation failed (for example Redis is unreachable); \
            64 the command line or a value in it is invalid.
            """,
        version: "conveyor \(ConveyorVersion.current)",
        subcommands: [
            PingCommand.self, InstallCommand.self, DevCommand.self, EnqueueCommand.self, EnqueueManyCommand.self,
            GetCommand.self,
            ListCommand.self, WaitCommand.self,
            CancelCommand.self, RetryCommand.self, RemoveCommand.self, PauseCommand.self, ResumeCommand.self,
            ConfigureCommand.self,
            StatsCommand.self, TailCommand.self, WorkersCommand.self, CleanupCommand.self, ScheduleCommand.self,
            WorkerCommand.self,
            SchedulerCommand.self, LeaderCommand.self, DemoCommand.self, DoctorCommand.self, ServeCommand.self,
        ]
    )

    static func main() async {
        ignoreBrokenPipes()
        do {
            var command = try parseAsRoot(movingGlobalOptions(Array(CommandLine.arguments.dropFirst())))
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as RedisClientError {
            fail(error.message, code: error.code == .invalidURL ? .validationFailure : .failure)
        } catch let error as CommandFailure {
            fail(error.message, code: error.exitCode)
        } catch {
            exit(withError: error)
        }
    }

    /// Lets the options every command shares come before the command too (`conveyor --redis URL stats`): moves
    /// leading `--redis`, `--redis-timeout`, `--namespace` and `--json` to just after the command's name.
    static func movingGlobalOptions(_ arguments: [String]) -> [String] {
        let valued: Set<String> = ["--redis", "--redis-timeout", "--namespace"]
        var globals: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
            if valued.contains(name) {
                let width = argument.contains("=") ? 1 : 2
                globals += arguments[index..<min(index + width, arguments.count)]
                index += width
            } else if argument == "--json" {
                globals.append(argument)
                index += 1
            } else {
                break
            }
        }
        guard !globals.isEmpty else { return arguments }
        var rest = Array(arguments[index...])
        // After the command's name: one word, or two for the groups (`schedule add`).
        var path = rest.first.map { $0.hasPrefix("-") ? 0 : 1 } ?? 0
        if path == 1, rest[0] == "schedule", rest.count > 1, !rest[1].hasPrefix("-") { path = 2 }
        rest.insert(contentsOf: globals, at: path)
        return rest
    }

    /// Prints `conveyor: <message>` on one line to standard error and exits.
    static func fail(_ message: String, code: ExitCode) -> Never {
        let line = "conveyor: " + message.replacingOccurrences(of: "\n", with: " ") + "\n"
        FileHandle.standardError.write(Data(line.utf8))
        Foundation.exit(code.rawValue)
    }
}

/// A failure that ends a command with a one-line message and an exit code.
struct CommandFailure: Error {
    var message: String
    var exitCode: ExitCode = .failure
}

/// Sends logs to standard error at a level (`info` when the name is unknown) and returns the CLI's logger; only the
/// executable bootstraps logging, never the libraries.
func bootstrapLogging(_ levelName: String) -> Logger {
    let level = Logger.Level(rawValue: levelName) ?? .info
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    return Logger(label: "conveyor")
}

/// Ignores SIGPIPE: a write to a closed socket or pipe must fail, not kill the process.
func ignoreBrokenPipes() {
    signal(SIGPIPE, SIG_IGN)
}

/// Options every command that talks to Redis takes.
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The Redis server: redis://[[user]:password@]host[:port][/db] or unix:///path?db=N.",
            discussion: """
                Defaults to $REDIS_URL, else redis://127.0.0.1:6379. rediss:// is TLS; \
                redis+sentinel://host[:port][,host…]/master-name follows Sentinel; \
                redis+cluster://host[:port][,host…] routes by slot over a Redis Cluster.
                """,
            valueName: "url"
        )
    )
    var redis: String?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Seconds to wait for a connection or a reply from Redis, 0.001 to 3600.",
            valueName: "seconds"
        )
    )
    var redisTimeout: Double = 2

    @Flag(
        help: ArgumentHelp(
            "Install Conveyor's function library when Redis lacks it or holds another version.",
            discussion: """
                Needs FUNCTION LOAD, so only for set-ups where every client is trusted; otherwise run \
                'conveyor install' once per release with an admin credential. Also on when \
                CONVEYOR_INSTALL_LIBRARY=1.
                """
        )
    )
    var installLibrary = false

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Replicas that must hold each enqueued job, outcome and fire before it counts as done (Redis WAIT), 1-1000.",
            discussion:
                "An enqueue that fewer replicas acknowledge within --wait-timeout fails (the job stays stored).",
            valueName: "n"
        )
    )
    var waitReplicas: Int?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Seconds --wait-replicas waits, 0.001 to 60.", valueName: "seconds")
    )
    var waitTimeout: Double = 1

    /// `--install-library`, or `CONVEYOR_INSTALL_LIBRARY=1`.
    var installsLibrary: Bool {
        installLibrary || ProcessInfo.processInfo.environment["CONVEYOR_INSTALL_LIBRARY"] == "1"
    }

    /// A job queue for a one-shot command on `redis`: it logs nothing (standard output may be JSON for a program),
    /// and a Redis that may evict jobs is named once, on standard error.
    func commandQueue(_ redis: RedisClient, namespace: String) async -> JobQueue {
        let jobs = JobQueue(
            redis: redis,
            configuration: queueConfiguration(namespace: namespace),
            logger: Logger(label: "conveyor", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        if let warning = await jobs.evictionWarning() {
            FileHandle.standardError.write(Data("conveyor: warning: \(warning)\n".utf8))
        }
        if let bad = try? await jobs.unusableQueueNames(), !bad.isEmpty {
            let quoted = bad.map { "'\($0)'" }
            let warning =
                "\(namespace):queues holds \(bad.count == 1 ? "an entry that is" : "entries that are") no queue name, "
                + "skipped: \(quoted.joined(separator: ", ")); remove with redis-cli SREM \(namespace):queues "
                + quoted.joined(separator: " ")
            FileHandle.standardError.write(Data("conveyor: warning: \(warning)\n".utf8))
        }
        return jobs
    }

    /// A job queue's settings for this connection: the namespace, and whether it may install the library.
    func queueConfiguration(namespace: String) -> JobQueue.Configuration {
        var configuration = JobQueue.Configuration(namespace: namespace, installsLibrary: installsLibrary)
        if let waitReplicas {
            configuration.replicaAcknowledgement = ReplicaAcknowledgement(
                replicas: waitReplicas,
                timeout: .milliseconds(Int64((waitTimeout * 1000).rounded()))
            )
        }
        return configuration
    }

    /// The shortest and longest `--redis-timeout`, in seconds.
    static let redisTimeoutRange = 0.001...3600.0

    func validate() throws {
        guard Self.redisTimeoutRange.contains(redisTimeout) else {
            throw ValidationError("--redis-timeout must be from 0.001 to 3600 seconds, not \(redisTimeout)")
        }
        if let waitReplicas {
            try NumberArgument.check(waitReplicas, "--wait-replicas", 1...1000)
        }
        guard (0.001...60).contains(waitTimeout) else {
            throw ValidationError("--wait-timeout must be from 0.001 to 60 seconds, not \(waitTimeout)")
        }
    }

    /// The URL from `--redis`, else `REDIS_URL`, else the default.
    func url() throws -> RedisURL {
        if let redis { return try RedisURL(redis) }
        return try RedisURL.fromEnvironment()
    }

    /// The job queue of a long-running process (`worker`, `serve`): a client named `clientName` whose commands may
    /// take 10 s (a worker's batched calls, a page's reads under load), on `namespace`. Shut its client down at the end.
    func processQueue(clientName: String, namespace: String, logger: Logger) throws -> JobQueue {
        var configuration = try clientConfiguration()
        configuration.clientName = clientName
        configuration.commandTimeout = .seconds(10)
        return JobQueue(
            redis: RedisClient(configuration: configuration, logger: logger),
            configuration: queueConfiguration(namespace: namespace),
            logger: logger
        )
    }

    /// Client settings for the chosen server and timeout.
    func clientConfiguration() throws -> RedisClient.Configuration {
        try validate()
        let duration = Duration.milliseconds(Int64((redisTimeout * 1000).rounded()))
        return RedisClient.Configuration(
            url: try url(),
            connectTimeout: duration,
            commandTimeout: duration,
            clientName: "conveyor-cli"
        )
    }
}
