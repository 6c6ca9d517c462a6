import ConveyorTesting
import Foundation
import Testing

@testable import Conveyor

struct Mail: Codable, Sendable, Equatable {
    var to: String
    var tags: [Tag] = []

    struct Tag: Codable, Sendable, Equatable {
        var name: String
    }
}

struct Receipt: Codable, Sendable, Equatable {
    var messageID: String
}

let sendEmail = JobName<Mail, Receipt>("send_email")
let logVisit = JobName<Mail, NoResult>("log_visit")

/// Issue 17, item 1: typed job definitions (`JobName<Payload, Output>`), used to enqueue and to register the handler.
@Suite("Typed jobs", .timeLimit(.minutes(2)))
struct TypedJobTests {
    @Test func aTypedJobGoesThroughWithItsPayloadAndResultTypes() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register(sendEmail) { email, _ in Receipt(messageID: "sent-to-\(email.to)") }
            handlers.register(logVisit) { _, _ in }
            handlers.register(JobName<Mail, Receipt>("bounce")) { email, _ in
                throw JobFailure.permanent("no mailbox \(email.to)")
            }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                let sent = try await jobs.enqueue(sendEmail, Mail(to: "a@example.com"))
                let receipt = try await jobs.result(of: sent, as: sendEmail, timeout: .seconds(20))
                #expect(receipt == Receipt(messageID: "sent-to-a@example.com"))
                // Stored as plain JSON under the name, for other languages.
                let stored = try #require(try await jobs.get(sent.id))
                #expect(stored.type == "send_email")
                #expect(
                    try JSONDecoder().decode(Mail.self, from: Data(stored.payload.utf8)) == Mail(to: "a@example.com")
                )

                let visit = try await jobs.enqueue(logVisit, Mail(to: "b@example.com"))
                #expect(try await jobs.result(of: visit, as: logVisit, timeout: .seconds(20)) == NoResult())
                #expect(try await jobs.get(visit.id)?.result == nil)

                // A failed job: its error, with the code jobFailed.
                let bounced = try await jobs.enqueue(JobName<Mail, Receipt>("bounce"), Mail(to: "c@example.com"))
                let failure = await #expect(throws: ConveyorError.self) {
                    _ = try await jobs.result(of: bounced, as: sendEmail, timeout: .seconds(20))
                }
                #expect(
                    failure?.code == .invalidArgument,
                    "a bounce job is not a send_email job: \(String(describing: failure))"
                )
                let failed = await #expect(throws: ConveyorError.self) {
                    _ = try await jobs.result(of: bounced, as: JobName<Mail, Receipt>("bounce"), timeout: .seconds(20))
                }
                #expect(failed?.code == .jobFailed && failed?.message.contains("no mailbox c@example.com") == true)

                // Many at once.
                let many = try await jobs.enqueueMany([
                    try NewJob(sendEmail, Mail(to: "d@example.com")),
                    try NewJob(sendEmail, Mail(to: "e@example.com")),
                ])
                for job in many {
                    #expect(
                        try await jobs.result(of: job, as: sendEmail, timeout: .seconds(20)).messageID.hasPrefix(
                            "sent-to-"
                        )
                    )
                }
            }
        }
    }

    @Test func aPayloadThatDoesNotDecodeFailsAtOnceNamingTheTypeAndTheField() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register(sendEmail) { email, _ in Receipt(messageID: email.to) }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration())
            try await withWorker(worker) {
                // From another language, by name: the wrong shapes.
                for (json, expected) in [
                    (#"{"to": 5}"#, "the payload of send_email is not a Mail: field 'to' is not a string"),
                    (#"{"tags": []}"#, "the payload of send_email is not a Mail: field 'to' is missing"),
                    (
                        #"{"to": "x", "tags": [{"name": "a"}, {}]}"#,
                        "the payload of send_email is not a Mail: field 'tags[1].name' is missing"
                    ),
                    (#"{"to": null}"#, "the payload of send_email is not a Mail: field 'to' is null, not a string"),
                    (
                        "[1]",
                        "the payload of send_email is not a Mail: the payload is not an object"
                    ),
                ] {
                    let job = try await jobs.enqueue("send_email", json: json, options: JobOptions(maxRetries: 3))
                    let finished = try await jobs.result(of: job.id, timeout: .seconds(20))
                    #expect(finished.status == .failed && finished.attempts == 1, "\(json): no retry")
                    #expect(finished.error == expected, "\(json)")
                }
            }
        }
    }

    /// The snippets are type-checked against the built modules, as the README's are.
    static func typecheck(_ body: String) async throws -> (status: Int32, output: String) {
        let folder = try ReadmeSnippetTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let source = """
            import Conveyor
            struct Mail: Codable, Sendable { var to: String }
            struct Report: Codable, Sendable { var month: Int }
            struct Receipt: Codable, Sendable { var id: String }
            let sendEmail = JobName<Mail, Receipt>("send_email")
            func snippet(jobs: JobQueue, handlers: inout JobHandlers) async throws {
            \(body)
            }
            """
        return try await ReadmeSnippetTests.typecheck(source, in: folder)
    }

    @Test func aMistypedEnqueueOrHandlerDoesNotCompile() async throws {
        let good = try await Self.typecheck(
            """
            handlers.register(sendEmail) { email, _ in Receipt(id: email.to) }
            let job = try await jobs.enqueue(sendEmail, Mail(to: "a@example.com"))
            let receipt: Receipt = try await jobs.result(of: job, as: sendEmail, timeout: .seconds(1))
            _ = receipt
            """
        )
        #expect(good.status == 0, "the well-typed snippet must compile:\n\(good.output)")

        let wrongPayload = try await Self.typecheck(
            #"try await jobs.enqueue(sendEmail, Report(month: 11))"#
        )
        #expect(wrongPayload.status != 0)
        #expect(
            wrongPayload.output.contains("cannot convert value of type 'Report' to expected argument type 'Mail'"),
            "\(wrongPayload.output)"
        )

        let wrongHandler = try await Self.typecheck(
            #"handlers.register(sendEmail) { (report: Report, _) in Receipt(id: "\(report.month)") }"#
        )
        #expect(wrongHandler.status != 0, "\(wrongHandler.output)")

        let wrongResult = try await Self.typecheck(
            """
            let job = try await jobs.enqueue(sendEmail, Mail(to: "a@example.com"))
            let report: Report = try await jobs.result(of: job, as: sendEmail, timeout: .seconds(1))
            """
        )
        #expect(wrongResult.status != 0)
        #expect(
            wrongResult.output.contains("cannot convert value of type 'Receipt' to specified type 'Report'"),
            "\(wrongResult.output)"
        )
    }
}
