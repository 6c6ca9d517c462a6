import ArgumentParser
import Conveyor
import Foundation
import RedisClient

/// `conveyor workers`: the live worker processes.
struct WorkersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers",
        abstract: "List the live worker processes.",
        discussion: "Example:\n  conveyor workers --json"
    )

    @OptionGroup var store: JobStoreOptions

    func run() async throws {
        let workers = try await store.withJobs { jobs in try await jobs.workers() }
        if store.json {
            print(
                try JobOutput.json(
                    workers.map {
                        [
                            "id": $0.id, "host": $0.host, "pid": $0.pid, "queues": $0.queues,
                            "concurrency": $0.concurrency,
                            "in_flight": $0.inFlight, "started_at": Int($0.startedAt.timeIntervalSince1970 * 1000),
                            "last_heartbeat": Int($0.lastHeartbeat.timeIntervalSince1970 * 1000),
                        ] as [String: Any]
                    }
                )
            )
            return
        }
        if workers.isEmpty {
            print("no live workers")
            return
        }
        Terminal.table(
            ["ID", "HOST", "PID", "QUEUES", "RUNNING", "STARTED", "HEARTBEAT"],
            workers.map {
                [
                    $0.id, $0.host, String($0.pid), $0.queues.joined(separator: ","),
                    "\($0.inFlight.count)/\($0.concurrency)", JobOutput.when($0.startedAt),
                    JobOutput.relative($0.lastHeartbeat),
                ]
            }
        )
    }
}

/// `conveyor cleanup`: deletes old finished jobs.
struct CleanupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Delete finished jobs older than a duration.",
        discussion:
            "Examples:\n  conveyor cleanup --older-than 7d\n  conveyor cleanup --status failed --queue emails --older-than 30d"
    )

    @OptionGroup var store: JobStoreOptions
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "Finished longer ago than this, at most 3650d." + DurationArgument.hint,
            valueName: "duration"
        )
    ) var olderThan = DurationArgument(argument: "7d")!
    @Option(help: "completed, failed or cancelled.") var status = "completed"
    @Option(help: "One queue (default: every queue).") var queue: String?

    func validate() throws {
        try olderThan.check("--older-than", atMost: DurationArgument.farthest)
    }

    func run() async throws {
        guard let state = JobStatus(rawValue: status), state.isFinished else {
            throw CommandFailure(
                message: "--status must be completed, failed or cancelled, not '\(status)'",
                exitCode: .validationFailure
            )
        }
        let removed = try await store.withJobs { jobs in
            let queues: [String]
            if let queue {
                try await JobStoreOptions.requireKnown(queue, in: jobs)
                queues = [queue]
            } else {
                queues = try await jobs.queues()
            }
            var candidates = 0
            for name in queues {
                candidates += try await jobs.cleanupCount(queue: name, status: state, olderThan: olderThan.duration)
            }
            let bar = ProgressBar(label: "removing", total: candidates)
            defer { bar.finish() }
            var total = 0
            for name in queues {
                let before = total
                total += try await jobs.cleanup(queue: name, status: state, olderThan: olderThan.duration) {
                    bar.update(before + $0)
                }
            }
            return total
        }
        print(store.json ? try JobOutput.json(["removed": removed]) : "removed \(removed) \(state.rawValue) jobs")
    }
}

