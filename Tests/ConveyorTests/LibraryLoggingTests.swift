import ConveyorTesting
import Foundation
import LocalRedis
import Logging
import Synchronization
import Testing

@testable import Conveyor

/// What a log handler received.
final class CapturedLogs: Sendable {
    struct Line: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    let lines = Mutex<[Line]>([])

    var all: [Line] { lines.withLock { $0 } }

    /// A logger at `trace` whose lines land here.
    func logger(_ label: String = "conveyor.test") -> Logger {
        var logger = Logger(label: label) { _ in Handler(sink: self) }
        logger.logLevel = .trace
        return logger
    }

    struct Handler: LogHandler {
        let sink: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged: [String: String] = [:]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
                merged[key] = "\(value)"
            }
            let line = Line(level: event.level, message: "\(event.message)", metadata: merged)
            sink.lines.withLock { $0.append(line) }
        }
    }
}

/// Issue 17, item 5: the library logs as swift-log asks of libraries.
@Suite("Library logging", .timeLimit(.minutes(2)))
struct LibraryLoggingTests {
    @Test func aFailedJobIsLoggedAtDebugWithItsIDAndQueue() async throws {
        try await withJobQueue { jobs, _ in
            let logs = CapturedLogs()
            var handlers = JobHandlers()
            handlers.register("broken") { (_: [String: Int], _: JobContext) in throw JobFailure.permanent("no") }
            let worker = Worker(
                queue: jobs,
                handlers: handlers,
                configuration: testWorkerConfiguration(queues: ["logged"]),
                logger: logs.logger()
            )
            try await withWorker(worker) {
                let job = try await jobs.enqueue("broken", payload: ["n": 1], options: JobOptions(queue: "logged"))
                _ = try await jobs.result(of: job.id, timeout: .seconds(20))
                try await eventually("the failure to be logged") {
                    logs.all.contains { $0.message.contains("job \(job.id) failed") }
                }
                let line = try #require(logs.all.first { $0.message.contains("job \(job.id) failed") })
                #expect(line.level == .debug)
                #expect(line.metadata["conveyor.job"] == job.id && line.metadata["conveyor.queue"] == "logged")
            }
            // Nothing above info for a run where nothing went wrong but the job's own failure.
            #expect(!logs.all.contains { $0.level >= .warning }, "\(logs.all.filter { $0.level >= .warning })")
        }
    }

    @Test func anOutageIsOneWarningPerOperationNotAnErrorPerRetryAndItsEndANotice() async throws {
        try await withJobQueue { jobs, server in
            let logs = CapturedLogs()
            var handlers = JobHandlers()
            handlers.register("quick") { (_: [String: Int], _: JobContext) in }
            var configuration = testWorkerConfiguration(queues: ["outage"])
            configuration.heartbeatInterval = .milliseconds(200)
            let worker = Worker(queue: jobs, handlers: handlers, configuration: configuration, logger: logs.logger())
            try await withWorker(worker) {
                let first = try await jobs.enqueue("quick", payload: ["n": 1], options: JobOptions(queue: "outage"))
                _ = try await jobs.result(of: first.id, timeout: .seconds(20))
                // Redis goes away for a few seconds: the worker retries its wait and heartbeats many times.
                await server.kill()
                try await Task.sleep(for: .seconds(4))
                try await server.restart()
                try await jobs.installLibrary()
                try await eventually(timeout: .seconds(30), "the worker to say it works again") {
                    logs.all.contains { $0.level == .notice && $0.message.contains("works again") }
                }
                let job = try await jobs.enqueue("quick", payload: ["n": 2], options: JobOptions(queue: "outage"))
                #expect(try await jobs.result(of: job.id, timeout: .seconds(30)).status == .completed)
            }
            let lines = logs.all
            let failures = lines.filter { $0.metadata["conveyor.operation"] != nil && $0.message.contains("fail") }
            #expect(failures.count >= 3, "the outage should have been retried: \(failures.map(\.message))")
            let warnings = failures.filter { $0.level == .warning }
            let operations = Set(warnings.compactMap { $0.metadata["conveyor.operation"] })
            #expect(warnings.count == operations.count, "one warning per operation: \(warnings.map(\.message))")
            #expect(!lines.contains { $0.level >= .error }, "\(lines.filter { $0.level >= .error }.map(\.message))")
        }
    }
}
