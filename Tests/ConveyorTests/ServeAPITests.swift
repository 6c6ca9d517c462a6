import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import Conveyor

@Suite("conveyor serve: the JSON API", .timeLimit(.minutes(3)))
struct ServeAPITests {
    @Test func jobsCanBeEnqueuedReadListedAndChanged() async throws {
        try await withJobQueue { jobs, server in
            let serve = try await ServeProcess.start(server)
            let created = try await serve.request(
                "POST",
                "/api/jobs",
                json: [
                    "type": "email", "payload": ["to": "a@example.com"], "queue": "mail", "id": "welcome-1",
                    "priority": 5, "reference": ["type": "user", "id": "42"], "max_retries": 2,
                ]
            )
            #expect(created.status == 201, "\(created.text)")
            #expect(try created.json()["id"] as? String == "mail/welcome-1")
            let stored = try #require(try await jobs.get("mail/welcome-1"))
            #expect(stored.priority == 5 && stored.maxRetries == 2 && stored.payload == #"{"to":"a@example.com"}"#)

            // Again with the same id: nothing new, 200 and the existing job.
            let again = try await serve.request(
                "POST",
                "/api/jobs",
                json: ["type": "email", "queue": "mail", "id": "welcome-1"]
            )
            #expect(try again.status == 200 && (again.json()["outcome"] as? String) == "existing")

            let bulk = try await serve.request(
                "POST",
                "/api/jobs/bulk",
                json: [
                    "jobs": [
                        ["type": "resize", "queue": "mail"], ["type": "resize", "queue": "mail", "delay_ms": 60_000],
                    ]
                ]
            )
            #expect(bulk.status == 201, "\(bulk.text)")
            #expect(
                try (bulk.json()["jobs"] as? [[String: Any]])?.map { $0["status"] as? String } == [
                    "pending", "scheduled",
                ]
            )

            let job = try await serve.request("GET", "/api/jobs/mail/welcome-1")
            let object = try job.json()
            #expect(object["type"] as? String == "email" && object["status"] as? String == "pending")
            #expect((object["payload"] as? [String: Any])?["to"] as? String == "a@example.com")

            let pending = try await serve.request("GET", "/api/jobs?queue=mail&status=pending")
            #expect(try (pending.json()["jobs"] as? [Any])?.count == 2 && (pending.json()["total"] as? Int) == 2)
            let ofType = try await serve.request("GET", "/api/jobs?queue=mail&status=pending&type=resize")
            #expect(try (ofType.json()["jobs"] as? [[String: Any]])?.map { $0["type"] as? String } == ["resize"])
            let byReference = try await serve.request("GET", "/api/jobs?reference_type=user&reference_id=42")
            #expect(try (byReference.json()["jobs"] as? [[String: Any]])?.first?["id"] as? String == "mail/welcome-1")
            let byID = try await serve.request("GET", "/api/jobs?id=mail/welcome-1")
            #expect(try (byID.json()["jobs"] as? [Any])?.count == 1)

            // Cancel, retry (back to pending), fail for real, retry all failed, remove.
            #expect(try await serve.request("POST", "/api/jobs/mail/welcome-1/cancel").status == 200)
            #expect(try await jobs.get("mail/welcome-1")?.status == .cancelled)
            #expect(try await serve.request("POST", "/api/jobs/mail/welcome-1/retry").status == 200)
            #expect(try await jobs.get("mail/welcome-1")?.status == .pending)
            let claimed = try await jobs.claim(queue: "mail", count: 10)
            for claim in claimed.jobs {
                _ = try await jobs.fail(claim.job.id, leaseToken: claim.leaseToken, error: "boom", retry: false)
            }
            let retried = try await serve.request("POST", "/api/queues/mail/retry-failed")
            #expect(try (retried.json()["retried"] as? Int) == 2, "\(retried.text)")
            let events = try await serve.request("GET", "/api/jobs/mail/welcome-1/events")
            let timeline = try #require(try events.json()["events"] as? [[String: Any]])
            #expect(timeline.map { $0["to"] as? String }.prefix(2) == ["pending", "cancelled"])
            #expect(try await serve.request("DELETE", "/api/jobs/mail/welcome-1").status == 200)
            #expect(try await jobs.get("mail/welcome-1") == nil)
        }
    }

    @Test func queuesSchedulesWorkersLeaderAndStatsAnswer() async throws {
        try await withJobQueue { jobs, server in
            let serve = try await ServeProcess.start(server)
            _ = try await jobs.enqueue("ping", json: "{}", options: JobOptions(queue: "ops"))
            let queues = try await serve.request("GET", "/api/queues")
            let listed = try #require(try queues.json()["queues"] as? [[String: Any]])
            #expect(listed.first?["queue"] as? String == "ops")
            #expect((listed.first?["counts"] as? [String: Int])?["pending"] == 1)

            #expect(try await serve.request("POST", "/api/queues/ops/pause").status == 200)
            #expect(try await jobs.isPaused(queue: "ops"))
            #expect(try (await serve.request("GET", "/api/queues/ops").json()["paused"] as? Bool) == true)
            #expect(try await serve.request("POST", "/api/queues/ops/resume").status == 200)
            #expect(try await jobs.isPaused(queue: "ops") == false)

            let added = try await serve.request(
                "POST",
                "/api/schedules",
                json: [
                    "name": "nightly", "type": "report", "queue": "ops", "cron": "0 3 * * *",
                    "time_zone": "Europe/Berlin",
                ]
            )
            #expect(added.status == 201, "\(added.text)")
            let schedules = try #require(
                try await serve.request("GET", "/api/schedules").json()["schedules"] as? [[String: Any]]
            )
            #expect(
                schedules.first?["name"] as? String == "nightly" && schedules.first?["cron"] as? String == "0 3 * * *"
            )
            #expect(try await serve.request("POST", "/api/schedules/ops/nightly/pause").status == 200)
            #expect(try await jobs.schedules().first?.isPaused == true)
            #expect(try await serve.request("POST", "/api/schedules/ops/nightly/resume").status == 200)
            #expect(try await jobs.schedules().first?.isPaused == false)
            let run = try await serve.request("POST", "/api/schedules/ops/nightly/run")
            #expect(run.status == 201, "\(run.text)")
            #expect(try await jobs.counts(queue: "ops")[.pending] == 2)
            #expect(try await serve.request("DELETE", "/api/schedules/ops/nightly").status == 200)
            #expect(try await jobs.schedules().isEmpty)

            #expect(try (await serve.request("GET", "/api/workers").json()["workers"] as? [Any])?.isEmpty == true)
            #expect(try await serve.request("GET", "/api/leader").json()["leader"] is NSNull)
            let stats = try await serve.request("GET", "/api/stats")
            #expect(
                try ((stats.json()["queues"] as? [[String: Any]])?.first?["stats"] as? [String: Int])?["enqueued"] == 2
            )
            let throughput = try await serve.request("GET", "/api/queues/ops/throughput?window_ms=60000")
            #expect(try throughput.status == 200 && (throughput.json()["completed"] as? Int) == 0)
            let history = try await serve.request("GET", "/api/queues/ops/history?minutes=5")
            let minutes = try #require(try history.json()["minutes"] as? [[String: Any]])
            #expect(minutes.count == 5)
            #expect(minutes.compactMap { ($0["counts"] as? [String: Int])?["enqueued"] }.reduce(0, +) == 2)
            let document = try await serve.request("GET", "/api/openapi.json")
            #expect(try document.status == 200 && (document.json()["openapi"] as? String)?.hasPrefix("3.") == true)
        }
    }

    @Test func badInputGetsAClearJSONErrorAndChangesNothing() async throws {
        try await withJobQueue { jobs, server in
            let serve = try await ServeProcess.start(server)
            _ = try await jobs.enqueue("ping", json: #"{"n":1}"#, options: JobOptions(queue: "ops", id: "one"))
            let before = try await redisFingerprint(server)
            let cases: [(String, String, Data?, Int, String)] = [
                ("GET", "/api/jobs/ops/nope", nil, 404, "jobNotFound"),
                ("POST", "/api/jobs/ops/nope/retry", nil, 404, "jobNotFound"),
                ("DELETE", "/api/jobs/ops/nope", nil, 404, "jobNotFound"),
                ("POST", "/api/jobs", Data("{not json".utf8), 400, "invalidArgument"),
                ("POST", "/api/jobs", Data("[1]".utf8), 400, "invalidArgument"),
                ("POST", "/api/jobs", Data(#"{"payload":{}}"#.utf8), 400, "invalidArgument"),
                ("POST", "/api/jobs", Data(#"{"type":"x","priority":"high"}"#.utf8), 400, "invalidArgument"),
                ("POST", "/api/jobs", Data(#"{"type":"x","priority":1000}"#.utf8), 400, "invalidArgument"),
                ("POST", "/api/jobs", Data(#"{"type":"x","colour":"red"}"#.utf8), 400, "invalidArgument"),
                ("POST", "/api/jobs", Data(#"{"type":"x","queue":"bad queue!"}"#.utf8), 400, "invalidArgument"),
                ("POST", "/api/jobs", Data(#"{"type":"x","run_at":1,"delay_ms":5}"#.utf8), 400, "invalidArgument"),
                (
                    "POST", "/api/jobs", Data(#"{"type":"x","reference":{"type":"","id":""}}"#.utf8), 400,
                    "invalidArgument"
                ),
                (
                    "POST", "/api/jobs", Data(#"{"type":"x","reference":{"type":"u","id":""}}"#.utf8), 400,
                    "invalidArgument"
                ),
                ("POST", "/api/jobs", Data(#"{"type":"two words"}"#.utf8), 400, "invalidArgument"),
                (
                    "POST", "/api/schedules", Data(#"{"name":"n","type":"two words","every_ms":60000}"#.utf8), 400,
                    "invalidArgument"
                ),
                ("POST", "/api/jobs/bulk", Data(#"{"jobs":[]}"#.utf8), 400, "invalidArgument"),
                ("POST", "/api/jobs/bulk", Data(#"{"jobs":[{"type":"x"},{"type":7}]}"#.utf8), 400, "invalidArgument"),
                ("GET", "/api/jobs?queue=ops&status=bogus", nil, 400, "invalidArgument"),
                ("GET", "/api/jobs?queue=ops&status=pending&limit=0", nil, 400, "invalidArgument"),
                ("GET", "/api/jobs?queue=ops&status=pending&order=sideways", nil, 400, "invalidArgument"),
                ("GET", "/api/jobs", nil, 400, "invalidArgument"),
                // Every parameter is checked, also those that the chosen kind of listing does not use.
                ("GET", "/api/jobs?id=ops/one&limit=0", nil, 400, "invalidArgument"),
                ("GET", "/api/jobs?id=ops/one&order=sideways", nil, 400, "invalidArgument"),
                ("GET", "/api/jobs?reference_type=user&reference_id=42&status=bogus", nil, 400, "invalidArgument"),
                ("GET", "/api/jobs?reference_id=42&status=pending&queue=ops", nil, 400, "invalidArgument"),
                ("GET", "/api/jobs?reference_type=a%20b&reference_id=42", nil, 400, "invalidArgument"),
                ("GET", "/api/jobs?id=ops/one&queue=bad%20queue", nil, 400, "invalidArgument"),
                // No such route, or not with this method: JSON errors too.
                ("GET", "/api/nowhere", nil, 404, "notFound"),
                ("PATCH", "/api/jobs/ops/one", nil, 405, "methodNotAllowed"),
                ("PUT", "/api/queues", nil, 405, "methodNotAllowed"),
                ("GET", "/api/queues/nowhere", nil, 404, "queueNotFound"),
                ("POST", "/api/queues/nowhere/pause", nil, 404, "queueNotFound"),
                ("GET", "/api/queues/ops/history?minutes=99999", nil, 400, "invalidArgument"),
                ("POST", "/api/schedules", Data(#"{"name":"n","type":"t"}"#.utf8), 400, "invalidArgument"),
                (
                    "POST", "/api/schedules", Data(#"{"name":"n","type":"t","cron":"61 * * * *"}"#.utf8), 400,
                    "invalidArgument"
                ),
                ("POST", "/api/schedules/ops/none/run", nil, 404, "scheduleNotFound"),
                ("POST", "/api/jobs", Data(repeating: UInt8(ascii: " "), count: 9 << 20), 413, "payloadTooLarge"),
            ]
            for (method, path, body, status, code) in cases {
                let answer = try await serve.request(method, path, body: body)
                #expect(
                    answer.status == status && answer.errorCode == code,
                    "\(method) \(path): \(answer.status) \(answer.text)"
                )
                let message = (try? answer.json()["error"] as? [String: Any])?["message"] as? String ?? ""
                #expect(!message.isEmpty, "\(method) \(path) has no message")
            }
            #expect(try await redisFingerprint(server) == before)
        }
    }

    @Test func pathParametersArePercentDecoded() async throws {
        try await withJobQueue { jobs, server in
            let serve = try await ServeProcess.start(server)
            _ = try await jobs.enqueue("ping", json: "{}", options: JobOptions(queue: "ops", id: "order:42@shop"))
            let job = try await serve.request("GET", "/api/jobs/ops/order%3A42%40shop")
            #expect(try job.status == 200 && (job.json()["id"] as? String) == "ops/order:42@shop", "\(job.text)")
            let events = try await serve.request("GET", "/api/jobs/ops/order%3a42%40shop/events")
            #expect(events.status == 200, "\(events.text)")
            #expect(try await serve.request("GET", "/api/queues/%6Fps").status == 200)
            let added = try await serve.request(
                "POST",
                "/api/schedules",
                json: ["name": "nightly:report", "type": "report", "queue": "ops", "every_ms": 60_000]
            )
            #expect(added.status == 201, "\(added.text)")
            let paused = try await serve.request("POST", "/api/schedules/ops/nightly%3Areport/pause")
            #expect(paused.status == 200, "\(paused.text)")
            #expect(try await jobs.schedules().first?.isPaused == true)
        }
    }

    @Test func unknownRoutesAndMethodsAnswerJSONErrors() async throws {
        try await withJobQueue { _, server in
            let serve = try await ServeProcess.start(server)
            let missing = try await serve.request("GET", "/api/nowhere/at/all")
            #expect(missing.status == 404 && missing.errorCode == "notFound", "\(missing.text)")
            #expect(missing.headers["content-type"]?.hasPrefix("application/json") == true)
            let wrongMethod = try await serve.request("DELETE", "/api/jobs")
            #expect(wrongMethod.status == 405 && wrongMethod.errorCode == "methodNotAllowed", "\(wrongMethod.text)")
            #expect(wrongMethod.headers["allow"] == "GET, HEAD, POST")
            let health = try await serve.request("PUT", "/health", authorized: false)
            #expect(health.status == 405 && health.headers["allow"] == "GET, HEAD", "\(health.text)")
            // Credentials are still checked first, and pages keep their own answers.
            #expect(try await serve.request("GET", "/api/nowhere", authorized: false).status == 401)
            #expect(try await serve.request("GET", "/no-such-page").status == 404)
        }
    }

    @Test func credentialsCSRFAndReadOnlyAreEnforced() async throws {
        try await withJobQueue { jobs, server in
            _ = try await jobs.enqueue("ping", json: "{}", options: JobOptions(queue: "ops"))
            let serve = try await ServeProcess.start(server)
            let anonymous = try await serve.request("GET", "/api/queues", authorized: false)
            #expect(anonymous.status == 401 && anonymous.errorCode == "unauthorized")
            let wrong = try await serve.request(
                "GET",
                "/api/queues",
                headers: ["Authorization": "Bearer nope"],
                authorized: false
            )
            #expect(wrong.status == 401)
            let page = try await serve.request("GET", "/", authorized: false)
            #expect(page.status == 303 && page.headers["location"]?.hasPrefix("/login") == true)
            #expect(try await serve.request("GET", "/health", authorized: false).status == 200)

            // Sign in as a browser: the login page sets the CSRF cookie; the form posts it back with the token.
            let login = try await serve.request("GET", "/login", authorized: false)
            let csrf = try #require(Self.cookie("conveyor_csrf", in: login))
            let signIn = try await serve.request(
                "POST",
                "/login?_csrf=\(csrf)",
                body: Data("secret=test-token".utf8),
                headers: ["Cookie": "conveyor_csrf=\(csrf)", "Content-Type": "application/x-www-form-urlencoded"],
                authorized: false
            )
            #expect(signIn.status == 303, "\(signIn.text)")
            let session = try #require(Self.cookie("conveyor_session", in: signIn))
            let cookies = "conveyor_csrf=\(csrf); conveyor_session=\(session)"
            #expect(try await serve.request("GET", "/", headers: ["Cookie": cookies], authorized: false).status == 200)
            // A change with the cookie but without the token (a forged cross-site request) is refused...
            let forged = try await serve.request(
                "POST",
                "/api/queues/ops/pause",
                headers: ["Cookie": cookies],
                authorized: false
            )
            #expect(forged.status == 403 && forged.errorCode == "csrf")
            let wrongToken = try await serve.request(
                "POST",
                "/api/queues/ops/pause",
                headers: ["Cookie": cookies, "X-CSRF-Token": String(repeating: "0", count: 32)],
                authorized: false
            )
            #expect(wrongToken.status == 403)
            #expect(try await jobs.isPaused(queue: "ops") == false)
            // ...and allowed with it.
            let allowed = try await serve.request(
                "POST",
                "/api/queues/ops/pause",
                headers: ["Cookie": cookies, "X-CSRF-Token": csrf],
                authorized: false
            )
            #expect(allowed.status == 200)
            #expect(try await jobs.isPaused(queue: "ops"))
            let badPassword = try await serve.request(
                "POST",
                "/login?_csrf=\(csrf)",
                body: Data("secret=guess".utf8),
                headers: ["Cookie": "conveyor_csrf=\(csrf)", "Content-Type": "application/x-www-form-urlencoded"],
                authorized: false
            )
            #expect(badPassword.status == 401 && Self.cookie("conveyor_session", in: badPassword) == nil)

            let readOnly = try await ServeProcess.start(server, arguments: ["--read-only"])
            let refused = try await readOnly.request("POST", "/api/queues/ops/resume")
            #expect(refused.status == 403 && refused.errorCode == "readOnly")
            #expect(try await jobs.isPaused(queue: "ops"))
            #expect(try await readOnly.request("GET", "/api/queues").status == 200)
        }
    }

    @Test func serveRefusesToStartWithoutACredentialOrOpenOnANetworkAddress() async throws {
        try await withRedisServer { server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)", "--port", "0"]
            let none = try await ConveyorExecutable.run(["serve"] + redis)
            #expect(none.status == 64 && none.standardError.contains("CONVEYOR_SERVE_TOKEN"), "\(none.standardError)")
            let exposed = try await ConveyorExecutable.run(
                ["serve", "--allow-unauthenticated", "--host", "0.0.0.0"] + redis
            )
            #expect(exposed.status == 64 && exposed.standardError.contains("loopback"), "\(exposed.standardError)")
            let badPort = try await ConveyorExecutable.run([
                "serve", "--port", "70000", "--redis", "redis://127.0.0.1:\(server.port)",
            ])
            #expect(badPort.status == 64 && badPort.standardError.contains("--port"))
        }
    }

    /// A cookie's value from an answer's `Set-Cookie`.
    static func cookie(_ name: String, in answer: ServeProcess.Answer) -> String? {
        guard let header = answer.headers["set-cookie"] else { return nil }
        for part in header.split(separator: ",") {
            let trimmed = part.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix(name + "=") {
                return String(trimmed.dropFirst(name.count + 1).prefix { $0 != ";" })
            }
        }
        return nil
    }
}
