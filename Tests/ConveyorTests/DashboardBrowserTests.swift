import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Issue 14: the dashboard in a real browser. Debian's headless Chromium, driven by Selenium from
/// `Tests/Browser/dashboard_browser.py`, against a live `conveyor serve`, a live `conveyor worker` and a private
/// redis-server holding real jobs. The script signs in through the form, visits every page, clicks the buttons and
/// checks the effects in Redis; its screenshots go to `.build/screenshots/dashboard/` (not committed).
@Suite("the dashboard in headless Chromium", .timeLimit(.minutes(6)))
struct DashboardBrowserTests {
    static let xss = "<script>window.__xss=1</script>"

    @Test func everyPageActionAndLiveUpdateWorksInARealBrowser() async throws {
        for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver", "/usr/bin/python3"] {
            #expect(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing: run deploy/setup.sh")
        }
        try await withJobQueue { jobs, server in
            try await Self.seed(jobs)
            let redisURL = "redis://127.0.0.1:\(server.port)"
            // A real worker on the queue `work`: the built-in `sleep` handler takes the time its payload asks for.
            let worker = WorkerProcess([
                "--redis", redisURL, "--queue", "work", "--example-handlers", "--concurrency", "2", "--log-level",
                "warning",
            ])
            try await eventually(timeout: .seconds(60), "the worker to finish the seeded jobs of work") {
                try await jobs.counts(queue: "work")[.completed] == 24
            }
            let serve = try await ServeProcess.start(server)
            // Another server on a namespace with no queue yet, for an overview that starts empty.
            let empty = try await ServeProcess.start(server, arguments: ["--namespace", "fresh"])

            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
                "conveyor-browser-\(UUID().uuidString)"
            )
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: scratch) }
            let screenshots = repositoryRoot.appendingPathComponent(".build/screenshots/dashboard")
            try? FileManager.default.removeItem(at: screenshots)
            try FileManager.default.createDirectory(at: screenshots, withIntermediateDirectories: true)
            let profile = scratch.appendingPathComponent("chromium-profile").path

            let browser = ChildProcess()
            let ended = try await browser.run(
                [
                    "/usr/bin/python3",
                    repositoryRoot.appendingPathComponent("Tests/Browser/dashboard_browser.py").path,
                    "--base-url", "http://127.0.0.1:\(serve.port)", "--redis-port", String(server.port),
                    "--token", "test-token", "--screenshots", screenshots.path, "--profile", profile,
                    "--empty-base-url", "http://127.0.0.1:\(empty.port)",
                ],
                input: [],
                // HOME in the scratch folder: Chromium's crash-report database and caches go there, not to ~.
                environment: [
                    "PATH": "/usr/bin:/bin", "HOME": scratch.path, "XDG_CONFIG_HOME": scratch.path + "/config",
                    "XDG_CACHE_HOME": scratch.path + "/cache", "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1",
                    "LANG": "C.UTF-8",
                ]
            )
            let leftovers = Self.stopLeftovers(group: browser.group, marker: scratch.path)
            let output = String(decoding: ended.output, as: UTF8.self)
            let errors = String(decoding: ended.errorTail, as: UTF8.self)
            print("dashboard_browser.py (screenshots in \(screenshots.path)):\n\(output)")
            #expect(ended.status == 0, "the browser script failed (\(ended.status)):\n\(output)\n\(errors)")
            #expect(leftovers.isEmpty, "browser processes were left running: \(leftovers)")

            try await worker.signal(SIGTERM)
            _ = try await worker.exit()
            _ = (serve, empty)
        }
    }

    /// Jobs in several queues and every status, with a failed job, a completed one with a result, a job whose payload,
    /// type and error hold a `<script>` element, and a schedule. The script knows these ids.
    static func seed(_ jobs: JobQueue) async throws {
        // mail: two completed (with results), one failed for good, three pending, one scheduled.
        for id in ["sent-1", "sent-2"] {
            try await jobs.enqueue(
                "email",
                json: #"{"to":"\#(id)@example.com","subject":"Welcome"}"#,
                options: JobOptions(queue: "mail", id: id)
            )
        }
        try await jobs.enqueue(
            "email",
            json: #"{"to":"nobody@example.com","subject":"Welcome"}"#,
            options: JobOptions(queue: "mail", id: "bounce-1", maxRetries: 0)
        )
        for claimed in try await jobs.claim(queue: "mail", count: 3).jobs {
            if claimed.job.id == "mail/bounce-1" {
                _ = try await jobs.fail(
                    claimed.job.id,
                    leaseToken: claimed.leaseToken,
                    error: "550 5.1.1 mailbox unavailable",
                    retry: false
                )
            } else {
                try await jobs.complete(
                    claimed.job.id,
                    leaseToken: claimed.leaseToken,
                    result: #"{"message_id":"<\#(claimed.job.id)@mx.example.com>"}"#
                )
            }
        }
        for index in 1...3 {
            try await jobs.enqueue(
                "email",
                json: #"{"to":"user\#(index)@example.com","subject":"Welcome"}"#,
                options: JobOptions(queue: "mail", id: "welcome-\(index)")
            )
        }
        try await jobs.enqueue(
            "email",
            json: #"{"to":"later@example.com"}"#,
            options: JobOptions(queue: "mail", id: "reminder-1", delay: .seconds(3600))
        )

        // reports: a failed job with a hostile payload, error and type (a type the enqueue refuses, written into the
        // job's hash as any Redis client could), one cancelled, one pending.
        try await jobs.enqueue(
            "report",
            json: #"{"title":"\#(xss)","rows":3}"#,
            options: JobOptions(queue: "reports", id: "xss-1", maxRetries: 0)
        )
        let hostile = try #require(try await jobs.claim(queue: "reports", count: 1).jobs.first)
        _ = try await jobs.fail(
            hostile.job.id,
            leaseToken: hostile.leaseToken,
            error: "template error near \(xss)",
            retry: false
        )
        _ = try await jobs.redis.send("HSET", jobs.keys.job("reports", "xss-1"), "type", xss)
        try await jobs.enqueue("report", json: "{}", options: JobOptions(queue: "reports", id: "old-1"))
        _ = try await jobs.cancel("reports/old-1")
        try await jobs.enqueue(
            "report",
            json: #"{"month":"2024-05"}"#,
            options: JobOptions(queue: "reports", id: "may")
        )

        // idle: no worker serves it; the script enqueues into it and cancels its jobs.
        for index in 1...2 {
            try await jobs.enqueue("noop", json: "{}", options: JobOptions(queue: "idle", id: "idle-\(index)"))
        }

        // work: the worker's queue, some jobs to give the chart and the counts real history.
        _ = try await jobs.enqueueMany(
            (0..<24).map { NewJob("sleep", json: #"{"ms":\#(20 + $0 * 5)}"#, options: JobOptions(queue: "work")) }
        )

        // A schedule that does not fire during the test (03:00 on the 1st of January).
        _ = try await jobs.upsert(
            try Schedule(
                name: "nightly-digest",
                type: "digest",
                payload: #"{"list":"all"}"#,
                queue: "mail",
                rule: .cron(try CronExpression("0 3 1 1 *"), timeZone: try Schedule.timeZone("UTC"))
            )
        )
    }

    /// Kills whatever the script left running: processes still in its process group (chromedriver, Chromium) and any
    /// process that names the scratch folder (Chromium's crash handler leaves the group; its database is in the
    /// scratch HOME). Processes get 3 s to end by themselves first; returns those that had to be killed.
    static func stopLeftovers(group: Int32, marker: String) -> [String] {
        func scan() -> [(Int32, String)] {
            var found: [(Int32, String)] = []
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            for entry in entries {
                guard let pid = Int32(entry), pid != getpid() else { continue }
                guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                    let close = stat.lastIndex(of: ")")
                else { continue }
                // After "pid (comm) ": state, ppid, pgrp.
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                guard fields.count > 3, fields[0] != "Z" else { continue }
                let command =
                    (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))).map {
                        String(decoding: $0.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
                    } ?? ""
                if (group > 0 && Int32(fields[2]) == group) || command.contains(marker) {
                    found.append((pid, command))
                }
            }
            return found
        }
        var found = scan()
        for _ in 0..<10 where !found.isEmpty {
            usleep(300_000)
            found = scan()
        }
        for (pid, _) in found { _ = kill(pid, SIGKILL) }
        return found.map { "\($0.0) \($0.1.prefix(200))" }
    }
}
