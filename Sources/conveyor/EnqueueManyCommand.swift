import ArgumentParser
import Conveyor
import Foundation

/// `conveyor enqueue-many`: enqueues the jobs of a JSON Lines file, a thousand per call to Redis.
struct EnqueueManyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enqueue-many",
        abstract: "Enqueue the jobs of a JSON Lines file (one job per line).",
        discussion: """
            Each line is a JSON object: "type" (required), "payload" (any JSON, default {}), and optionally \
            "queue", "id", "priority", "max_retries", "timeout" and "in" (durations such as "30s"), "at" (ISO 8601 \
            time), "reference" ("TYPE:ID") and "unique". Blank lines are skipped.

            Every line is checked before anything is stored, by this command and by the server's own checks \
            (conveyor_check_many): a bad line stops the command with its line number and nothing is enqueued. Jobs \
            then go to Redis a thousand per atomic call; a progress bar shows on a terminal.

            Examples:
              conveyor enqueue-many --file jobs.jsonl
              printf '%s\\n' '{"type":"echo","payload":{"n":1}}' | conveyor enqueue-many --file - --queue demo
            """
    )

    @OptionGroup var store: JobStoreOptions
    @Option(help: ArgumentHelp("The JSON Lines file, or - for standard input.", valueName: "path")) var file: String
    @Option(help: "The queue of lines that name none (default: default).") var queue: String?

    static let fields: Set<String> = [
        "type", "payload", "queue", "id", "priority", "max_retries", "timeout", "in", "at", "reference", "unique",
    ]

    func run() async throws {
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: file) else {
                throw CommandFailure(message: "cannot read --file \(file)", exitCode: .validationFailure)
            }
            data = contents
        }
        let source = file == "-" ? "standard input" : file
        var jobs: [NewJob] = []
        var lines: [Int] = []
        for (index, bytes) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            do {
                let text = try UTF8Text.decode(Data(bytes), from: "this line").trimmingCharacters(
                    in: .whitespacesAndNewlines
                )
                if text.isEmpty { continue }
                jobs.append(try job(from: text))
                lines.append(index + 1)
            } catch let failure as CommandFailure {
                throw CommandFailure(
                    message: "\(source) line \(index + 1): \(failure.message); nothing was enqueued",
                    exitCode: .validationFailure
                )
            }
        }
        let past = jobs.filter { ($0.options.runAt ?? .distantFuture) < Date() }.count
        if past > 0 {
            FileHandle.standardError.write(
                Data("conveyor: warning: \(past) jobs have an \"at\" in the past; they run now\n".utf8)
            )
        }
        /// "job N: …" from the library, as "<file> line L: …".
        func located(_ error: ConveyorError) -> String {
            guard let match = error.message.firstMatch(of: #/^job (\d+): /#), let number = Int(match.output.1),
                lines.indices.contains(number - 1)
            else { return error.message }
            return "\(source) line \(lines[number - 1]): " + error.message.dropFirst(match.output.0.count)
        }
        let bar = ProgressBar(label: "enqueuing", total: jobs.count)
        let started = ContinuousClock.now
        let results = try await store.withJobs { queue in
            // Every job passes the server's checks first, so a bad line anywhere stores nothing.
            do {
                try await queue.checkMany(jobs)
            } catch let error as ConveyorError where error.code == .invalidArgument {
                throw CommandFailure(message: located(error) + "; nothing was enqueued", exitCode: .validationFailure)
            }
            var results: [EnqueuedJob] = []
            results.reserveCapacity(jobs.count)
            for start in stride(from: 0, to: jobs.count, by: 1000) {
                let batch = Array(jobs[start..<min(start + 1000, jobs.count)])
                do {
                    results += try await queue.enqueueMany(batch)
                } catch let error as ConveyorError {
                    bar.finish()
                    throw CommandFailure(
                        message:
                            "\(error.message) (lines \(lines[start]) on); the \(results.count) jobs before were enqueued",
                        exitCode: error.code == .invalidArgument ? .validationFailure : .failure
                    )
                }
                bar.update(results.count)
            }
            return results
        }
        bar.finish()
        let created = results.filter { $0.outcome == .created }.count
        let existing = results.filter { $0.outcome == .existing }.count
        let duplicates = results.count - created - existing
        let elapsed = ContinuousClock.now - started
        if store.json {
            print(
                try JobOutput.json([
                    "created": created, "existing": existing, "duplicate": duplicates, "ids": results.map(\.id),
                ])
            )
        } else {
            print(
                "enqueued \(created) jobs"
                    + (existing > 0 ? ", \(existing) already existed" : "")
                    + (duplicates > 0 ? ", \(duplicates) not created (a live job holds their unique key)" : "")
                    + " in \(elapsed.formatted(.units(allowed: [.seconds, .milliseconds], width: .narrow)))"
            )
        }
    }

    /// One line's job, checked.
    func job(from text: String) throws -> NewJob {
        if let problem = StrictJSON.problem(in: text) {
            throw CommandFailure(message: "not valid JSON: \(problem.describe(in: text))")
        }
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        guard let object = parsed as? [String: Any] else {
            throw CommandFailure(message: "expected a JSON object like {\"type\":\"echo\",\"payload\":{}}")
        }
        if let unknown = object.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            throw CommandFailure(
                message: "unknown field \"\(unknown)\" (known: \(Self.fields.sorted().joined(separator: ", ")))"
            )
        }
        guard let type = object["type"] as? String, !type.isEmpty else {
            throw CommandFailure(message: "\"type\" is missing or not a string")
        }
        guard JobTypeArgument.isValid(type) else {
            throw CommandFailure(message: "\"type\" \"\(type)\" must be \(JobTypeArgument.rule)")
        }
        // The payload is stored exactly as written on the line, not re-encoded.
        let payload = StrictJSON.rawMembers(of: text)?.last { $0.name == "payload" }?.value ?? "{}"
        var options = JobOptions(queue: try string(object, "queue") ?? queue)
        options.id = try string(object, "id")
        options.uniqueKey = try string(object, "unique")
        if let priority = object["priority"] {
            guard let value = priority as? Int, (-100...100).contains(value) else {
                throw CommandFailure(message: "\"priority\" must be a whole number from -100 to 100")
            }
            options.priority = value
        }
        if let retries = object["max_retries"] {
            guard let value = retries as? Int, (0...10_000).contains(value) else {
                throw CommandFailure(message: "\"max_retries\" must be a whole number from 0 to 10000")
            }
            options.maxRetries = value
        }
        options.timeout = try duration(
            object,
            "timeout",
            atLeast: .milliseconds(1),
            atMost: DurationArgument.longestTimeout
        )
        options.delay = try duration(object, "in", atMost: DurationArgument.farthest)
        if let at = try string(object, "at") {
            guard options.delay == nil else { throw CommandFailure(message: "give \"in\" or \"at\", not both") }
            guard let date = TimeArgument.parse(at) else {
                throw CommandFailure(message: "\"at\" '\(at)' is not \(TimeArgument.expected)")
            }
            options.runAt = date
        }
        if let reference = try string(object, "reference") {
            options.reference = try JobReference(argument: reference, option: "\"reference\"")
        }
        return NewJob(type, json: payload, options: options)
    }

    private func string(_ object: [String: Any], _ field: String) throws -> String? {
        guard let value = object[field] else { return nil }
        guard let text = value as? String else { throw CommandFailure(message: "\"\(field)\" must be a string") }
        return text
    }

    private func duration(
        _ object: [String: Any],
        _ field: String,
        atLeast minimum: Duration = .zero,
        atMost maximum: Duration
    ) throws -> Duration? {
        guard let text = try string(object, field) else { return nil }
        guard let parsed = DurationArgument(argument: text) else {
            throw CommandFailure(message: "\"\(field)\" '\(text)' is not \(DurationArgument.format)")
        }
        if let problem = parsed.problem("\"\(field)\"", atLeast: minimum, atMost: maximum) {
            throw CommandFailure(message: problem)
        }
        return parsed.duration
    }
}
