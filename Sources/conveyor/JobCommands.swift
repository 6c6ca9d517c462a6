import ArgumentParser
import Conveyor
import Foundation
import Logging
import RedisClient

/// Options of every command that works on jobs: the server, the namespace, JSON output.
struct JobStoreOptions: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The key namespace.")
    var namespace = "conveyor"

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func validate() throws {
        try Self.validateNamespace(namespace)
    }

    /// Refuses a namespace the server would refuse (1 or more of `A-Z a-z 0-9 _ . - :`).
    static func validateNamespace(_ namespace: String) throws {
        guard !namespace.isEmpty,
            namespace.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-:".contains($0)) })
        else {
            throw ValidationError(
                "--namespace '\(namespace)' must be letters, digits or _ . - : (for example conveyor)"
            )
        }
    }

    /// Runs `body` with a job queue on the chosen server; Conveyor errors become one-line failures.
    func withJobs<Result>(_ body: (JobQueue) async throws -> Result) async throws -> Result {
        let redis = RedisClient(configuration: try connection.clientConfiguration())
        defer { redis.shutdown() }
        do {
            return try await body(await connection.commandQueue(redis, namespace: namespace))
        } catch let error as ConveyorError {
            let code: ExitCode = error.code == .invalidArgument ? .validationFailure : .failure
            throw CommandFailure(message: error.message, exitCode: code)
        }
    }
}

extension JobStoreOptions {
    /// Fails with exit 64 naming the known queues when `queue` was never used in this namespace.
    static func requireKnown(_ queue: String, in jobs: JobQueue) async throws {
        let known = try await jobs.queues()
        guard known.contains(queue) else {
            throw CommandFailure(
                message:
                    "no queue '\(queue)' in this namespace (known: \(known.isEmpty ? "none" : known.joined(separator: ", ")))",
                exitCode: .validationFailure
            )
        }
    }
}

/// Renders jobs for people and for programs.
enum JobOutput {
    static func object(_ job: Job) -> [String: Any] { job.jsonObject() }

    static func json(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(
            withJSONObject: value,
            options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]
        )
        return String(decoding: data, as: UTF8.self)
    }

    /// "in 5m", "3s ago".
    static func relative(_ date: Date?) -> String {
        guard let date else { return "-" }
        let seconds = Int(date.timeIntervalSinceNow.rounded())
        if seconds == 0 { return "now" }
        let magnitude = abs(seconds)
        let text =
            magnitude < 60
            ? "\(magnitude)s"
            : magnitude < 3600
                ? "\(magnitude / 60)m"
                : magnitude < 86_400
                    ? "\(magnitude / 3600)h" : "\(magnitude / 86_400)d"
        return seconds >= 0 ? "in \(text)" : "\(text) ago"
    }

    /// A time in the local time zone with how far it is from now: "2026-11-29 07:15:02 (3s ago)".
    static func when(_ date: Date?) -> String {
        guard let date else { return "-" }
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        formatter.timeZone = .current
        return "\(formatter.string(from: date)) (\(relative(date)))"
    }

    static func block(_ job: Job) -> String {
        var lines = [
            "id:        \(job.id)", "type:      \(job.type)",
            "status:    \(Terminal.paint(job.status.rawValue, job.status))",
            "attempts:  \(job.attempts) (retries \(job.retryCount) of \(job.maxRetries))",
            "payload:   \(job.payload)",
        ]
        if let result = job.result { lines.append("result:    \(result)") }
        if let error = job.error { lines.append("error:     \(error)") }
        if let reference = job.reference { lines.append("reference: \(reference.type):\(reference.id)") }
        if let worker = job.worker { lines.append("worker:    \(worker)") }
        lines.append("created:   \(when(job.createdAt))")
        if let runAt = job.runAt { lines.append("run at:    \(when(runAt))") }
        if let started = job.startedAt { lines.append("started:   \(when(started))") }
        if let finished = job.finishedAt { lines.append("finished:  \(when(finished))") }
        return lines.joined(separator: "\n")
    }
}

