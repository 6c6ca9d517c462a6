import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import Conveyor

/// The API against its OpenAPI document: openapi-spec-validator checks the document, then schemathesis (PyPI, for
/// Debian's `/usr/bin/python3`, installed by `deploy/setup.sh`) sends generated requests, valid and invalid, to a
/// live `conveyor serve` and checks every answer: no server error, a documented status and content type, a body that
/// matches its schema, invalid input refused, unknown methods answered 405.
@Suite("conveyor serve: the API against its OpenAPI document", .timeLimit(.minutes(6)))
struct ServeOpenAPITests {
    /// Every check of schemathesis but `positive_data_acceptance`, which expects a 2xx for any request the schemas
    /// allow: rules between fields, such as a valid cron expression, or `run_at` and `delay_ms` not both, are in
    /// descriptions only, so some such requests are rightly refused with 400.
    static let checks = ["--checks", "all", "--exclude-checks", "positive_data_acceptance"]

    @Test func theServerAnswersAsItsDocumentSays() async throws {
        try await withJobQueue { jobs, server in
            try await Self.seed(jobs)
            let serve = try await ServeProcess.start(server)
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "conveyor-openapi-\(UUID().uuidString)"
            )
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }

            let document = try await serve.request("GET", "/api/openapi.json")
            #expect(document.status == 200)
            #expect(try document.json()["openapi"] as? String == "3.0.3")
            let file = directory.appendingPathComponent("openapi.json")
            try document.body.write(to: file)
            let validated = try await Self.python(["-m", "openapi_spec_validator", file.path], in: directory)
            try #require(validated.status == 0, "openapi-spec-validator: \(validated.output)")

            let run = try await Self.python(
                [
                    "-m", "schemathesis.cli", "run", "http://127.0.0.1:\(serve.port)/api/openapi.json",
                    "--header", "Authorization: Bearer test-token",
                    // The live stream never ends; ServeAPITests reads it.
                    "--exclude-path", "/api/events",
                    "--seed", "20240601", "--workers", "1", "--max-examples", "40", "--request-timeout", "20",
                    "--generation-database", "none", "--no-color",
                ] + Self.checks,
                in: directory
            )
            #expect(run.status == 0, "schemathesis found failures:\n\(run.output)")
            // The summary line, e.g. "1870 passed", shows how much was tried.
            #expect(run.output.contains(" passed"), "\(run.output)")
            print(run.output.split(separator: "\n").suffix(12).joined(separator: "\n"))
        }
    }

    /// Queues, jobs in several statuses and schedules, named as the document's examples so that generated
    /// requests also reach things that exist.
    static func seed(_ jobs: JobQueue) async throws {
        _ = try await jobs.enqueue(
            "email",
            json: #"{"to":"a@example.com"}"#,
            options: JobOptions(queue: "mail", id: "welcome-1", reference: JobReference(type: "user", id: "42"))
        )
        _ = try await jobs.enqueue("email", json: "[1,2]", options: JobOptions(queue: "mail", delay: .seconds(600)))
        for index in 0..<3 {
            _ = try await jobs.enqueue("resize", json: #"{"n":\#(index)}"#, options: JobOptions(queue: "ops"))
        }
        let claimed = try await jobs.claim(queue: "ops", count: 2)
        for claim in claimed.jobs.prefix(1) {
            _ = try await jobs.fail(claim.job.id, leaseToken: claim.leaseToken, error: "boom", retry: false)
        }
        for claim in claimed.jobs.dropFirst() {
            try await jobs.complete(claim.job.id, leaseToken: claim.leaseToken, result: #"{"ok":true}"#)
        }
        _ = try await jobs.upsert(
            try Schedule(
                name: "nightly",
                type: "report",
                queue: "mail",
                rule: .cron(try CronExpression("0 3 * * *"), timeZone: try Schedule.timeZone("Europe/Berlin"))
            )
        )
        _ = try await jobs.upsert(
            try Schedule(name: "tick", type: "ping", payload: "null", queue: "ops", rule: .every(.seconds(60)))
        )
    }

    /// Runs Debian's Python 3 (where `deploy/setup.sh` installs schemathesis; the `python3` on PATH may be
    /// another) in `directory`, so that nothing it writes lands in the repository, for at most five minutes.
    static func python(_ arguments: [String], in directory: URL) async throws -> (status: Int32, output: String) {
        let log = directory.appendingPathComponent("output-\(UUID().uuidString).txt")
        #expect(FileManager.default.createFile(atPath: log.path, contents: nil))
        let handle = try FileHandle(forWritingTo: log)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        process.arguments = ["300", "/usr/bin/python3"] + arguments
        process.currentDirectoryURL = directory
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["COLUMNS"] = "120"
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = handle
        process.standardError = handle
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do {
                try process.run()
            } catch {
                continuation.resume(throwing: error)
            }
        }
        return (status, String(decoding: try Data(contentsOf: log), as: UTF8.self))
    }
}
