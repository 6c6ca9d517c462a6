import ArgumentParser
import Conveyor
import Foundation
import Logging
import RedisClient
import ServiceLifecycle
import UnixSignals

/// `conveyor scheduler`: the recurring-job scheduler alone, without a worker.
struct SchedulerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scheduler",
        abstract: "Run only the recurring-job scheduler (it takes part in the leader election).",
        discussion: """
            Every `conveyor worker` runs the scheduler too (unless --no-scheduler); this command is for nodes that \
            should schedule but not run jobs. SIGTERM or SIGINT stops it and gives up the leadership.

            Example:
              conveyor scheduler --redis redis://10.0.0.5:6379 --lease 10s
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The key namespace.")
    var namespace = "conveyor"

    func validate() throws {
        try JobStoreOptions.validateNamespace(namespace)
        try lease.check("--lease", atLeast: .seconds(1), atMost: .seconds(3600))
    }

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Leader lease length, 1s to 1h." + DurationArgument.hint, valueName: "duration")
    )
    var lease = DurationArgument(argument: "10s")!

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func run() async throws {
        let logger = bootstrapLogging(logLevel)
        let redis = RedisClient(configuration: try connection.clientConfiguration(), logger: logger)
        defer { redis.shutdown() }
        let jobs = JobQueue(
            redis: redis,
            configuration: connection.queueConfiguration(namespace: namespace),
            logger: logger
        )
        let scheduler = Scheduler(queue: jobs, configuration: .init(lease: lease.duration), logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [scheduler],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
    }
}

/// `conveyor leader`: who leads the scheduler.
struct LeaderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leader",
        abstract: "Show which node leads the recurring-job scheduler.",
        discussion: """
            Exit status 0 when a leader holds the lease, 1 when none does.

            Examples:
              conveyor leader
              conveyor leader --json
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The key namespace.")
    var namespace = "conveyor"

    func validate() throws {
        try JobStoreOptions.validateNamespace(namespace)
    }

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() async throws {
        let redis = RedisClient(configuration: try connection.clientConfiguration())
        defer { redis.shutdown() }
        let jobs = await connection.commandQueue(redis, namespace: namespace)
        let leader: LeaderInfo?
        do {
            leader = try await jobs.leader()
        } catch let error as ConveyorError {
            throw CommandFailure(message: error.message)
        }
        guard let leader else {
            if json { print("null") } else { print("no scheduler leader: no node holds the lease") }
            throw ExitCode.failure
        }
        if json {
            let object: [String: any Sendable] = [
                "node": leader.node, "host": leader.info["host"] ?? "", "pid": Int(leader.info["pid"] ?? "") ?? 0,
                "since_ms": Int(leader.since.timeIntervalSince1970 * 1000),
                "expires_at_ms": Int(leader.expiresAt.timeIntervalSince1970 * 1000), "epoch": leader.epoch,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            let since = Int(Date().timeIntervalSince(leader.since))
            print(
                "leader \(leader.node) (host \(leader.info["host"] ?? "?"), pid \(leader.info["pid"] ?? "?")), "
                    + "epoch \(leader.epoch), leading for \(since) s"
            )
        }
    }
}