/// `conveyor enqueue`: adds a job.
struct EnqueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue",
        abstract: "Enqueue a job and print its id.",
        discussion: """
            Examples:
              conveyor enqueue send_email --payload '{"to":"a@example.com"}' --queue emails
              conveyor enqueue report --payload-file report.json --in 10m --max-retries 5
              echo '{"n":1}' | conveyor enqueue count --payload - --id count-42
            """
    )

    @OptionGroup var store: JobStoreOptions
    @Argument(help: "The job type.") var type: String
    @Option(help: "The payload as JSON, or - to read it from standard input.") var payload: String?
    @Option(help: "A file holding the JSON payload.") var payloadFile: String?
    @Option(help: "The queue.") var queue: String?
    @Option(
        name: .customLong("in"),
        parsing: .unconditional,
        help: ArgumentHelp("Run after this delay, at most 3650d." + DurationArgument.hint, valueName: "duration")
    ) var delay: DurationArgument?
    @Option(
        help: ArgumentHelp(
            "Run at this time: ISO 8601, with a zone or local (2026-12-01T09:00:00Z, 2026-12-01T09:00).",
            valueName: "time"
        )
    ) var at: String?
    @Option(parsing: .unconditional, help: "Priority, -100…100 (higher first).") var priority = 0
    @Option(parsing: .unconditional, help: "Retries after failed attempts, 0-10000.") var maxRetries: Int?
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("Time limit per attempt, at most 30d." + DurationArgument.hint, valueName: "duration")
    ) var timeout: DurationArgument?
    @Option(help: ArgumentHelp("The entity the job is about, TYPE:ID.", valueName: "type:id")) var reference: String?
    @Option(help: "A caller-given id (enqueuing it again creates nothing).") var id: String?
    @Option(help: "A uniqueness key: no second live job with it.") var unique: String?

    func validate() throws {
        if payload != nil && payloadFile != nil {
            throw ValidationError("give the payload once: --payload or --payload-file, not both")
        }
        if delay != nil && at != nil {
            throw ValidationError("give one time: --in DURATION or --at TIME, not both")
        }
        try NumberArgument.check(priority, "--priority", -100...100)
        if let maxRetries { try NumberArgument.check(maxRetries, "--max-retries", 0...10_000) }
        try delay?.check("--in", atMost: DurationArgument.farthest)
        try timeout?.check("--timeout", atLeast: .milliseconds(1), atMost: DurationArgument.longestTimeout)
    }

    func run() async throws {
        var json = "{}"
        if let payloadFile {
            guard let data = FileManager.default.contents(atPath: payloadFile) else {
                throw CommandFailure(message: "cannot read --payload-file \(payloadFile)", exitCode: .validationFailure)
            }
            json = try UTF8Text.decode(data, from: "--payload-file \(payloadFile)")
        } else if payload == "-" {
            json = try UTF8Text.decode(
                FileHandle.standardInput.readDataToEndOfFile(),
                from: "the payload on standard input"
            )
        } else if let payload {
            json = payload
        }
        var options = JobOptions(queue: queue, id: id, priority: priority, maxRetries: maxRetries, uniqueKey: unique)
        options.delay = delay?.duration
        options.timeout = timeout?.duration
        if let at {
            guard let date = TimeArgument.parse(at) else {
                throw CommandFailure(
                    message: "--at '\(at)' is not \(TimeArgument.expected)",
                    exitCode: .validationFailure
                )
            }
            if date < Date() {
                FileHandle.standardError.write(
                    Data("conveyor: warning: --at \(at) is in the past; the job runs now\n".utf8)
                )
            }
            options.runAt = date
        }
        if let reference { options.reference = try JobReference(argument: reference, option: "--reference") }
        let payloadText = json.trimmingCharacters(in: .whitespacesAndNewlines)
        if let problem = StrictJSON.problem(in: payloadText).map({ $0.describe(in: payloadText) }) {
            let source = payloadFile.map { "--payload-file \($0)" } ?? (payload == "-" ? "standard input" : "--payload")
            throw CommandFailure(
                message: "the payload (\(source)) is not valid JSON: \(problem)",
                exitCode: .validationFailure
            )
        }
        let (enqueued, job) = try await store.withJobs { jobs in
            let enqueued = try await jobs.enqueue(type, json: payloadText, options: options)
            return (enqueued, store.json ? try await jobs.get(enqueued.id) : nil)
        }
        if store.json {
            // The job as `get --json` shows it, and whether this call created it.
            var object = job.map(JobOutput.object) ?? ["id": enqueued.id, "status": enqueued.status.rawValue]
            object["outcome"] = enqueued.outcome.rawValue
            print(try JobOutput.json(object))
        } else {
            print(enqueued.id)
            if enqueued.outcome != .created {
                FileHandle.standardError.write(
                    Data(
                        "conveyor: nothing created: \(enqueued.outcome.rawValue) job \(enqueued.id) is \(enqueued.status.rawValue)\n"
                            .utf8
                    )
                )
            }
        }
    }
}

