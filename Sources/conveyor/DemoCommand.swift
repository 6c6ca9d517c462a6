import ArgumentParser
import Conveyor
import Foundation
import LocalRedis
import RedisClient

/// `conveyor demo`: the README's run command. A worker with example handlers, a recurring job and a burst of sample
/// jobs, against `--redis`/`REDIS_URL` when given, else a private `redis-server` it starts and stops.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show Conveyor working: a worker, a recurring job and a burst of sample jobs, live.",
        discussion: """
            Without --redis and without REDIS_URL, starts a private redis-server on a free loopback port (data in a \
            temporary folder). Runs a worker for the queue "demo" whose handlers are the scripts in --examples \
            (send_email, resize_image, flaky_upload which succeeds on its third attempt, charge_card which always \
            fails) plus the built-in sleep and echo, adds the recurring job "demo-report" (every 15s), enqueues a \
            burst of sample jobs (and a few more every three summaries), and prints every transition as it happens with a summary every 10 seconds. \
            Ctrl-C stops the worker gracefully and then the private redis-server, removing its data.

            Examples:
              conveyor demo
              conveyor demo --redis redis://127.0.0.1:6379 --examples deploy/examples
            """
    )

    @Option(help: ArgumentHelp("The Redis server; default $REDIS_URL, else a private redis-server.", valueName: "url"))
    var redis: String?

    @Option(help: ArgumentHelp("The folder of the example handler scripts.", valueName: "path"))
    var examples = "deploy/examples"

    @Option(
        help: """
            The key namespace (default: conveyor with a private redis-server; conveyor-demo with a Redis you give, \
            whose keys the demo removes when it stops).
            """
    )
    var namespace: String?

    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "How often to print the summary line, 1s to 1d." + DurationArgument.hint,
            valueName: "duration"
        )
    )
    var summaryEvery = DurationArgument(argument: "10s")!

    /// The namespace of a demo on a Redis the user gave: its keys are the demo's own, removed at the end.
    static let ownNamespace = "conveyor-demo"

    /// Deletes every key of a namespace (SCAN and UNLINK, a batch at a time); returns how many.
    static func removeKeys(of namespace: String, _ redis: RedisClient) async throws -> Int {
        var cursor = "0"
        var removed = 0
        repeat {
            let reply = try await redis.send("SCAN", cursor, "MATCH", "\(namespace):*", "COUNT", 1000)
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string else { break }
            cursor = next
            let keys = (parts[1].array ?? []).compactMap(\.string)
            if !keys.isEmpty {
                removed += try await redis.send(RedisCommand("UNLINK", keys)).int ?? 0
            }
        } while cursor != "0"
        return removed
    }

    static let scripts = ["send_email", "resize_image", "flaky_upload", "charge_card", "report"]

    func validate() throws {
        if let namespace { try JobStoreOptions.validateNamespace(namespace) }
        try summaryEvery.check("--summary-every", atLeast: .seconds(1), atMost: .days(1))
        for script in Self.scripts where !FileManager.default.fileExists(atPath: "\(examples)/\(script).sh") {
            throw ValidationError(
                "--examples \(examples) has no \(script).sh; run from the repository root or give --examples PATH"
            )
        }
    }

    func run() async throws {
        let logger = bootstrapLogging("warning")
        let folder = URL(fileURLWithPath: examples).standardizedFileURL.path
        let quoted = "'" + folder.replacingOccurrences(of: "'", with: "'\\''") + "'"
        var arguments = [
            "--queue", "demo", "--concurrency", "4", "--grace", "5s", "--kill-grace", "2s", "--scheduler-lease", "5s",
            "--example-handlers", "--log-level", "warning",
        ]
        for script in Self.scripts { arguments += ["--exec", "\(script)=sh \(quoted)/\(script).sh"] }
        let worker = try WorkerOptions.parse(arguments)
        let given = PrivateRedis.givenURL(redis)
        let namespace = self.namespace ?? (given == nil ? "conveyor" : Self.ownNamespace)
        let flag = namespace == "conveyor" ? "" : " --namespace \(namespace)"
        try await PrivateRedis.with(given: given, options: LocalRedisServer.Options()) { url, server in
            let shown = url.description
            // The export line must work when pasted: never the masked password.
            let exported = url.password == nil ? url.description : "<the URL you gave, with its password>"
            Terminal.printNow(
                """
                Conveyor demo
                  Redis:   \(shown)\(server.map { " (a private redis-server, pid \($0.pid), data in \($0.directory))" } ?? "")
                  Worker:  queue "demo", 4 at a time; handlers: \(Self.scripts.joined(separator: ", ")) (scripts in \(folder)), sleep, echo
                  Every 15s the recurring job "demo-report" runs.
                From a second terminal:
                  export REDIS_URL=\(exported)
                  .build/release/conveyor stats\(flag)
                  .build/release/conveyor list --queue demo --status failed\(flag)
                  redis-cli -u "$REDIS_URL" ZRANGE '\(namespace):{demo}:completed' 0 -1
                Ctrl-C stops everything.

                """
            )
            let (redis, jobs) = PrivateRedis.jobQueue(
                url,
                clientName: "conveyor-demo",
                namespace: namespace,
                logger: logger
            )
            defer { redis.shutdown() }
            let interval = summaryEvery.duration
            try await worker.run(jobs: jobs, handlers: worker.handlers(), logger: logger) { _ in
                try await Self.show(jobs, summaryEvery: interval)
            }
            if given != nil && namespace == Self.ownNamespace {
                let removed = try await Self.removeKeys(of: namespace, redis)
                Terminal.printNow("Removed the demo's \(removed) keys (namespace \(namespace)) from \(shown).")
            }
        }
        Terminal.printNow(
            given == nil
                ? "Stopped the worker and the private redis-server (its data is removed)." : "Stopped the worker."
        )
    }

    /// Follows the demo queue's events, enqueues the sample jobs, and prints a summary now and then.
    static func show(_ jobs: JobQueue, summaryEvery interval: Duration) async throws {
        let events = try await jobs.events(queues: ["demo"], from: .now)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await event in events { Terminal.printNow(TailCommand.line(event)) }
            }
            group.addTask {
                _ = try await jobs.upsert(
                    try Schedule(
                        name: "demo-report",
                        type: "report",
                        payload: "{}",
                        queue: "demo",
                        rule: .every(.seconds(15))
                    )
                )
                _ = try await jobs.enqueueMany(sampleJobs())
                var rounds = 0
                while true {
                    try await Task.sleep(for: interval)
                    Terminal.printNow(try await summary(jobs))
                    // Now and then a few more jobs, so there is always something to watch.
                    rounds += 1
                    if rounds % 3 == 0 { _ = try await jobs.enqueueMany(trickle(rounds)) }
                }
            }
            try await group.next()
        }
    }

    /// The burst: emails, images, a job that succeeds on its third attempt, one that always fails, delayed and
    /// prioritised jobs, and one about an entity (`--reference upload:42`).
    static func sampleJobs() -> [NewJob] {
        var burst: [NewJob] = []
        for (number, name) in ["ada", "grace", "linus", "barbara", "ken", "margaret"].enumerated() {
            var options = JobOptions(queue: "demo", priority: number == 0 ? 10 : 0)
            if number >= 4 { options.delay = .seconds(5 * (number - 3)) }
            burst.append(NewJob("send_email", json: #"{"to":"\#(name)@example.com"}"#, options: options))
        }
        for size in [640, 1280, 1920, 3840] {
            var options = JobOptions(queue: "demo")
            if size == 3840 { options.reference = JobReference(type: "upload", id: "42") }
            burst.append(NewJob("resize_image", json: #"{"width":\#(size)}"#, options: options))
        }
        burst.append(
            NewJob("flaky_upload", json: #"{"file":"report.pdf"}"#, options: JobOptions(queue: "demo", maxRetries: 3))
        )
        burst.append(
            NewJob("charge_card", json: #"{"amount_cents":4200}"#, options: JobOptions(queue: "demo", maxRetries: 2))
        )
        for milliseconds in [300, 600, 900] {
            burst.append(NewJob("sleep", json: #"{"ms":\#(milliseconds)}"#, options: JobOptions(queue: "demo")))
        }
        burst.append(NewJob("echo", json: #"{"hello":"world"}"#, options: JobOptions(queue: "demo", priority: -5)))
        return burst
    }

    /// A few jobs: two emails and an image.
    static func trickle(_ round: Int) -> [NewJob] {
        [
            NewJob("send_email", json: #"{"to":"reader\#(round)@example.com"}"#, options: JobOptions(queue: "demo")),
            NewJob("send_email", json: #"{"to":"writer\#(round)@example.com"}"#, options: JobOptions(queue: "demo")),
            NewJob("resize_image", json: #"{"width":800}"#, options: JobOptions(queue: "demo")),
        ]
    }

    /// "── 07:15:02  demo: 2 pending · 1 processing · … · 9 completed in the last minute · leader … ──".
    static func summary(_ jobs: JobQueue) async throws -> String {
        let counts = try await jobs.counts(queue: "demo")
        let throughput = try await jobs.throughput(queue: "demo")
        let workers = try await jobs.workers()
        let leader = try await jobs.leader()
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss"
        let parts = JobStatus.allCases.compactMap { status in
            (counts[status] ?? 0) > 0 ? Terminal.paint("\(counts[status] ?? 0) \(status.rawValue)", status) : nil
        }
        return "── \(formatter.string(from: Date()))  demo: \(parts.joined(separator: " · "))  |  "
            + "\(throughput.completed) completed, \(throughput.failed) failed in the last minute  |  "
            + "\(workers.count) worker\(workers.count == 1 ? "" : "s"), leader \(leader?.node ?? "none") ──"
    }
}
