public import Foundation

/// How to enqueue a job: where, when, how often to retry, and what it refers to.
public struct JobOptions: Sendable, Hashable {
    /// The queue; `nil` uses ``JobQueue/Configuration/defaultQueue``.
    public var queue: String?
    /// The job's id within its queue (or a full `<queue>/<id>`); `nil` generates a time-ordered UUIDv7. Enqueuing
    /// an id that already exists creates nothing and returns the existing job, so producers may retry safely.
    public var id: String?
    /// Run at this time (a time in the past runs now). Exclusive with ``delay``.
    public var runAt: Date?
    /// Run after this delay. Exclusive with ``runAt``.
    public var delay: Duration?
    /// Higher runs first, -100…100; 0 (the default) is FIFO in the fast path.
    public var priority: Int
    /// Retries after failed attempts; `nil` uses ``JobQueue/Configuration/defaultMaxRetries``.
    public var maxRetries: Int?
    /// How long one attempt may run; `nil` means no limit.
    public var timeout: Duration?
    /// The entity the job is about.
    public var reference: JobReference?
    /// While a live job (not completed, failed or cancelled) holds this key in the same queue, enqueuing another
    /// with the key creates nothing and returns the holder.
    public var uniqueKey: String?
    /// Replicas that must hold the job before the enqueue returns; `nil` uses the queue's
    /// ``JobQueue/Configuration/replicaAcknowledgement``.
    public var replicaAcknowledgement: ReplicaAcknowledgement?

    /// Creates options; every parameter has a default.
    ///
    /// - Parameters:
    ///   - queue: The queue (default queue when `nil`).
    ///   - id: A caller-given id (generated when `nil`).
    ///   - runAt: When to run.
    ///   - delay: How long to wait before running.
    ///   - priority: -100…100, higher first.
    ///   - maxRetries: Retries allowed.
    ///   - timeout: Time limit per attempt.
    ///   - reference: The entity the job is about.
    ///   - uniqueKey: A key only one live job may hold.
    ///   - replicaAcknowledgement: Replicas that must hold the job before the enqueue returns.
    public init(
        queue: String? = nil,
        id: String? = nil,
        runAt: Date? = nil,
        delay: Duration? = nil,
        priority: Int = 0,
        maxRetries: Int? = nil,
        timeout: Duration? = nil,
        reference: JobReference? = nil,
        uniqueKey: String? = nil,
        replicaAcknowledgement: ReplicaAcknowledgement? = nil
    ) {
        self.replicaAcknowledgement = replicaAcknowledgement
        self.queue = queue
        self.id = id
        self.runAt = runAt
        self.delay = delay
        self.priority = priority
        self.maxRetries = maxRetries
        self.timeout = timeout
        self.reference = reference
        self.uniqueKey = uniqueKey
    }
}

/// One job to enqueue with ``JobQueue/enqueueMany(_:)``.
public struct NewJob: Sendable, Hashable {
    /// The job type.
    public var type: String
    /// The payload as JSON text.
    public var payload: String
    /// Where, when and how.
    public var options: JobOptions

    /// Creates a job to enqueue from JSON text.
    ///
    /// - Parameters:
    ///   - type: The job type.
    ///   - json: The payload as JSON text.
    ///   - options: Where, when and how.
    public init(_ type: String, json: String, options: JobOptions = JobOptions()) {
        self.type = type
        self.payload = json
        self.options = options
    }

    /// Creates a job to enqueue from an encodable payload.
    ///
    /// - Parameters:
    ///   - type: The job type.
    ///   - payload: Encoded as JSON.
    ///   - options: Where, when and how.
    /// - Throws: `EncodingError` when the payload cannot be encoded.
    public init(_ type: String, payload: some Encodable, options: JobOptions = JobOptions()) throws {
        self.init(type, json: String(decoding: try JSONEncoder().encode(payload), as: UTF8.self), options: options)
    }
}

/// What enqueuing one job did.
public struct EnqueuedJob: Sendable, Hashable {
    /// What happened.
    public enum Outcome: String, Sendable, Hashable {
        /// A new job was created.
        case created
        /// A job with that id already existed; nothing was created.
        case existing
        /// A live job holds the uniqueness key; nothing was created and ``EnqueuedJob/id`` is that job's.
        case duplicate
    }

    /// The full id of the job (the existing or duplicate one when nothing was created).
    public var id: String
    /// Its status right after the call.
    public var status: JobStatus
    /// What happened.
    public var outcome: Outcome
}