/// `conveyor get`: shows one job.
struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show a job.",
        discussion: "Example:\n  conveyor get emails/0193b7c2-…"
    )

    @OptionGroup var store: JobStoreOptions
    @Argument(help: "The full job id, <queue>/<id>.") var id: String

    func run() async throws {
        let job = try await store.withJobs { jobs in try await jobs.get(id) }
        guard let job else { throw CommandFailure(message: "no job \(id)") }
        print(store.json ? try JobOutput.json(JobOutput.object(job)) : JobOutput.block(job))
    }
}

/// `conveyor list`: lists jobs of a status, of a type, or about one entity.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List jobs of a queue in one status, or every job about one entity.",
        discussion: """
            Examples:
              conveyor list --status failed --queue emails
              conveyor list --type report --limit 20 --json
              conveyor list --reference file_upload:42
            """
    )

    @OptionGroup var store: JobStoreOptions
    @Option(help: "The queue (default: every queue).") var queue: String?
    @Option(
        help:
            "scheduled, pending, processing, retrying, completed, failed or cancelled (default: pending; with --reference: any)."
    )
    var status: String?
    @Option(help: "Only jobs of this type.") var type: String?
    @Option(help: ArgumentHelp("Only jobs about this entity, TYPE:ID.", valueName: "type:id")) var reference: String?
    @Option(parsing: .unconditional, help: "How many at most, 1-10000.") var limit = 50
    @Flag(help: "Oldest first (default: newest first; pending: run order with --oldest).") var oldest = false

    func validate() throws {
        try NumberArgument.check(limit, "--limit", 1...10_000)
    }

    func run() async throws {
        var state: JobStatus?
        if let status {
            guard let parsed = JobStatus(rawValue: status) else {
                throw CommandFailure(
                    message:
                        "--status '\(status)' is not one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))",
                    exitCode: .validationFailure
                )
            }
            state = parsed
        }
        let entity = try reference.map { try JobReference(argument: $0, option: "--reference") }
        let list = try await store.withJobs { jobs in
            if let queue { try await JobStoreOptions.requireKnown(queue, in: jobs) }
            guard let entity else {
                let order: ListOrder = oldest ? .oldestFirst : .newestFirst
                if let queue {
                    return try await jobs.list(
                        queue: queue,
                        status: state ?? .pending,
                        type: type,
                        limit: limit,
                        order: order
                    )
                }
                // Every queue: each one's first `limit`, merged by time.
                var merged: [Job] = []
                for name in try await jobs.queues() {
                    merged += try await jobs.list(
                        queue: name,
                        status: state ?? .pending,
                        type: type,
                        limit: limit,
                        order: order
                    )
                }
                merged.sort { Self.time($0) < Self.time($1) }
                if !oldest { merged.reverse() }
                return Array(merged.prefix(limit))
            }
            var found = try await jobs.jobs(referenceType: entity.type, referenceID: entity.id).filter {
                (queue == nil || $0.queue == queue) && (state == nil || $0.status == state)
                    && (type == nil || $0.type == type)
            }
            if !oldest { found.reverse() }
            return Array(found.prefix(limit))
        }
        if store.json {
            print(try JobOutput.json(list.map(JobOutput.object)))
            return
        }
        Terminal.table(
            ["ID", "TYPE", "STATUS", "ATTEMPTS", "CREATED", "ERROR"],
            list.map {
                [
                    $0.id, $0.type, $0.status.rawValue, "\($0.attempts)", JobOutput.relative($0.createdAt),
                    $0.error ?? "",
                ]
            },
            statusColumn: 2
        )
    }
}

