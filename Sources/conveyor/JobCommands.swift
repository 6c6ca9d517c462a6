import ArgumentParser
import Conveyor
import Foundation
import RedisClient

/// Options of every command that works on jobs: the server, the namespace, JSON output.
struct JobStoreOptions: ParsableArguments {
    @OptionGroup var connection: ConnectionOptions

    @Option(help: "The key namespace.")
    var namespace = "conveyor"

    @Flag(help: "Print JSON instead of text.")
    var json = false

    /// Runs `body` with a job queue on the chosen server; Conveyor errors become one-line failures.
    func withJobs<Result>(_ body: (JobQueue) async throws -> Result) async throws -> Result {
        let redis = RedisClient(configuration: try connection.clientConfiguration())
        defer { redis.shutdown() }
        do {
            return try await body(JobQueue(redis: redis, configuration: .init(namespace: namespace)))
        } catch let error as ConveyorError {
            let code: ExitCode = error.code == .invalidArgument ? .validationFailure : .failure
            throw CommandFailure(message: error.message, exitCode: code)
        }
    }
}

/// Renders jobs for people and for programs.
enum JobOutput {
    static func object(_ job: Job) -> [String: Any] {
        var object: [String: Any] = [
            "id": job.id, "queue": job.queue, "type": job.type, "status": job.status.rawValue,
            "retry_count": job.retryCount, "max_retries": job.maxRetries, "priority": job.priority,
            "attempts": job.attempts,
        ]
        object["payload"] =
            (try? JSONSerialization.jsonObject(with: Data(job.payload.utf8), options: [.fragmentsAllowed]))
            ?? job.payload
        if let result = job.result {
            object["result"] =
                (try? JSONSerialization.jsonObject(with: Data(result.utf8), options: [.fragmentsAllowed])) ?? result
        }
        if let error = job.error { object["error"] = error }
        if let reference = job.reference { object["reference"] = ["type": reference.type, "id": reference.id] }
        for (name, date) in [
            ("run_at", job.runAt), ("created_at", job.createdAt), ("started_at", job.startedAt),
            ("finished_at", job.finishedAt),
        ] {
            if let date { object[name] = Int(date.timeIntervalSince1970 * 1000) }
        }
        if let worker = job.worker { object["worker"] = worker }
        return object
    }

