public import Foundation
import RedisClient

/// One job as stored in Redis: its definition, state and outcome.
///
/// Read with ``JobQueue/get(_:)``; the fields mirror the job hash (`redis-cli HGETALL <namespace>:{<queue>}:job:<id>`).
public struct Job: Sendable, Hashable, Identifiable {
    /// The full id, `<queue>/<id within the queue>`: enough to find the job in one lookup.
    public var id: String
    /// The queue the job is in.
    public var queue: String
    /// The job type, which selects the handler.
    public var type: String
    /// The current state.
    public var status: JobStatus
    /// The payload as JSON text.
    public var payload: String
    /// The result as JSON text, once completed with one.
    public var result: String?
    /// The last error, after a failed attempt or a lost lease.
    public var error: String?
    /// How many times the job was put back to retry after a failure.
    public var retryCount: Int
    /// How many retries are allowed before the job fails for good.
    public var maxRetries: Int
    /// Higher runs first (-100…100, default 0).
    public var priority: Int
    /// The entity the job is about, if any (the origin's `reference_type`/`reference_id`).
    public var reference: JobReference?
    /// When the job is (or was) due to run.
    public var runAt: Date?
    /// When the job was created.
    public var createdAt: Date?
    /// When the job last changed.
    public var updatedAt: Date?
    /// When the current or last attempt started.
    public var startedAt: Date?
    /// When the job finished (completed, failed or cancelled).
    public var finishedAt: Date?
    /// How many times a worker took the job.
    public var attempts: Int
    /// How many times a worker lost the job's lease (died or stalled).
    public var stalls: Int
    /// The worker that holds or last held the job.
    public var worker: String?
    /// The lease token of the current or last claim; needed to complete or fail the job.
    public var leaseToken: String?
    /// How long one attempt may take, if limited.
    public var timeout: Duration?
    /// The uniqueness key the job holds while it is live, if any.
    public var uniqueKey: String?
    /// Whether a cancel was requested while the job was processing.
    public var cancelRequested: Bool
    /// Whether the job failed for good: its last error said not to retry (exit status 65,
    /// ``JobFailure/permanent(_:)``), so it is not among ``JobQueue/failedRetryable(limit:)``.
    public var failedPermanently: Bool

    /// Decodes the payload as JSON into a value.
    ///
    /// - Parameter type: The type to decode.
    /// - Returns: The decoded payload.
    /// - Throws: `DecodingError` when the payload does not match the type.
    public func decodePayload<Payload: Decodable>(as type: Payload.Type = Payload.self) throws -> Payload {
        try JSONDecoder().decode(Payload.self, from: Data(payload.utf8))
    }

    /// Decodes the result as JSON into a value; `nil` when there is no result.
    ///
    /// - Parameter type: The type to decode.
    /// - Returns: The decoded result, or `nil`.
    /// - Throws: `DecodingError` when the result does not match the type.
    public func decodeResult<Result: Decodable>(as type: Result.Type = Result.self) throws -> Result? {
        guard let result else { return nil }
        return try JSONDecoder().decode(Result.self, from: Data(result.utf8))
    }

    /// Reads a job from its hash as `HGETALL` returns it (field, value, field, value, …), without building a
    /// dictionary first (this is the hot path of every listing).
    ///
    /// - Parameters:
    ///   - flat: The hash.
    ///   - storedAs: The full id the hash was read under; it is the job's id, whatever the hash's `id` field says.
    ///     `nil` for a job a Lua function returned, which checked the `id` field against its key.
    /// - Throws: ``ConveyorError`` with code ``ConveyorError/Code/malformedJob`` naming the bad field.
    init(flat: [RedisReply], storedAs: String?) throws {
        var raw = RawJobFields()
        var index = 0
        while index + 1 < flat.count {
            if let name = flat[index].string { raw.set(name, flat[index + 1].string) }
            index += 2
        }
        try self.init(raw: raw, storedAs: storedAs)
    }

    /// The one range of each integer field of a job hash, the same as `FIELD_RANGES` in `lua/library.lua` (a test
    /// compares them): enqueue refuses values outside it, and a hash holding one is malformed on both sides.
    static let fieldRanges: [String: ClosedRange<Int>] = [
        "max_retries": 0...10_000,
        "retry_count": 0...1_000_000_000,
        "attempts": 0...1_000_000_000,
        "priority": -100...100,
        "timeout_ms": 0...(30 * 86_400_000),
        "stalls": 0...1_000_000_000,
    ]