extension ListCommand {
    /// What a listing of several queues sorts by: when the job finished, else when it was created.
    static func time(_ job: Job) -> (Date, String) {
        (job.finishedAt ?? job.createdAt ?? .distantPast, job.id)
    }
}

extension JobReference {
    /// Reads `TYPE:ID` from the command line.
    init(argument: String, option: String) throws {
        let parts = argument.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw CommandFailure(
                message: "\(option) '\(argument)' must be TYPE:ID, e.g. file_upload:42",
                exitCode: .validationFailure
            )
        }
        self.init(type: parts[0], id: parts[1])
    }
}

/// `conveyor wait`: waits for a job to finish.
struct WaitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wait",
        abstract: "Wait for a job to finish and print its result.",
        discussion:
            "Exit status: 0 completed, 1 failed or cancelled, 2 timed out.\n\nExample:\n  conveyor wait emails/0193… --timeout 30s"
    )

    @OptionGroup var store: JobStoreOptions
    @Argument(help: "The full job id.") var id: String
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp("How long to wait, at most 3650d." + DurationArgument.hint, valueName: "duration")
    ) var timeout = DurationArgument(argument: "60s")!

    func validate() throws {
        try timeout.check("--timeout", atMost: DurationArgument.farthest)
    }

    func run() async throws {
        let redis = RedisClient(configuration: try store.connection.clientConfiguration())
        defer { redis.shutdown() }
        let jobs = await store.connection.commandQueue(redis, namespace: store.namespace)
        let job: Job
        do {
            job = try await jobs.result(of: id, timeout: timeout.duration)
        } catch let error as ConveyorError where error.code == .timeout {
            ConveyorCommand.fail(error.message, code: ExitCode(2))
        } catch let error as ConveyorError {
            throw CommandFailure(message: error.message)
        }
        print(store.json ? try JobOutput.json(JobOutput.object(job)) : (job.result ?? job.error ?? job.status.rawValue))
        if job.status != .completed { throw ExitCode.failure }
    }
}

/// Cancels, retries or removes jobs one by one, reporting each (with `--json`, one array at the end); exits 1 when
/// any failed.
func runJobAction(
    _ store: JobStoreOptions,
    _ ids: [String],
    _ action: (JobQueue, String) async throws -> String
) async throws {
    var failures = 0
    var report: [[String: String]] = []
    try await store.withJobs { jobs in
        for id in ids {
            do {
                let outcome = try await action(jobs, id)
                report.append(["id": id, "status": outcome])
                if !store.json { print("\(id): \(outcome)") }
            } catch let error as ConveyorError {
                failures += 1
                report.append(["id": id, "error": error.message])
                FileHandle.standardError.write(Data("conveyor: \(id): \(error.message)\n".utf8))
            }
        }
    }
    if store.json { print(try JobOutput.json(report)) }
    if failures > 0 { throw ExitCode.failure }
}

/// Prints a one-line outcome, or the same as a JSON object with `--json`.
func printOutcome(_ store: JobStoreOptions, _ text: String, _ object: [String: Any]) throws {
    print(store.json ? try JobOutput.json(object) : text)
}

/// `conveyor cancel ID…`.
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel jobs (a running one stops at its worker's next heartbeat).",
        discussion: "Example:\n  conveyor cancel emails/0193… emails/0194…"
    )
    @OptionGroup var store: JobStoreOptions
    @Argument(help: "Full job ids.") var ids: [String]

    func run() async throws {
        try await runJobAction(store, ids) { jobs, id in
            try await jobs.cancel(id) == .processing ? "cancelling (it is running)" : "cancelled"
        }
    }
}

