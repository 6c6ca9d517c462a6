import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import Conveyor

@Suite("conveyor job commands", .timeLimit(.minutes(2)))
struct JobCommandsTests {
    @Test func enqueueGetListWaitCancelRetryRemoveAndStats() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let enqueued = try await ConveyorExecutable.run(
                [
                    "enqueue", "echo", "--payload", #"{"n":1}"#, "--queue", "cli", "--reference", "upload:42", "--id",
                    "cli-1", "--json",
                ] + redis
            )
            #expect(enqueued.status == 0, "\(enqueued.standardError)")
            // With --json, enqueue prints the job (as get --json does) and whether it was created.
            let reply = try JSONSerialization.jsonObject(with: Data(enqueued.standardOutput.utf8)) as? [String: Any]
            #expect(reply?["id"] as? String == "cli/cli-1" && reply?["outcome"] as? String == "created")
            #expect(reply?["type"] as? String == "echo" && reply?["payload"] as? [String: Int] == ["n": 1])
            #expect((reply?["reference"] as? [String: String]) == ["type": "upload", "id": "42"])

            let got = try await ConveyorExecutable.run(["get", "cli/cli-1", "--json"] + redis)
            let job = try JSONSerialization.jsonObject(with: Data(got.standardOutput.utf8)) as? [String: Any]
            #expect(job?["status"] as? String == "pending" && (job?["payload"] as? [String: Int]) == ["n": 1])

            let listed = try await ConveyorExecutable.run(["list", "--queue", "cli", "--status", "pending"] + redis)
            #expect(listed.standardOutput.contains("cli/cli-1") && listed.standardOutput.contains("echo"))

            let worker = WorkerProcess(redis + ["--queue", "cli", "--example-handlers", "--no-scheduler"])
            let waited = try await ConveyorExecutable.run(["wait", "cli/cli-1", "--timeout", "30s"] + redis)
            #expect(waited.status == 0 && waited.standardOutput.contains(#"{"n":1}"#), "\(waited.standardError)")
            try await worker.signal(SIGTERM)
            _ = try await worker.exit()

            let failing = try await ConveyorExecutable.run(["enqueue", "fail", "--queue", "cli", "--in", "1h"] + redis)
            let failingID = failing.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(
                try await ConveyorExecutable.run(["cancel", failingID] + redis).standardOutput.contains("cancelled")
            )
            #expect(try await ConveyorExecutable.run(["retry", failingID] + redis).standardOutput.contains("pending"))
            #expect(try await ConveyorExecutable.run(["remove", failingID] + redis).standardOutput.contains("removed"))
            let missing = try await ConveyorExecutable.run(["remove", failingID] + redis)
            #expect(missing.status == 1 && missing.standardError.contains("no job"))

            #expect(try await ConveyorExecutable.run(["pause", "cli"] + redis).status == 0)
            #expect(try await jobs.isPaused(queue: "cli"))
            let stats = try await ConveyorExecutable.run(["stats", "--json"] + redis)
            let object = try JSONSerialization.jsonObject(with: Data(stats.standardOutput.utf8)) as? [String: Any]
            let queues = object?["queues"] as? [[String: Any]]
            #expect(queues?.first?["queue"] as? String == "cli" && queues?.first?["paused"] as? Bool == true)
            #expect(try await ConveyorExecutable.run(["resume", "cli"] + redis).status == 0)
        }
    }

    @Test func badInputGetsOneClearLineAndNothingIsStored() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let badJSON = try await ConveyorExecutable.run(["enqueue", "t", "--payload", "{oops"] + redis)
            #expect(badJSON.status == 64 && badJSON.standardError.contains("not valid JSON"))
            let badReference = try await ConveyorExecutable.run(["enqueue", "t", "--reference", "nocolon"] + redis)
            #expect(badReference.status == 64 && badReference.standardError.contains("TYPE:ID"))
            let badTime = try await ConveyorExecutable.run(["enqueue", "t", "--at", "tomorrow"] + redis)
            #expect(badTime.status == 64 && badTime.standardError.contains("ISO 8601"))
            let badStatus = try await ConveyorExecutable.run(["list", "--status", "sleeping"] + redis)
            #expect(badStatus.status == 64 && badStatus.standardError.contains("--status 'sleeping'"))
            let timeout = try await ConveyorExecutable.run(
                ["wait", "default/nothing-yet", "--timeout", "200ms"] + redis
            )
            #expect(timeout.status == 1 && timeout.standardError.contains("no job"))
            #expect(try await jobs.queues().isEmpty)
        }
    }
}