    private init(raw: RawJobFields, storedAs: String?) throws {
        let fallbackID = storedAs ?? raw.id ?? "?"

        func require(_ value: String?, _ name: String) throws -> String {
            guard let value, !value.isEmpty else {
                throw ConveyorError(.malformedJob, "job \(fallbackID) has no '\(name)' field", jobID: fallbackID)
            }
            return value
        }
        func integer(_ text: String?, _ name: String, default value: Int) throws -> Int {
            guard let text, !text.isEmpty else { return value }
            let range = Self.fieldRanges[name] ?? Int.min...Int.max
            guard let number = Int(text), range.contains(number) else {
                throw ConveyorError(
                    .malformedJob,
                    "job \(fallbackID) has a '\(name)' field of '\(text)', not an integer from \(range.lowerBound) "
                        + "to \(range.upperBound)",
                    jobID: fallbackID
                )
            }
            return number
        }
        func date(_ text: String?) -> Date? {
            text.flatMap(Int.init).map { Date(timeIntervalSince1970: Double($0) / 1000) }
        }
        id = storedAs ?? raw.id.flatMap { $0.isEmpty ? nil : $0 } ?? fallbackID
        queue = String(id.prefix { $0 != "/" })
        type = try require(raw.type, "type")
        let statusText = try require(raw.status, "status")
        guard let status = JobStatus(rawValue: statusText) else {
            throw ConveyorError(
                .malformedJob,
                "job \(fallbackID) has an unknown status '\(statusText)'",
                jobID: fallbackID
            )
        }
        self.status = status
        payload = raw.payload ?? "null"
        result = raw.result
        error = raw.error.flatMap { $0.isEmpty ? nil : $0 }
        retryCount = try integer(raw.retryCount, "retry_count", default: 0)
        maxRetries = try integer(raw.maxRetries, "max_retries", default: 3)
        priority = try integer(raw.priority, "priority", default: 0)
        if let referenceType = raw.referenceType, !referenceType.isEmpty {
            reference = JobReference(type: referenceType, id: raw.referenceID ?? "")
        }
        // Enqueue leaves out run_at and updated_at while they equal created_at.
        runAt = date(raw.runAt) ?? date(raw.createdAt)
        createdAt = date(raw.createdAt)
        updatedAt = date(raw.updatedAt) ?? date(raw.createdAt)
        startedAt = date(raw.startedAt)
        finishedAt = date(raw.finishedAt)
        attempts = try integer(raw.attempts, "attempts", default: 0)
        stalls = try integer(raw.stalls, "stalls", default: 0)
        worker = raw.worker
        leaseToken = raw.lease
        let timeoutMilliseconds = try integer(raw.timeoutMilliseconds, "timeout_ms", default: 0)
        timeout = timeoutMilliseconds > 0 ? .milliseconds(timeoutMilliseconds) : nil
        uniqueKey = raw.uniqueKey
        cancelRequested = raw.cancelRequested == "1"
        failedPermanently = raw.permanent == "1"
    }
}

/// The fields of a job hash as text, before they are checked and converted.
private struct RawJobFields {
    var id, queue, type, status, payload, result, error: String?
    var retryCount, maxRetries, priority, referenceType, referenceID: String?
    var runAt, createdAt, updatedAt, startedAt, finishedAt: String?
    var attempts, stalls, worker, lease, timeoutMilliseconds, uniqueKey, cancelRequested, permanent: String?

    mutating func set(_ name: String, _ value: String?) {
        switch name {
        case "id": id = value
        case "queue": queue = value
        case "type": type = value
        case "status": status = value
        case "payload": payload = value
        case "result": result = value
        case "error": error = value
        case "retry_count": retryCount = value
        case "max_retries": maxRetries = value
        case "priority": priority = value
        case "reference_type": referenceType = value
        case "reference_id": referenceID = value
        case "run_at": runAt = value
        case "created_at": createdAt = value
        case "updated_at": updatedAt = value
        case "started_at": startedAt = value
        case "finished_at": finishedAt = value
        case "attempts": attempts = value
        case "stalls": stalls = value
        case "worker": worker = value
        case "lease": lease = value
        case "timeout_ms": timeoutMilliseconds = value
        case "unique_key": uniqueKey = value
        case "cancel_requested": cancelRequested = value
        case "permanent": permanent = value
        default: break
        }
    }
}

/// The entity a job is about, such as `file_upload` `42` (the origin's `reference_type`/`reference_id`).
public struct JobReference: Sendable, Hashable, Codable {
    /// The kind of entity, such as `file_upload` (letters, digits, `_ . -`).
    public var type: String
    /// The entity's id, such as `42`.
    public var id: String

    /// Creates a reference.
    ///
    /// - Parameters:
    ///   - type: The kind of entity.
    ///   - id: The entity's id.
    public init(type: String, id: String) {
        self.type = type
        self.id = id
    }
}