/// `conveyor retry ID…` or `conveyor retry --queue Q --all-failed`.
struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Run failed, cancelled, scheduled or retrying jobs again now.",
        discussion: """
            Examples:
              conveyor retry emails/0193…
              conveyor retry --queue emails --all-failed
            """
    )
    @OptionGroup var store: JobStoreOptions
    @Argument(help: "Full job ids.") var ids: [String] = []
    @Option(help: "The queue of --all-failed.") var queue: String?
    @Flag(help: "Retry every failed job of --queue.") var allFailed = false

    func validate() throws {
        if allFailed {
            guard ids.isEmpty else { throw ValidationError("give job ids or --all-failed, not both") }
            guard queue != nil else { throw ValidationError("--all-failed needs --queue QUEUE") }
        } else {
            guard !ids.isEmpty else { throw ValidationError("give job ids to retry, or --queue QUEUE --all-failed") }
            guard queue == nil else {
                throw ValidationError("--queue goes with --all-failed; job ids name their queue")
            }
        }
    }

    func run() async throws {
        guard allFailed, let queue else {
            try await runJobAction(store, ids) { jobs, id in
                try await jobs.retry(id)
                return "pending"
            }
            return
        }
        let (retried, skipped) = try await store.withJobs { jobs in
            try await JobStoreOptions.requireKnown(queue, in: jobs)
            let bar = ProgressBar(label: "retrying", total: try await jobs.counts(queue: queue)[.failed] ?? 0)
            defer { bar.finish() }
            return try await jobs.retryAll(queue: queue, status: .failed) { done, _ in bar.update(done) }
        }
        print(
            store.json
                ? try JobOutput.json(["retried": retried, "skipped": skipped])
                : "\(queue): \(retried) failed jobs pending again"
                    + (skipped > 0 ? ", \(skipped) skipped (changed meanwhile)" : "")
        )
    }
}

/// `conveyor remove ID…`.
struct RemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Delete jobs.",
        discussion: "Example:\n  conveyor remove --force emails/0193…"
    )
    @OptionGroup var store: JobStoreOptions
    @Argument(help: "Full job ids.") var ids: [String]
    @Flag(help: "Also remove running jobs.") var force = false

    func run() async throws {
        try await runJobAction(store, ids) { jobs, id in
            try await jobs.remove(id, force: force)
            return "removed"
        }
    }
}

/// `conveyor pause QUEUE`.
struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause",
        abstract: "Stop handing out jobs of a queue (enqueueing goes on); the queue must exist.",
        discussion: "Example:\n  conveyor pause emails"
    )
    @OptionGroup var store: JobStoreOptions
    @Argument(help: "The queue.") var queue: String

    func run() async throws {
        try await store.withJobs { jobs in
            try await JobStoreOptions.requireKnown(queue, in: jobs)
            try await jobs.pause(queue: queue)
        }
        try printOutcome(store, "\(queue): paused", ["queue": queue, "paused": true])
    }
}

/// `conveyor resume QUEUE`.
struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Hand out jobs of a paused queue again.",
        discussion: "Example:\n  conveyor resume emails"
    )
    @OptionGroup var store: JobStoreOptions
    @Argument(help: "The queue.") var queue: String

    func run() async throws {
        try await store.withJobs { jobs in
            try await JobStoreOptions.requireKnown(queue, in: jobs)
            try await jobs.resume(queue: queue)
        }
        try printOutcome(store, "\(queue): resumed", ["queue": queue, "paused": false])
    }
}