@Suite("conveyor schedule, workers and cleanup commands", .timeLimit(.minutes(1)))
struct AdminCommandsTests {
    @Test func scheduleLifecycleFromTheCommandLine() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let added = try await ConveyorExecutable.run(
                ["schedule", "add", "nightly", "report", "--cron", "0 3 * * *", "--tz", "Europe/Berlin"] + redis
            )
            #expect(added.status == 0 && added.standardOutput.contains("nightly: created"), "\(added.standardError)")
            let again = try await ConveyorExecutable.run(
                ["schedule", "add", "nightly", "report", "--cron", "0 3 * * *", "--tz", "Europe/Berlin"] + redis
            )
            #expect(again.standardOutput.contains("nightly: unchanged"))
            let listed = try await ConveyorExecutable.run(["schedule", "list"] + redis)
            #expect(listed.standardOutput.contains("cron '0 3 * * *' Europe/Berlin"))
            #expect(listed.standardOutput.hasPrefix("NAME") && listed.standardOutput.contains("(in "))
            _ = try await ConveyorExecutable.run(["schedule", "add", "often", "ping", "--every", "90s"] + redis)
            let table = try await ConveyorExecutable.run(["schedule", "list"] + redis)
            #expect(table.standardOutput.contains("every 90s"), "\(table.standardOutput)")
            let json = try await ConveyorExecutable.run(["schedule", "list", "--json"] + redis)
            let objects = try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [[String: Any]]
            let nightly = objects?.first { $0["name"] as? String == "nightly" }
            #expect(nightly?["cron"] as? String == "0 3 * * *" && nightly?["time_zone"] as? String == "Europe/Berlin")
            #expect(objects?.first { $0["name"] as? String == "often" }?["every_ms"] as? Int == 90_000)
            _ = try await ConveyorExecutable.run(["schedule", "remove", "often"] + redis)
            #expect(try await ConveyorExecutable.run(["schedule", "pause", "nightly"] + redis).status == 0)
            #expect(try await jobs.schedules().first?.isPaused == true)
            #expect(try await ConveyorExecutable.run(["schedule", "resume", "nightly"] + redis).status == 0)
            #expect(try await ConveyorExecutable.run(["schedule", "remove", "nightly"] + redis).status == 0)
            #expect(try await jobs.schedules().isEmpty)
            let badCron = try await ConveyorExecutable.run(
                ["schedule", "add", "x", "t", "--cron", "61 * * * *"] + redis
            )
            #expect(badCron.status == 64 && badCron.standardError.contains("minute 61 is out of range"))
            let badZone = try await ConveyorExecutable.run(
                ["schedule", "add", "x", "t", "--cron", "@daily", "--tz", "Mars/Base"] + redis
            )
            #expect(badZone.status == 64 && badZone.standardError.contains("unknown time zone"))
            let tooFast = try await ConveyorExecutable.run(["schedule", "add", "x", "t", "--every", "500ms"] + redis)
            #expect(tooFast.status == 64 && tooFast.standardError.contains("below the minimum"))
        }
    }

    @Test func workersAndCleanup() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            let id = try await jobs.enqueue("t", json: "{}").id
            try await jobs.complete(id, leaseToken: try await jobs.take(id).leaseToken)
            let cleaned = try await ConveyorExecutable.run(["cleanup", "--older-than", "0s"] + redis)
            #expect(cleaned.standardOutput.contains("removed 1 completed jobs"), "\(cleaned.standardError)")
            let none = try await ConveyorExecutable.run(["workers"] + redis)
            #expect(none.standardOutput.contains("no live workers"))
            let worker = WorkerProcess(redis + ["--example-handlers", "--no-scheduler"])
            try await eventually("the worker to register") { try await !jobs.workers().isEmpty }
            let listed = try await ConveyorExecutable.run(["workers", "--json"] + redis)
            let workers = try JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8)) as? [[String: Any]]
            #expect(workers?.first?["pid"] as? Int == Int(try await worker.pid()))
            let table = try await ConveyorExecutable.run(["workers"] + redis)
            let rows = table.standardOutput.split(separator: "\n")
            #expect(rows.first?.hasPrefix("ID") == true && rows.count == 2, "\(table.standardOutput)")
            #expect(rows.last?.contains(" \(try await worker.pid()) ") == true && rows.last?.contains("0/10") == true)
            try await worker.signal(SIGTERM)
            _ = try await worker.exit()
        }
    }

    @Test func statsWithHistoryPrintsJobsPerMinutePerQueue() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            _ = try await jobs.enqueueMany(
                (0..<3).map { _ in NewJob("t", json: "{}", options: JobOptions(queue: "cli")) }
            )
            let claimed = try await jobs.claim(queue: "cli", count: 2).jobs
            try await jobs.complete(claimed[0].job.id, leaseToken: claimed[0].leaseToken)

            let text = try await ConveyorExecutable.run(["stats", "--history", "3"] + redis)
            #expect(text.status == 0, "\(text.standardError)")
            let lines = text.standardOutput.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let title = try #require(lines.firstIndex(of: "cli: jobs per minute, last 3 minutes"), "\(lines)")
            let header = lines[title + 1].split(separator: " ").map(String.init)
            #expect(
                header == ["MINUTE", "ENQUEUED", "STARTED", "COMPLETED", "FAILED", "RETRIED", "STALLED", "CANCELLED"]
            )
            let rows = lines[(title + 2)...].filter { !$0.isEmpty }.map { $0.split(separator: " ").map(String.init) }
            #expect(rows.count == 3 && rows.allSatisfy { $0.count == 8 && $0[0].count == 5 }, "\(rows)")
            let enqueued = rows.compactMap { Int($0[1]) }.reduce(0, +)
            let completed = rows.compactMap { Int($0[3]) }.reduce(0, +)
            #expect(enqueued == 3 && completed == 1, "\(rows)")

            let json = try await ConveyorExecutable.run(["stats", "--history", "3", "--json"] + redis)
            let object = try JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8)) as? [String: Any]
            let queue = try #require((object?["queues"] as? [[String: Any]])?.first)
            let history = try #require(queue["history"] as? [[String: Any]], "\(json.standardOutput)")
            #expect(history.count == 3)
            let minutes = history.compactMap { $0["minute"] as? Int }
            #expect(minutes.count == 3 && minutes == minutes.sorted() && minutes.allSatisfy { $0 % 60_000 == 0 })
            #expect(history.compactMap { $0["started"] as? Int }.reduce(0, +) == 2)
            #expect(history.compactMap { $0["completed"] as? Int }.reduce(0, +) == 1)

            // Without the flag, stats prints what it always did.
            let plain = try await ConveyorExecutable.run(["stats", "--json"] + redis)
            let plainQueue = try #require(
                ((try JSONSerialization.jsonObject(with: Data(plain.standardOutput.utf8)) as? [String: Any])?["queues"]
                    as? [[String: Any]])?.first
            )
            #expect(plainQueue["history"] == nil)
            #expect(!(try await ConveyorExecutable.run(["stats"] + redis)).standardOutput.contains("jobs per minute"))
        }
    }
}
