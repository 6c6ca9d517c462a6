import Foundation
public import Logging

/// Runs jobs of one type, with a typed payload and result.
///
/// ```swift
/// struct SendEmail: JobHandler {
///     static let jobType = "send_email"
///     func handle(_ payload: Email, context: JobContext) async throws -> Receipt { … }
/// }
/// ```
///
/// Throw to fail the attempt (it is retried with backoff while retries are left); throw ``JobFailure/permanent(_:)``
/// for an error that retrying cannot fix. Check `Task.isCancelled` or call `try Task.checkCancellation()` in long
/// loops: a timeout, a cancel request, a lost lease or a shutdown cancels the handler's task.
public protocol JobHandler: Sendable {
    /// The payload, decoded from the job's JSON.
    associatedtype Payload: Decodable & Sendable
    /// The result, stored as the job's JSON result.
    associatedtype Output: Encodable & Sendable

    /// The job type this handler runs.
    static var jobType: String { get }

    /// Runs one job.
    ///
    /// - Parameters:
    ///   - payload: The decoded payload.
    ///   - context: The job, a logger with job metadata, progress reporting.
    /// - Returns: The result, stored as JSON.
    /// - Throws: Any error fails the attempt; ``JobFailure`` says whether to retry.
    func handle(_ payload: Payload, context: JobContext) async throws -> Output
}

/// What a handler knows about the job it runs.
public struct JobContext: Sendable {
    /// The job as claimed (status `processing`).
    public let job: Job
    /// A logger whose metadata names the job (`conveyor.job`, `conveyor.queue`, `conveyor.type`, `conveyor.attempt`).
    public let logger: Logger
    let progress: @Sendable (String) async throws -> Void

    /// The job's full id.
    public var id: String { job.id }
    /// Which attempt this is, from 1.
    public var attempt: Int { job.attempts }
    /// The entity the job is about, if any.
    public var reference: JobReference? { job.reference }

    /// Records the job's progress (any JSON value: a percentage, counts, …) in its hash and event stream.
    ///
    /// - Parameter value: Encoded as JSON.
    /// - Throws: ``ConveyorError`` when the lease was lost or Redis fails.
    public func reportProgress(_ value: some Encodable & Sendable) async throws {
        let json = String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
        try await progress(json)
    }
}

/// An error a handler throws to say how its failure should be treated.
public struct JobFailure: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var message: String
    /// Whether another attempt could succeed.
    public var isRetryable: Bool

    /// Creates a failure.
    ///
    /// - Parameters:
    ///   - message: What went wrong.
    ///   - isRetryable: Whether to retry (while retries are left).
    public init(_ message: String, isRetryable: Bool = true) {
        self.message = message
        self.isRetryable = isRetryable
    }

    /// A failure that retrying cannot fix: the job fails at once.
    ///
    /// - Parameter message: What went wrong.
    /// - Returns: The failure.
    public static func permanent(_ message: String) -> JobFailure {
        JobFailure(message, isRetryable: false)
    }

    public var description: String { message }
}

/// How long to wait before the next attempt after a failure.
public enum RetryPolicy: Sendable {
    /// Exponential backoff with optional full jitter (``Backoff``), computed in Redis from the retry count.
    case backoff(Backoff)
    /// The same delay every time.
    case fixed(Duration)
    /// Your own delay from the number of retries so far and the error; `nil` means do not retry.
    case custom(@Sendable (_ retryCount: Int, _ error: any Error) -> Duration?)
}

/// Per-type settings of a handler.
public struct HandlerOptions: Sendable {
    /// How long one attempt may run when the job does not say (`nil`: no limit).
    public var timeout: Duration?
    /// Retries allowed, overriding the job's own `max_retries` (`nil`: the job's).
    public var maxRetries: Int?
    /// Retry delays (`nil`: the queue's ``JobQueue/Configuration/backoff``).
    public var retry: RetryPolicy?

    /// Creates options; every parameter has a default.
    ///
    /// - Parameters:
    ///   - timeout: Default time limit per attempt.
    ///   - maxRetries: Retries allowed for this type.
    ///   - retry: Retry delays for this type.
    public init(timeout: Duration? = nil, maxRetries: Int? = nil, retry: RetryPolicy? = nil) {
        self.timeout = timeout
        self.maxRetries = maxRetries
        self.retry = retry
    }
}

/// The handlers a worker runs, by job type.
public struct JobHandlers: Sendable {
    struct Entry: Sendable {
        var options: HandlerOptions
        var run: @Sendable (JobContext) async throws -> String?
    }

    var entries: [String: Entry] = [:]

    /// Creates an empty set of handlers.
    public init() {}

    /// The job types with a handler.
    public var types: [String] { entries.keys.sorted() }

    /// Registers a ``JobHandler``.
    ///
    /// - Parameters:
    ///   - handler: The handler.
    ///   - options: Timeout and retry settings for its type.
    public mutating func register<Handler: JobHandler>(_ handler: Handler, options: HandlerOptions = HandlerOptions()) {
        register(Handler.jobType, options: options) { (payload: Handler.Payload, context: JobContext) in
            try await handler.handle(payload, context: context)
        }
    }

