import Foundation

extension JobHandlers {
    /// The exit status a command uses to say "do not retry" (EX_DATAERR from sysexits.h).
    public static let permanentFailureExitStatus: Int32 = 65

    /// Registers an external command as the handler of a job type, so any language can do the work.
    ///
    /// The command runs through `/bin/sh -c`. It gets the job as JSON on standard input
    /// (`{"id", "queue", "type", "attempt", "payload", "reference"}`) and in the environment (`CONVEYOR_JOB_ID`,
    /// `CONVEYOR_JOB_TYPE`, `CONVEYOR_QUEUE`, `CONVEYOR_ATTEMPT`, and `CONVEYOR_REFERENCE_TYPE`/`_ID` when set),
    /// with the rest of the worker's environment except Redis credentials (every variable whose name starts with
    /// `REDIS`, such as `REDIS_URL` and `REDISCLI_AUTH`): a handler needs no access to the job store. The payload is
    /// passed byte for byte as it was stored. The command cannot outlive the worker, whatever signal ends it.
    /// Its standard output, when not empty, must be JSON and becomes the job's result. A non-zero exit fails the
    /// attempt with the tail of its standard error as the error (exit 65 fails it for good, without retries). On
    /// a timeout, a cancel or a shutdown its process group gets SIGTERM, then SIGKILL after `killGrace`.
    ///
    /// - Parameters:
    ///   - type: The job type.
    ///   - command: A shell command line.
    ///   - options: Timeout and retry settings.
    ///   - killGrace: How long after SIGTERM the command gets SIGKILL (5 s).
    public mutating func registerCommand(
        _ type: String,
        command: String,
        options: HandlerOptions = HandlerOptions(),
        killGrace: Duration = .seconds(5)
    ) {
        registerJSON(type, options: options) { context in
            let job = context.job
            var environment = Self.handlerEnvironment(ProcessInfo.processInfo.environment)
            environment["CONVEYOR_JOB_ID"] = job.id
            environment["CONVEYOR_JOB_TYPE"] = job.type
            environment["CONVEYOR_QUEUE"] = job.queue
            environment["CONVEYOR_ATTEMPT"] = String(job.attempts)
            if let reference = job.reference {
                environment["CONVEYOR_REFERENCE_TYPE"] = reference.type
                environment["CONVEYOR_REFERENCE_ID"] = reference.id
            }
            let input = Self.commandInput(job)
            let child = ChildProcess()
            let termination = try await child.run(
                ["/bin/sh", "-c", command],
                input: input,
                environment: environment,
                killGrace: killGrace
            )
            try Task.checkCancellation()
            let errorText = String(decoding: termination.errorTail, as: UTF8.self)
                .split(separator: "\n").suffix(10).joined(separator: "\n")
            guard termination.status == 0 else {
                let how =
                    termination.signaled
                    ? "was killed by signal \(termination.status - 128)" : "exited with status \(termination.status)"
                let message = "command \(how)" + (errorText.isEmpty ? "" : ": \(errorText)")
                throw JobFailure(message, isRetryable: termination.status != Self.permanentFailureExitStatus)
            }
            let output = String(decoding: termination.output, as: UTF8.self).trimmingCharacters(
                in: .whitespacesAndNewlines
            )
            if output.isEmpty { return nil }
            guard (try? JSONSerialization.jsonObject(with: Data(output.utf8), options: [.fragmentsAllowed])) != nil
            else {
                throw JobFailure.permanent(
                    "command printed something that is not JSON on standard output (\(output.prefix(200))); "
                        + "print the result as JSON, or nothing"
                )
            }
            return output
        }
    }

    /// The worker's environment without Redis credentials.
    static func handlerEnvironment(_ environment: [String: String]) -> [String: String] {
        environment.filter { !$0.key.uppercased().hasPrefix("REDIS") }
    }

    /// `{"attempt", "id", "payload", "queue", "reference", "type"}` and a newline, the payload inserted as stored
    /// (a JSON round trip would turn `1.0` into `1` and `/` into `\/`).
    static func commandInput(_ job: Job) -> [UInt8] {
        func quoted(_ text: String) -> String {
            let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes]))
            return String(decoding: data ?? Data("[\"\"]".utf8), as: UTF8.self).dropFirst().dropLast().description
        }
        var text = "{\"attempt\":\(job.attempts),\"id\":\(quoted(job.id)),\"payload\":\(job.payload),"
        text += "\"queue\":\(quoted(job.queue)),"
        if let reference = job.reference {
            text += "\"reference\":{\"id\":\(quoted(reference.id)),\"type\":\(quoted(reference.type))},"
        }
        text += "\"type\":\(quoted(job.type))}"
        return Array(text.utf8) + [10]
    }
}