/// `conveyor schedule add|list|remove|pause|resume`.
struct ScheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Manage recurring jobs.",
        subcommands: [Add.self, List.self, Remove.self, Pause.self, Resume.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add or update a recurring job.",
            discussion: """
                Examples:
                  conveyor schedule add nightly-report report --cron '0 3 * * *' --tz Europe/Berlin
                  conveyor schedule add heartbeat ping --every 30s --payload '{"source":"cron"}'
                """
        )
        @OptionGroup var store: JobStoreOptions
        @Argument(help: "The schedule's name.") var name: String
        @Argument(help: "The job type.") var type: String
        @Option(
            parsing: .unconditional,
            help: ArgumentHelp("Fire every this long, 1s to 3650d." + DurationArgument.hint, valueName: "duration")
        ) var every: DurationArgument?
        @Option(help: "Fire on this cron expression.") var cron: String?
        @Option(help: "The time zone of the cron expression (default: UTC).") var tz: String?
        @Option(help: "The payload of every job, as JSON.") var payload = "{}"
        @Option(help: "The queue.") var queue = "default"

        func validate() throws {
            // The shortest interval is the library's to check (Schedule.minimumInterval), with its own message.
            try every?.check("--every", atMost: DurationArgument.farthest)
        }

        func run() async throws {
            let rule: Schedule.Rule
            switch (every, cron) {
            case (let every?, nil):
                guard tz == nil else {
                    throw CommandFailure(
                        message: "--tz goes with --cron; an --every interval does not depend on a time zone",
                        exitCode: .validationFailure
                    )
                }
                rule = .every(every.duration)
            case (nil, let cron?):
                do {
                    rule = .cron(try CronExpression(cron), timeZone: try Schedule.timeZone(tz ?? "UTC"))
                } catch let error as ConveyorError {
                    throw CommandFailure(message: error.message, exitCode: .validationFailure)
                }
            default: throw CommandFailure(message: "give --every or --cron (one of them)", exitCode: .validationFailure)
            }
            let outcome = try await store.withJobs { jobs in
                try await jobs.upsert(try Schedule(name: name, type: type, payload: payload, queue: queue, rule: rule))
            }
            print(
                store.json
                    ? try JobOutput.json([
                        "outcome": outcome.outcome.rawValue,
                        "next_run_at": outcome.nextRunAt.map { Int($0.timeIntervalSince1970 * 1000) as Any }
                            ?? NSNull(),
                    ])
                    : "\(name): \(outcome.outcome.rawValue), next run \(outcome.nextRunAt.map { JobOutput.when($0) } ?? "never")"
            )
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List recurring jobs with their next and last run.",
            discussion: "Examples:\n  conveyor schedule list\n  conveyor schedule list --json"
        )
        @OptionGroup var store: JobStoreOptions

        func run() async throws {
            let schedules = try await store.withJobs { jobs in try await jobs.schedules() }
            if store.json {
                print(try JobOutput.json(schedules.map(Self.object)))
                return
            }
            if schedules.isEmpty { print("no schedules") }
            Terminal.table(
                ["NAME", "TYPE", "QUEUE", "RULE", "NEXT", "LAST"],
                schedules.map { stored in
                    [
                        stored.schedule.name, stored.schedule.type, stored.schedule.queue,
                        Self.rule(stored.schedule.rule),
                        stored.isPaused ? "paused" : stored.nextRunAt.map { JobOutput.when($0) } ?? "never",
                        stored.lastRunAt.map { JobOutput.when($0) } ?? "-",
                    ]
                }
            )
        }

        /// "every 5m" or "cron '0 3 * * *' Europe/Berlin".
        static func rule(_ rule: Schedule.Rule) -> String {
            switch rule {
            case .every(let interval): "every \(DurationArgument.describe(interval))"
            case .cron(let expression, let zone): "cron '\(expression.source)' \(zone.identifier)"
            }
        }

        static func object(_ stored: StoredSchedule) -> [String: Any] {
            let schedule = stored.schedule
            var object: [String: Any] = [
                "name": schedule.name, "type": schedule.type, "queue": schedule.queue, "paused": stored.isPaused,
                "priority": schedule.priority,
                "payload":
                    (try? JSONSerialization.jsonObject(with: Data(schedule.payload.utf8), options: [.fragmentsAllowed]))
                    ?? schedule.payload,
                "next_run_at": stored.nextRunAt.map { Int($0.timeIntervalSince1970 * 1000) } ?? NSNull(),
                "last_run_at": stored.lastRunAt.map { Int($0.timeIntervalSince1970 * 1000) } ?? NSNull(),
            ]
            switch schedule.rule {
            case .every(let interval):
                object["every_ms"] = Int(interval.milliseconds)
            case .cron(let expression, let zone):
                object["cron"] = expression.source
                object["time_zone"] = zone.identifier
            }
            return object
        }
    }

    /// The schedule a command acts on: its name, and its queue when given or when only one queue has that name.
    struct Target: ParsableArguments {
        @Argument(help: "The schedule's name.") var name: String
        @Option(help: "Its queue (needed only when several queues have a schedule of that name).") var queue: String?

        func queue(in jobs: JobQueue) async throws -> String {
            if let queue { return queue }
            let queues = try await jobs.scheduleQueues(named: name)
            switch queues.count {
            case 0: throw CommandFailure(message: "no schedule \(name); conveyor schedule list shows them")
            case 1: return queues[0]
            default:
                throw CommandFailure(
                    message: "schedules named \(name) are in queues \(queues.joined(separator: ", ")); give --queue",
                    exitCode: .validationFailure
                )
            }
        }

        /// Runs `action` on the schedule's queue and reports `outcome` (as JSON with `--json`).
        func act(
            _ store: JobStoreOptions,
            _ outcome: String,
            _ action: (JobQueue, String) async throws -> Void
        ) async throws {
            let queue = try await store.withJobs { jobs in
                let queue = try await self.queue(in: jobs)
                try await action(jobs, queue)
                return queue
            }
            try printOutcome(store, "\(name): \(outcome)", ["name": name, "queue": queue, "status": outcome])
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a recurring job.",
            discussion: "Example:\n  conveyor schedule remove nightly-report"
        )
        @OptionGroup var store: JobStoreOptions
        @OptionGroup var target: Target

        func run() async throws {
            try await target.act(store, "removed") { jobs, queue in
                guard try await jobs.removeSchedule(target.name, queue: queue) else {
                    throw CommandFailure(message: "no schedule \(target.name) in queue \(queue)")
                }
            }
        }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop a recurring job from firing.",
            discussion: "Example:\n  conveyor schedule pause nightly-report"
        )
        @OptionGroup var store: JobStoreOptions
        @OptionGroup var target: Target

        func run() async throws {
            try await target.act(store, "paused") { jobs, queue in
                try await jobs.pauseSchedule(target.name, queue: queue)
            }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Let a paused recurring job fire again.",
            discussion: "Example:\n  conveyor schedule resume nightly-report"
        )
        @OptionGroup var store: JobStoreOptions
        @OptionGroup var target: Target

        func run() async throws {
            try await target.act(store, "resumed") { jobs, queue in
                try await jobs.resumeSchedule(target.name, queue: queue)
            }
        }
    }
}