    /// Registers a closure with a typed payload and result.
    ///
    /// - Parameters:
    ///   - type: The job type.
    ///   - options: Timeout and retry settings.
    ///   - body: Runs one job.
    public mutating func register<Payload: Decodable & Sendable, Output: Encodable & Sendable>(
        _ type: String,
        options: HandlerOptions = HandlerOptions(),
        _ body: @escaping @Sendable (Payload, JobContext) async throws -> Output
    ) {
        entries[type] = Entry(options: options) { context in
            let output = try await body(try Self.decode(Payload.self, context), context)
            return String(decoding: try JSONEncoder().encode(output), as: UTF8.self)
        }
    }

    /// Registers a closure with a typed payload and no result.
    ///
    /// - Parameters:
    ///   - type: The job type.
    ///   - options: Timeout and retry settings.
    ///   - body: Runs one job.
    public mutating func register<Payload: Decodable & Sendable>(
        _ type: String,
        options: HandlerOptions = HandlerOptions(),
        _ body: @escaping @Sendable (Payload, JobContext) async throws -> Void
    ) {
        entries[type] = Entry(options: options) { context in
            try await body(try Self.decode(Payload.self, context), context)
            return nil
        }
    }

    /// Registers the handler of a typed job: its payload and result types come from `job`, so they match what
    /// ``JobQueue/enqueue(_:_:options:)`` sends.
    ///
    /// - Parameters:
    ///   - job: The job's name and types.
    ///   - options: Timeout and retry settings.
    ///   - body: Runs one job.
    public mutating func register<Payload, Output>(
        _ job: JobName<Payload, Output>,
        options: HandlerOptions = HandlerOptions(),
        _ body: @escaping @Sendable (Payload, JobContext) async throws -> Output
    ) {
        entries[job.rawValue] = Entry(options: options) { context in
            let output = try await body(try Self.decode(Payload.self, context), context)
            if output is NoResult { return nil }
            return String(decoding: try JSONEncoder().encode(output), as: UTF8.self)
        }
    }

    /// Registers the handler of a typed job without a result.
    ///
    /// - Parameters:
    ///   - job: The job's name and payload type.
    ///   - options: Timeout and retry settings.
    ///   - body: Runs one job.
    public mutating func register<Payload>(
        _ job: JobName<Payload, NoResult>,
        options: HandlerOptions = HandlerOptions(),
        _ body: @escaping @Sendable (Payload, JobContext) async throws -> Void
    ) {
        register(job, options: options) { payload, context in
            try await body(payload, context)
            return NoResult()
        }
    }

    /// Decodes a job's payload; a payload that does not fit the type fails the job without retries, with a short
    /// message naming the type and the field.
    static func decode<Payload: Decodable>(_ type: Payload.Type, _ context: JobContext) throws -> Payload {
        do {
            return try JSONDecoder().decode(Payload.self, from: Data(context.job.payload.utf8))
        } catch let error as DecodingError {
            throw JobFailure.permanent(
                "the payload of \(context.job.type) is not \(Self.article(Payload.self)): " + Self.describe(error)
            )
        } catch {
            throw JobFailure.permanent(
                "the payload of \(context.job.type) is not \(Self.article(Payload.self)): \(error)"
            )
        }
    }

    /// A decoding error in one line: where (the field's path) and what.
    static func describe(_ error: DecodingError) -> String {
        func place(_ codingPath: [any CodingKey]) -> String {
            let parts = codingPath.map { key in key.intValue.map { "[\($0)]" } ?? key.stringValue }
            guard !parts.isEmpty else { return "the payload" }
            return "field '" + parts.joined(separator: ".").replacingOccurrences(of: ".[", with: "[") + "'"
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(place(context.codingPath + [key])) is missing"
        case .typeMismatch(let type, let context):
            return "\(place(context.codingPath)) is not \(Self.jsonKind(type))"
        case .valueNotFound(let type, let context):
            return "\(place(context.codingPath)) is null, not \(Self.jsonKind(type))"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "it is not valid JSON" : "\(place(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// What JSON value a Swift type expects: "a string", "a number", "an object", … .
    static func jsonKind(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is Substring.Type: "a string"
        case is Bool.Type: "a boolean"
        case is any BinaryInteger.Type, is any BinaryFloatingPoint.Type: "a number"
        default:
            "\(type)".hasPrefix("Dictionary<")
                ? "an object" : "\(type)".hasPrefix("Array<") ? "an array" : article(type)
        }
    }

    /// The type's name after "a" or "an".
    static func article(_ type: Any.Type) -> String {
        let name = "\(type)"
        return (name.first.map { "AEIOU".contains($0) } == true ? "an " : "a ") + name
    }

    /// Registers a closure that works on the raw JSON: it reads `context.job.payload` and returns JSON text (or
    /// `nil` for no result).
    ///
    /// - Parameters:
    ///   - type: The job type.
    ///   - options: Timeout and retry settings.
    ///   - body: Runs one job.
    public mutating func registerJSON(
        _ type: String,
        options: HandlerOptions = HandlerOptions(),
        _ body: @escaping @Sendable (JobContext) async throws -> String?
    ) {
        entries[type] = Entry(options: options, run: body)
    }
}