    static func json(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed])
        return String(decoding: data, as: UTF8.self)
    }

    /// "in 5m", "3s ago".
    static func relative(_ date: Date?) -> String {
        guard let date else { return "-" }
        let seconds = Int(date.timeIntervalSinceNow.rounded())
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

    static func block(_ job: Job) -> String {
        var lines = [
            "id:        \(job.id)", "type:      \(job.type)", "status:    \(job.status.rawValue)",
            "attempts:  \(job.attempts) (retries \(job.retryCount) of \(job.maxRetries))",
            "payload:   \(job.payload)",
        ]
        if let result = job.result { lines.append("result:    \(result)") }
        if let error = job.error { lines.append("error:     \(error)") }
        if let reference = job.reference { lines.append("reference: \(reference.type):\(reference.id)") }
        lines.append("created:   \(relative(job.createdAt))")
        if let runAt = job.runAt { lines.append("run at:    \(relative(runAt))") }
        if let finished = job.finishedAt { lines.append("finished:  \(relative(finished))") }
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
              echo '{"n":1}' | conveyor enqueue count --payload - --reference upload:42 --id count-42
            """
    )

    @OptionGroup var store: JobStoreOptions
    @Argument(help: "The job type.") var type: String
    @Option(help: "The payload as JSON, or - to read it from standard input.") var payload: String?
    @Option(help: "A file holding the JSON payload.") var payloadFile: String?
    @Option(help: "The queue.") var queue: String?
    @Option(name: .customLong("in"), help: ArgumentHelp("Run after this delay.", valueName: "duration")) var delay:
        DurationArgument?
    @Option(help: ArgumentHelp("Run at this time (ISO 8601, e.g. 2026-12-01T09:00:00Z).", valueName: "time")) var at:
        String?
    @Option(help: "Priority, -100…100 (higher first).") var priority = 0
    @Option(help: "Retries after failed attempts.") var maxRetries: Int?
    @Option(help: ArgumentHelp("Time limit per attempt.", valueName: "duration")) var timeout: DurationArgument?
    @Option(help: ArgumentHelp("The entity the job is about, TYPE:ID.", valueName: "type:id")) var reference: String?
    @Option(help: "A caller-given id (enqueuing it again creates nothing).") var id: String?
    @Option(help: "A uniqueness key: no second live job with it.") var unique: String?

    func run() async throws {
        var json = "{}"
        if let payloadFile {
            guard let data = FileManager.default.contents(atPath: payloadFile) else {
                throw CommandFailure(message: "cannot read --payload-file \(payloadFile)", exitCode: .validationFailure)
            }
            json = String(decoding: data, as: UTF8.self)
        } else if payload == "-" {
            json = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else if let payload {
            json = payload
        }
        var options = JobOptions(queue: queue, id: id, priority: priority, maxRetries: maxRetries, uniqueKey: unique)
        options.delay = delay?.duration
        options.timeout = timeout?.duration
        if let at {
            let formatter = ISO8601DateFormatter()
            guard let date = formatter.date(from: at) else {
                throw CommandFailure(
                    message: "--at '\(at)' is not an ISO 8601 time like 2026-12-01T09:00:00Z",
                    exitCode: .validationFailure
                )
            }
            options.runAt = date
        }
        if let reference {
            let parts = reference.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2 else {
                throw CommandFailure(
                    message: "--reference '\(reference)' must be TYPE:ID, e.g. file_upload:42",
                    exitCode: .validationFailure
                )
            }
            options.reference = JobReference(type: parts[0], id: parts[1])
        }
        let payloadText = json.trimmingCharacters(in: .whitespacesAndNewlines)
        let enqueued = try await store.withJobs { jobs in
            try await jobs.enqueue(type, json: payloadText, options: options)
        }
        if store.json {
            print(
                try JobOutput.json([
                    "id": enqueued.id, "status": enqueued.status.rawValue, "outcome": enqueued.outcome.rawValue,
                ])
            )
        } else {
            print(enqueued.id)
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

/// `conveyor list`: lists jobs of a status.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List jobs of a queue in one status.",
        discussion:
            "Examples:\n  conveyor list --status failed --queue emails\n  conveyor list --type report --limit 20 --json"
    )

    @OptionGroup var store: JobStoreOptions
    @Option(help: "The queue.") var queue: String?
    @Option(help: "scheduled, pending, processing, retrying, completed, failed or cancelled.") var status = "pending"
    @Option(help: "Only jobs of this type.") var type: String?
    @Option(help: "How many at most.") var limit = 50
    @Flag(help: "Oldest first (default: newest first; pending: run order with --oldest).") var oldest = false

    func run() async throws {
        guard let state = JobStatus(rawValue: status) else {
            throw CommandFailure(
                message:
                    "--status '\(status)' is not one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))",
                exitCode: .validationFailure
            )
        }
        let list = try await store.withJobs { jobs in
            try await jobs.list(
                queue: queue,
                status: state,
                type: type,
                limit: limit,
                order: oldest ? .oldestFirst : .newestFirst
            )
        }
        if store.json {
            print(try JobOutput.json(list.map(JobOutput.object)))
            return
        }
        let rows = list.map {
            [$0.id, $0.type, $0.status.rawValue, "\($0.attempts)", JobOutput.relative($0.createdAt), $0.error ?? ""]
        }
        let header = ["ID", "TYPE", "STATUS", "ATTEMPTS", "CREATED", "ERROR"]
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for row in [header] + rows {
            print(
                row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(
                    separator: "  "
                )
            )
        }
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
    @Option(help: ArgumentHelp("How long to wait.", valueName: "duration")) var timeout = DurationArgument(
        argument: "60s"
    )!

    func run() async throws {
        let redis = RedisClient(configuration: try store.connection.clientConfiguration())
        defer { redis.shutdown() }
        let jobs = JobQueue(redis: redis, configuration: .init(namespace: store.namespace))
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

/// Cancels, retries or removes jobs one by one, reporting each; exits 1 when any failed.
func runJobAction(
    _ store: JobStoreOptions,
    _ ids: [String],
    _ action: (JobQueue, String) async throws -> String
) async throws {
    var failures = 0
    try await store.withJobs { jobs in
        for id in ids {
            do {
                print("\(id): \(try await action(jobs, id))")
            } catch let error as ConveyorError {
                failures += 1
                FileHandle.standardError.write(Data("conveyor: \(id): \(error.message)\n".utf8))
            }
        }
    }
    if failures > 0 { throw ExitCode.failure }
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

/// `conveyor retry ID…`.
struct RetryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry",
        abstract: "Run failed, cancelled, scheduled or retrying jobs again now.",
        discussion: "Example:\n  conveyor retry emails/0193…"
    )
    @OptionGroup var store: JobStoreOptions
    @Argument(help: "Full job ids.") var ids: [String]

    func run() async throws {
        try await runJobAction(store, ids) { jobs, id in
            try await jobs.retry(id)
            return "pending"
        }
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
        abstract: "Stop handing out jobs of a queue (enqueueing goes on).",
        discussion: "Example:\n  conveyor pause emails"
    )
    @OptionGroup var store: JobStoreOptions
    @Argument(help: "The queue.") var queue: String

    func run() async throws {
        try await store.withJobs { jobs in try await jobs.pause(queue: queue) }
        print("\(queue): paused")
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
        try await store.withJobs { jobs in try await jobs.resume(queue: queue) }
        print("\(queue): resumed")
    }
}

/// `conveyor stats`: counts per queue and status, workers, leader.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Counts per queue and status, workers and the leader."
    )

    @OptionGroup var store: JobStoreOptions

    func run() async throws {
        let (queues, workers, leader) = try await store.withJobs { jobs in
            var queues: [(String, [JobStatus: Int], Bool)] = []
            for name in try await jobs.queues() {
                queues.append((name, try await jobs.counts(queue: name), try await jobs.isPaused(queue: name)))
            }
            return (queues, try await jobs.workers(), try await jobs.leader())
        }
        if store.json {
            let object: [String: Any] = [
                "queues": queues.map { name, counts, paused in
                    [
                        "queue": name, "paused": paused,
                        "counts": Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
                    ] as [String: Any]
                },
                "workers": workers.map {
                    [
                        "id": $0.id, "host": $0.host, "pid": $0.pid, "concurrency": $0.concurrency,
                        "in_flight": $0.inFlight.count,
                    ] as [String: Any]
                },
                "leader": leader.map { ["node": $0.node, "epoch": $0.epoch] as [String: Any] } ?? NSNull(),
            ]
            print(try JobOutput.json(object))
            return
        }
        let statuses = JobStatus.allCases
        print((["QUEUE"] + statuses.map { $0.rawValue.uppercased() } + ["PAUSED"]).joined(separator: "\t"))
        for (name, counts, paused) in queues {
            print(([name] + statuses.map { String(counts[$0] ?? 0) } + [paused ? "yes" : "no"]).joined(separator: "\t"))
        }
        print(
            "workers: \(workers.count)"
                + workers.map {
                    "\n  \($0.id)  \($0.queues.joined(separator: ",")) ×\($0.concurrency), \($0.inFlight.count) running"
                }.joined()
        )
        print("leader: \(leader.map { "\($0.node) (epoch \($0.epoch))" } ?? "none")")
    }
}
