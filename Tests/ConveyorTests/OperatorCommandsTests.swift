import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import Conveyor

/// Parses a command's JSON output.
func parsedJSON(_ output: ConveyorExecutable.Output) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8), options: [.fragmentsAllowed])
}

@Suite("conveyor enqueue-many, tail, list --reference, retry --all-failed, stats", .timeLimit(.minutes(2)))
struct OperatorCommandsTests {
    @Test func enqueueManyReadsAFileOrStandardInput() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("jobs-\(UUID().uuidString).jsonl")
            try """
            {"type":"echo","payload":{"n":1},"id":"one"}

            {"type":"echo","payload":[1,2],"queue":"other","priority":5,"reference":"upload:9"}
            {"type":"report","in":"1h","max_retries":7,"timeout":"30s","unique":"nightly"}
            {"type":"report","at":"2030-01-01T00:00:00Z"}

            """.write(to: file, atomically: true, encoding: .utf8)
            let result = try await ConveyorExecutable.run(
                ["enqueue-many", "--file", file.path, "--queue", "bulk", "--json"] + redis
            )
            #expect(result.status == 0, "\(result.standardError)")
            let summary = try #require(try parsedJSON(result) as? [String: Any])
            #expect(
                summary["created"] as? Int == 4 && summary["existing"] as? Int == 0 && summary["duplicate"] as? Int == 0
            )
            let ids = try #require(summary["ids"] as? [String])
            #expect(ids.first == "bulk/one" && ids[1].hasPrefix("other/"))
            let second = try #require(try await jobs.get(ids[1]))
            #expect(second.priority == 5 && second.payload == "[1,2]" && second.reference?.id == "9")
            let third = try #require(try await jobs.get(ids[2]))
            #expect(third.status == .scheduled && third.maxRetries == 7)
            #expect(try await jobs.get(ids[3])?.runAt == Date(timeIntervalSince1970: 1_893_456_000))

            // Again: the line with an id exists already; the others are new.
            let again = try await ConveyorExecutable.run(
                ["enqueue-many", "--file", file.path, "--queue", "bulk"] + redis
            )
            // Line 1 has an id that exists; line 3's unique key is held by the live job line 3 made the first time.
            #expect(
                again.standardOutput.contains("enqueued 2 jobs, 1 already existed, 1 not created"),
                "\(again.standardOutput)"
            )

            let piped = try await ConveyorExecutable.run(
                ["enqueue-many", "--file", "-"] + redis,
                input: #"{"type":"echo","payload":{"from":"stdin"}}"# + "\n"
            )
            #expect(piped.status == 0 && piped.standardOutput.contains("enqueued 1 jobs"), "\(piped.standardError)")
            #expect(try await jobs.counts(queue: "default")[.pending] == 1)
        }
    }

    @Test func enqueueManyWithABadLineStoresNothing() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            _ = try await jobs.enqueue("keep", json: "{}")
            let before = try await datasetDigest(jobs)
            let cases: [(String, String)] = [
                (#"{"type":"echo"}"# + "\n" + #"{"type":"echo","payload":{"a":1,,}}"#, "line 2: not valid JSON"),
                (#"{"type":"echo","priorty":5}"#, #"unknown field "priorty""#),
                (#"{"payload":{}}"#, #""type" is missing"#),
                (#"{"type":"bad type!"}"#, "must be 1-128 letters"),
                (#"{"type":"echo","in":"5 parsecs"}"#, #""in" '5 parsecs' is not a number with a unit"#),
                (#"{"type":"echo","at":"next tuesday"}"#, "is not an ISO 8601 time"),
                (#"{"type":"echo","reference":"nocolon"}"#, "must be TYPE:ID"),
                (#"{"type":"echo","priority":500}"#, "from -100 to 100"),
                ("[1,2]", "expected a JSON object"),
            ]
            for (input, message) in cases {
                let result = try await ConveyorExecutable.run(["enqueue-many", "--file", "-"] + redis, input: input)
                #expect(result.status == 64, "\(input): \(result.standardError)")
                #expect(result.standardError.contains(message), "\(input): \(result.standardError)")
                #expect(result.standardError.contains("nothing was enqueued"), "\(result.standardError)")
            }
            // Refused only by the server's checks, far into the file: still nothing is stored.
            let good = Array(repeating: #"{"type":"echo","queue":"bulk"}"#, count: 1500)
            for bad in [
                #"{"type":"echo","queue":"bulk","reference":"bad type!:1"}"#,
                #"{"type":"echo","queue":"bulk","timeout":"40d"}"#,
            ] {
                let late = try await ConveyorExecutable.run(
                    ["enqueue-many", "--file", "-"] + redis,
                    input: (good + [bad]).joined(separator: "\n")
                )
                #expect(late.status == 64, "\(late.standardError)")
                #expect(late.standardError.contains("standard input line 1501: "), "\(late.standardError)")
                #expect(late.standardError.contains("nothing was enqueued"), "\(late.standardError)")
            }
            let missing = try await ConveyorExecutable.run(["enqueue-many", "--file", "/nonexistent.jsonl"] + redis)
            #expect(missing.status == 64 && missing.standardError.contains("cannot read --file /nonexistent.jsonl"))
            #expect(try await datasetDigest(jobs) == before)
        }
    }

    @Test func tailPrintsTransitionsOfEveryQueueUntilInterrupted() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let first = try await jobs.enqueue("echo", json: "{}", options: JobOptions(queue: "seen", id: "before"))
            let tail = ConveyorProcess(["tail", "--from-beginning", "--json"] + redis)
            try await tail.waitFor(#""id":"seen/before""#)
            // A queue created after tail started is followed too.
            let later = try await jobs.enqueue("echo", json: "{}", options: JobOptions(queue: "later", id: "x"))
            let claimed = try await jobs.take(later.id)
            try await jobs.fail(later.id, leaseToken: claimed.leaseToken, error: "boom", retry: false)
            try await tail.waitFor(#""to":"failed""#)
            try await tail.signal(SIGINT)
            #expect(try await tail.exit() != 0)
            let events = tail.output.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(events.first?["id"] as? String == first.id && events.first?["to"] as? String == "pending")
            let laterEvents = events.filter { $0["queue"] as? String == "later" }.map { $0["to"] as? String ?? "" }
            #expect(laterEvents == ["pending", "processing", "failed"], "\(events)")
            #expect(events.last?["error"] as? String == "boom")

            // Text lines: time, id, type, old → new status.
            let text = ConveyorProcess(["tail", "--queue", "seen", "--from-beginning"] + redis)
            try await text.waitFor("seen/before  echo  new → pending")
            try await text.signal(SIGTERM)
            _ = try await text.exit()
            // A reader that goes away ends tail at its next write (it does not write into a closed pipe forever).
            let pipeline = Task {
                try await ChildProcess().run(
                    ["/bin/sh", "-c", #""$0" tail --redis "$1" | head -n 1"#, ConveyorExecutable.path, redis[1]],
                    input: [],
                    environment: ProcessInfo.processInfo.environment
                )
            }
            let writer = Task {
                while !Task.isCancelled {
                    _ = try await jobs.enqueue("echo", json: "{}", options: JobOptions(queue: "seen"))
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            let piped = try await pipeline.value
            writer.cancel()
            #expect(piped.status == 0 && String(decoding: piped.output, as: UTF8.self).contains("new → pending"))
            let unknown = try await ConveyorExecutable.run(["tail", "--queue", "nope"] + redis)
            #expect(unknown.status == 64 && unknown.standardError.contains("no queue 'nope'"))
        }
    }

    @Test func listByReferenceRetryAllFailedAndThroughputInStats() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let upload = JobReference(type: "upload", id: "7")
            let a = try await jobs.enqueue("scan", json: "{}", options: JobOptions(queue: "files", reference: upload))
            let b = try await jobs.enqueue("thumb", json: "{}", options: JobOptions(queue: "images", reference: upload))
            _ = try await jobs.enqueue("scan", json: "{}", options: JobOptions(queue: "files"))
            let listed = try await ConveyorExecutable.run(
                ["list", "--reference", "upload:7", "--json", "--oldest"] + redis
            )
            let found = try #require(try parsedJSON(listed) as? [[String: Any]]).compactMap { $0["id"] as? String }
            #expect(found == [a.id, b.id], "\(listed.standardError)")
            let narrowed = try await ConveyorExecutable.run(
                ["list", "--reference", "upload:7", "--queue", "images", "--json"] + redis
            )
            #expect(try #require(try parsedJSON(narrowed) as? [[String: Any]]).count == 1)

            // Three failures, two completions in "files".
            var failed: [String] = []
            for number in 0..<3 {
                let id = try await jobs.enqueue(
                    "scan",
                    json: "{}",
                    options: JobOptions(queue: "files", id: "f\(number)")
                ).id
                try await jobs.fail(id, leaseToken: try await jobs.take(id).leaseToken, error: "x", retry: false)
                failed.append(id)
            }
            try await jobs.fail(b.id, leaseToken: try await jobs.take(b.id).leaseToken, error: "y", retry: false)
            // Without --queue: every queue, newest first.
            let everyQueue = try await ConveyorExecutable.run(["list", "--status", "failed", "--json"] + redis)
            let failedIDs = try #require(try parsedJSON(everyQueue) as? [[String: Any]]).compactMap {
                $0["id"] as? String
            }
            #expect(failedIDs == [b.id] + failed.reversed(), "\(everyQueue.standardError)")
            for id in try await jobs.list(queue: "files", status: .pending).map(\.id) {
                try await jobs.complete(id, leaseToken: try await jobs.take(id).leaseToken)
            }
            let stats = try await ConveyorExecutable.run(["stats", "--json"] + redis)
            let queues = try #require((try parsedJSON(stats) as? [String: Any])?["queues"] as? [[String: Any]])
            let files = try #require(queues.first { $0["queue"] as? String == "files" })
            let minute = try #require(files["last_minute"] as? [String: Int])
            #expect(minute["completed"] == 2 && minute["failed"] == 3, "\(minute)")
            let table = try await ConveyorExecutable.run(["stats"] + redis)
            #expect(table.standardOutput.contains("DONE/MIN") && table.standardOutput.contains("leader: none"))

            let retried = try await ConveyorExecutable.run(
                ["retry", "--queue", "files", "--all-failed", "--json"] + redis
            )
            #expect(
                try parsedJSON(retried) as? [String: Int] == ["retried": 3, "skipped": 0],
                "\(retried.standardError)"
            )
            for id in failed { #expect(try await jobs.get(id)?.status == .pending) }
            #expect(try await jobs.counts(queue: "files")[.failed] == 0)
        }
    }

    @Test func badInputGetsAClearErrorAndChangesNothing() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            _ = try await jobs.enqueue("keep", json: #"{"keep":true}"#, options: JobOptions(queue: "work"))
            let before = try await datasetDigest(jobs)
            let payloadFile = FileManager.default.temporaryDirectory.appendingPathComponent("p-\(UUID().uuidString)")
            try "{}".write(to: payloadFile, atomically: true, encoding: .utf8)
            let cases: [([String], Int32, String)] = [
                (["enqueue", "t", "--payload", #"{"a": 1,, }"#], 64, #"at character 9: {"a": 1,⟨here⟩, }"#),
                (["enqueue", "t", "--payload", "{}", "--payload-file", payloadFile.path], 64, "not both"),
                (["enqueue", "t", "--in", "5m", "--at", "2030-01-01T00:00:00Z"], 64, "--in DURATION or --at TIME"),
                (["enqueue", "t", "--in", "5 minutes"], 64, "--in"),
                (["enqueue", "t", "--at", "soon"], 64, "is not an ISO 8601 time"),
                (["get", "work/nope"], 1, "no job work/nope"),
                (["list", "--queue", "nope"], 64, "no queue 'nope' in this namespace (known: work)"),
                (["list", "--status", "done"], 64, "--status 'done' is not one of"),
                (["retry", "--queue", "nope", "--all-failed"], 64, "no queue 'nope'"),
                (["retry", "work/x", "--all-failed", "--queue", "work"], 64, "not both"),
                (["retry"], 64, "give job ids"),
                (["cleanup", "--queue", "nope"], 64, "no queue 'nope'"),
                (["cleanup", "--older-than", "ages"], 64, "--older-than"),
                (["cleanup", "--status", "pending"], 64, "completed, failed or cancelled"),
                (["worker", "--exec", "t=/no/such/script.sh"], 64, "'/no/such/script.sh' does not exist"),
                (["worker", "--exec", "t=no-such-program --flag"], 64, "'no-such-program' is not a command in PATH"),
                (["worker", "--exec", "t=\(payloadFile.path)"], 64, "is not executable"),
                (["worker", "--exec", "nocommand"], 64, "must be TYPE=COMMAND"),
                (["worker", "--exec", "t=sh ./missing.sh"], 64, "the script './missing.sh' does not exist"),
                (["worker", "--exec", "t=python3 -u nowhere/report.py --fast"], 64, "'nowhere/report.py' does not"),
                (["stats", "--namespace", "bad ns"], 64, "--namespace 'bad ns' must be letters"),
                (["enqueue", "t", "--in", "5x"], 64, "A duration: 500ms, 30s, 5m, 2h or 7d"),
                (["schedule", "add", "x", "t", "--every", "1m", "--cron", "@daily"], 64, "one of them"),
                (["schedule", "add", "x", "t", "--every", "1m", "--payload", #"{"a":1,}"#], 64, "at character 8"),
                (["schedule", "add", "x", "t", "--every", "1m", "--tz", "Europe/Paris"], 64, "--tz goes with --cron"),
                (["enqueue", "t", "--payload", #"{"a":1,}"#], 64, "expected a member name in double quotes"),
            ]
            for (arguments, status, message) in cases {
                let result = try await ConveyorExecutable.run(arguments + redis)
                #expect(result.status == status, "\(arguments): \(result.standardError)")
                #expect(result.standardError.contains(message), "\(arguments): \(result.standardError)")
            }
            #expect(try await datasetDigest(jobs) == before)

            // A time in the past: a warning, and the job runs now.
            let past = try await ConveyorExecutable.run(
                ["enqueue", "t", "--at", "2020-01-01T00:00:00", "--queue", "work"] + redis
            )
            #expect(past.status == 0 && past.standardError.contains("is in the past; the job runs now"))
            let pastID = past.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try await jobs.get(pastID)?.status == .pending)
            // A zone without seconds.
            let zoned = try await ConveyorExecutable.run(
                ["enqueue", "t", "--at", "2030-01-01T09:00+01:00", "--queue", "work", "--json"] + redis
            )
            #expect((try parsedJSON(zoned) as? [String: Any])?["run_at"] as? Int == 1_893_484_800_000)
        }
    }

    @Test func actionsPrintJSONWhenAsked() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)", "--json"]
            let id = try await jobs.enqueue("t", json: "{}", options: JobOptions(queue: "q", delay: .seconds(3600))).id
            let cancelled = try await ConveyorExecutable.run(["cancel", id, "q/missing"] + redis)
            #expect(cancelled.status == 1)
            let report = try #require(try parsedJSON(cancelled) as? [[String: String]])
            #expect(report.first == ["id": id, "status": "cancelled"])
            #expect(report.last?["id"] == "q/missing" && report.last?["error"]?.contains("no job") == true)
            let paused = try await ConveyorExecutable.run(["pause", "q"] + redis)
            #expect((try parsedJSON(paused) as? [String: Any])?["paused"] as? Bool == true)
            _ = try await ConveyorExecutable.run(["schedule", "add", "s", "t", "--every", "1h"] + redis)
            let removed = try await ConveyorExecutable.run(["schedule", "remove", "s"] + redis)
            #expect((try parsedJSON(removed) as? [String: String])?["status"] == "removed")
        }
    }

    @Test func schedulesAreFoundByNameAndUnknownQueuesAreNotPausedIntoExistence() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            _ = try await ConveyorExecutable.run(
                ["schedule", "add", "s1", "t", "--every", "1h", "--queue", "reports"] + redis
            )
            let paused = try await ConveyorExecutable.run(["schedule", "pause", "s1"] + redis)
            #expect(paused.status == 0 && paused.standardOutput.contains("s1: paused"), "\(paused.standardError)")
            #expect(try await jobs.schedules().first?.isPaused == true)
            _ = try await ConveyorExecutable.run(
                ["schedule", "add", "s1", "t", "--every", "1h", "--queue", "other"] + redis
            )
            let ambiguous = try await ConveyorExecutable.run(["schedule", "resume", "s1"] + redis)
            #expect(
                ambiguous.status == 64 && ambiguous.standardError.contains("in queues other, reports; give --queue")
            )
            #expect(
                try await ConveyorExecutable.run(["schedule", "remove", "s1", "--queue", "reports"] + redis).status == 0
            )
            #expect(try await ConveyorExecutable.run(["schedule", "remove", "s1"] + redis).status == 0)
            let none = try await ConveyorExecutable.run(["schedule", "resume", "s1"] + redis)
            #expect(none.status == 1 && none.standardError.contains("no schedule s1"))

            let before = try await datasetDigest(jobs)
            for command in ["pause", "resume"] {
                let result = try await ConveyorExecutable.run([command, "nope"] + redis)
                #expect(
                    result.status == 64 && result.standardError.contains("no queue 'nope'"),
                    "\(result.standardError)"
                )
            }
            #expect(try await datasetDigest(jobs) == before)
        }
    }

    @Test func schedulerAloneTakesTheLeadAndLeaderShowsIt() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let none = try await ConveyorExecutable.run(["leader"] + redis)
            #expect(none.status == 1 && none.standardOutput.contains("no scheduler leader"))
            _ = try await jobs.upsert(try Schedule(name: "tick", type: "t", rule: .every(.seconds(1))))
            let scheduler = ConveyorProcess(["scheduler", "--lease", "2s"] + redis)
            try await eventually(timeout: .seconds(20), "the scheduler to lead") { try await jobs.leader() != nil }
            let leader = try await ConveyorExecutable.run(["leader", "--json"] + redis)
            #expect(leader.status == 0, "\(leader.standardError)")
            let object = try #require(try parsedJSON(leader) as? [String: Any])
            #expect(object["pid"] as? Int == Int(scheduler.child.pid) && object["epoch"] as? Int == 1)
            // It fires the schedule although no worker runs.
            try await eventually(timeout: .seconds(20), "a fire") { (try await jobs.counts()[.pending] ?? 0) > 0 }
            try await scheduler.signal(SIGTERM)
            #expect(try await scheduler.exit() == 0, "\(scheduler.output)")
            // A graceful stop gives the lease up at once.
            #expect(try await ConveyorExecutable.run(["leader"] + redis).status == 1)
        }
    }

    @Test func colourAndProgressBarsOnlyOnATerminal() async throws {
        try await withJobQueue { jobs, server in
            let redis = "--redis redis://127.0.0.1:\(server.port)"
            let id = try await jobs.enqueue("t", json: "{}").id
            try await jobs.fail(id, leaseToken: try await jobs.take(id).leaseToken, error: "x", retry: false)
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("tty-\(UUID().uuidString).jsonl")
            try String(repeating: #"{"type":"echo"}"# + "\n", count: 50).write(
                to: file,
                atomically: true,
                encoding: .utf8
            )
            /// Runs a command line under `script`, which gives it a terminal, and returns what the terminal showed.
            func onTerminal(_ command: String, environment: [String: String] = [:]) async throws -> String {
                // A plain terminal, whatever the test runner's own settings.
                var base = ProcessInfo.processInfo.environment
                base["NO_COLOR"] = nil
                base["TERM"] = "xterm"
                let ended = try await ChildProcess().run(
                    ["script", "-qec", "\(ConveyorExecutable.path) \(command)", "/dev/null"],
                    input: [],
                    environment: base.merging(environment) { $1 }
                )
                #expect(ended.status == 0, "\(command)")
                return String(decoding: ended.output, as: UTF8.self)
            }
            let red = "\u{1B}[31mfailed"
            let coloured = try await onTerminal("list --status failed \(redis)")
            #expect(coloured.contains(red), "\(coloured.debugDescription)")
            #expect(
                try await !onTerminal("list --status failed \(redis)", environment: ["NO_COLOR": "1"]).contains(
                    "\u{1B}["
                )
            )
            let piped = try await ConveyorExecutable.run(
                ["list", "--status", "failed"] + redis.split(separator: " ").map(String.init)
            )
            #expect(piped.standardOutput.contains("failed") && !piped.standardOutput.contains("\u{1B}["))

            let bar = try await onTerminal("enqueue-many --file \(file.path) \(redis)")
            #expect(bar.contains("enqueuing") && bar.contains("█") && bar.contains("50/50"), "\(bar)")
            let quiet = try await ConveyorExecutable.run(
                ["enqueue-many", "--file", file.path] + redis.split(separator: " ").map(String.init)
            )
            #expect(quiet.status == 0 && !quiet.standardError.contains("enqueuing"), "\(quiet.standardError)")
        }
    }

    @Test func unreachableRedisAndAWrongPasswordAreOneLineErrors() async throws {
        let closed = try RefusingPort()
        let port = closed.port
        let refused = try await ConveyorExecutable.run(["stats", "--redis", "redis://:s3cret@127.0.0.1:\(port)"])
        #expect(refused.status == 1)
        #expect(refused.standardError.contains("redis://:***@127.0.0.1:\(port)"), "\(refused.standardError)")
        #expect(!refused.standardError.contains("s3cret") && refused.standardError.contains("check that redis-server"))
        #expect(refused.standardError.split(separator: "\n").count == 1)
        try await withRedisServer(.init(arguments: ["--requirepass", "right"])) { server in
            let wrong = try await ConveyorExecutable.run(
                ["enqueue", "t", "--redis", "redis://:wrong@127.0.0.1:\(server.port)"]
            )
            #expect(wrong.status == 1 && !wrong.standardError.contains("wrong@"), "\(wrong.standardError)")
            #expect(wrong.standardError.lowercased().contains("password"), "\(wrong.standardError)")
            let none = try await ConveyorExecutable.run(["stats", "--redis", "redis://127.0.0.1:\(server.port)"])
            #expect(none.status == 1 && none.standardError.contains("needs a password"), "\(none.standardError)")
            let right = try await ConveyorExecutable.run(
                ["enqueue", "t", "--install-library", "--redis", "redis://:right@127.0.0.1:\(server.port)"]
            )
            #expect(right.status == 0, "\(right.standardError)")
        }
    }
}