/// `conveyor stats`: counts per queue and status, throughput, workers, leader.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Counts per queue and status, jobs finished in the last minute, workers and the leader.",
        discussion: """
            Examples:
              conveyor stats
              conveyor stats --history 60
              conveyor stats --json | jq '.queues[0].counts'
            """
    )

    @OptionGroup var store: JobStoreOptions

    @Option(
        name: .customLong("history"),
        help: ArgumentHelp(
            "Also print each queue's jobs counted per minute over the last N minutes (1-1440), from every node.",
            valueName: "N"
        )
    )
    var historyMinutes: Int?

    struct QueueStats {
        var name: String
        var counts: [JobStatus: Int]
        var paused: Bool
        var throughput: Throughput
        var history: [ThroughputMinute]?
    }

    func validate() throws {
        if let historyMinutes { try NumberArgument.check(historyMinutes, "--history", 1...1440) }
    }

    func run() async throws {
        let (queues, workers, leader) = try await store.withJobs { jobs in
            var queues: [QueueStats] = []
            for name in try await jobs.queues() {
                var history: [ThroughputMinute]?
                if let historyMinutes { history = try await jobs.history(queue: name, minutes: historyMinutes) }
                queues.append(
                    QueueStats(
                        name: name,
                        counts: try await jobs.counts(queue: name),
                        paused: try await jobs.isPaused(queue: name),
                        throughput: try await jobs.throughput(queue: name),
                        history: history
                    )
                )
            }
            return (queues, try await jobs.workers(), try await jobs.leader())
        }
        if store.json {
            let object: [String: Any] = [
                "queues": queues.map { queue in
                    var object: [String: Any] = [
                        "queue": queue.name, "paused": queue.paused,
                        "counts": Dictionary(uniqueKeysWithValues: queue.counts.map { ($0.key.rawValue, $0.value) }),
                        "last_minute": [
                            "completed": queue.throughput.completed, "failed": queue.throughput.failed,
                            "covered_ms": Int(queue.throughput.covered.milliseconds),
                        ],
                    ]
                    if let history = queue.history { object["history"] = history.map(Self.json) }
                    return object
                },
                "workers": workers.map {
                    [
                        "id": $0.id, "host": $0.host, "pid": $0.pid, "concurrency": $0.concurrency,
                        "in_flight": $0.inFlight.count, "queues": $0.queues,
                    ] as [String: Any]
                },
                "leader": leader.map { ["node": $0.node, "epoch": $0.epoch] as [String: Any] } ?? NSNull(),
            ]
            print(try JobOutput.json(object))
            return
        }
        let statuses = JobStatus.allCases
        if queues.isEmpty { print("no queues yet") }
        Terminal.table(
            ["QUEUE"] + statuses.map { $0.rawValue.uppercased() } + ["PAUSED", "DONE/MIN", "FAILED/MIN"],
            queues.map { queue in
                [queue.name] + statuses.map { String(queue.counts[$0] ?? 0) } + [
                    queue.paused ? "yes" : "no", String(queue.throughput.completed), String(queue.throughput.failed),
                ]
            }
        )
        print("")
        print(
            "workers: \(workers.count)"
                + workers.map {
                    "\n  \($0.id)  \($0.queues.joined(separator: ",")) ×\($0.concurrency), \($0.inFlight.count) running"
                }.joined()
        )
        print("leader: \(leader.map { "\($0.node) (epoch \($0.epoch))" } ?? "none")")
        for queue in queues {
            guard let history = queue.history else { continue }
            print("")
            print("\(queue.name): jobs per minute, last \(history.count) minutes")
            Terminal.table(
                ["MINUTE"] + ThroughputMinute.counterNames.map { $0.uppercased() },
                history.map { minute in
                    [Self.minuteFormatter.string(from: minute.minute)]
                        + ThroughputMinute.counterNames.map { String(minute.counts[$0] ?? 0) }
                }
            )
        }
    }

    /// A minute of the history in JSON: when it began (epoch ms) and every counter.
    static func json(_ minute: ThroughputMinute) -> [String: Any] {
        var object: [String: Any] = ["minute": Int(minute.minute.timeIntervalSince1970 * 1000)]
        for name in ThroughputMinute.counterNames { object[name] = minute.counts[name] ?? 0 }
        return object
    }

    /// Minutes in the local time zone (a history spans at most 24 hours, so the day is not needed).
    static var minuteFormatter: DateFormatter {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm"
        formatter.timeZone = .current
        return formatter
    }
}
