public import Foundation
public import Logging
public import RedisClient
import Synchronization

/// The job store: enqueue, inspect and drive jobs in Redis.
///
/// Every change of state is one atomic Lua function of the `conveyor` library (`lua/`), so any number of
/// processes on any number of nodes can share queues, and other languages can do the same through the same
/// functions. A `JobQueue` is cheap; it shares the ``RedisClient`` pool it is given.
///
/// ```swift
/// let jobs = JobQueue(redis: redis)
/// let job = try await jobs.enqueue("send_email", payload: Email(to: "a@example.com"))
/// let finished = try await jobs.result(of: job.id, timeout: .seconds(30))
/// ```
public final class JobQueue: Sendable {
    /// Settings shared by every operation of a `JobQueue`.
    public struct Configuration: Sendable {
        /// The first part of every key (`conveyor`); applications sharing a Redis use different namespaces.
        public var namespace: String
        /// The queue used when an operation names none.
        public var defaultQueue: String
        /// The largest payload this client sends, in bytes (1 MiB by default). Each queue has its own limit too, set by
        /// an admin (``JobQueue/setMaximumPayloadBytes(_:queue:)``, 1 MiB unless set): the lower one applies, and no
        /// client can raise the queue's.
        public var maximumPayloadBytes: Int
        /// Retries allowed when a job does not say (3, as in the origin).
        public var defaultMaxRetries: Int
        /// How long a claim holds a job before it returns to pending unless heartbeated (30 s).
        public var lease: Duration
        /// The retry delay after a failed attempt.
        public var backoff: Backoff
        /// The worker name recorded on jobs this instance claims (`host:pid` by default).
        public var workerID: String
        /// Whether this client installs (or replaces) Conveyor's function library itself when the server lacks it or
        /// holds another version. Off by default: loading code that every client runs needs `FUNCTION LOAD`, which
        /// only an admin credential should have; run `conveyor install` (``JobQueue/installLibrary()``) once per
        /// release instead. Turn it on only where every client is trusted (one application, a development server).
        public var installsLibrary: Bool
        /// Replicas that must hold each job this queue enqueues, each outcome it records (a worker's completions and
        /// failures) and each fire of a schedule, before the call returns; `nil` (the default) does not wait. Claims,
        /// heartbeats, leases and admin calls do not wait: losing one in a failover only runs a job again. A job's
        /// ``JobOptions/replicaAcknowledgement`` overrides it for its enqueue.
        public var replicaAcknowledgement: ReplicaAcknowledgement?

        /// Creates a configuration; every parameter has a default.
        ///
        /// - Parameters:
        ///   - namespace: Key namespace (`conveyor`).
        ///   - defaultQueue: Queue used when none is named (`default`).
        ///   - maximumPayloadBytes: Payload size limit (1 MiB).
        ///   - defaultMaxRetries: Retries when a job does not say (3).
        ///   - lease: Claim lease (30 s).
        ///   - backoff: Retry delays (exponential from 1 s, full jitter, at most 1 h).
        ///   - workerID: Worker name on claimed jobs (`host:pid`).
        ///   - installsLibrary: Install the function library when it is missing or another version (off).
        ///   - replicaAcknowledgement: Replicas that must hold each change before a call returns (`nil`: none).
        public init(
            namespace: String = "conveyor",
            defaultQueue: String = "default",
            maximumPayloadBytes: Int = 1 << 20,
            defaultMaxRetries: Int = 3,
            lease: Duration = .seconds(30),
            backoff: Backoff = Backoff(),
            workerID: String = "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier)",
            installsLibrary: Bool = false,
            replicaAcknowledgement: ReplicaAcknowledgement? = nil
        ) {
            self.replicaAcknowledgement = replicaAcknowledgement
            self.installsLibrary = installsLibrary
            self.namespace = namespace
            self.defaultQueue = defaultQueue
            self.maximumPayloadBytes = maximumPayloadBytes
            self.defaultMaxRetries = defaultMaxRetries
            self.lease = lease
            self.backoff = backoff
            self.workerID = workerID
        }
    }

    /// The Redis client this queue uses.
    public let redis: RedisClient
    /// The settings this queue was made with.
    public let configuration: Configuration
    let logger: Logger
    package let keys: Keys
    let state = Mutex(State())
    /// The calls of ``result(of:timeout:)`` waiting now, and their readers.
    let resultWaiter: ResultWaiter
    /// The swift-metrics handles of this queue and of the workers that use it.
    let metrics = MetricHandles()

    struct State {
        var libraryChecked = false
        var registeredQueues: Set<String> = []
        var leases: [String: String] = [:]
        var lastShortfallWarning: ContinuousClock.Instant?
    }

    /// Creates a job queue on a Redis client.
    ///
    /// - Parameters:
    ///   - redis: The client (its pool is shared).
    ///   - configuration: Namespace, defaults, lease and backoff.
    ///   - logger: Where Conveyor logs.
    public init(
        redis: RedisClient,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "conveyor")
    ) {
        self.redis = redis
        self.configuration = configuration
        self.logger = logger
        self.keys = Keys(namespace: configuration.namespace)
        self.resultWaiter = ResultWaiter(redis: redis, keys: Keys(namespace: configuration.namespace))
    }

    // MARK: - Enqueue

    /// Enqueues a job whose payload is encoded as JSON.
    ///
    /// - Parameters:
    ///   - type: The job type (1-128 letters, digits or `_ . - : /`), which selects the handler.
    ///   - payload: Any encodable value.
    ///   - options: Queue, id, time, priority, retries, timeout, reference, uniqueness.
    /// - Returns: The job's id and status, and whether it was created.
    /// - Throws: ``ConveyorError`` for invalid input (nothing is stored) or when Redis fails.
    @discardableResult
    public func enqueue(
        _ type: String,
        payload: some Encodable & Sendable,
        options: JobOptions = JobOptions()
    ) async throws -> EnqueuedJob {
        try await enqueue(type, json: try encodeJSON(payload), options: options)
    }

    /// Enqueues a job whose payload is JSON text.
    ///
    /// - Parameters:
    ///   - type: The job type.
    ///   - json: The payload, which must be valid JSON.
    ///   - options: Queue, id, time, priority, retries, timeout, reference, uniqueness.
    /// - Returns: The job's id and status, and whether it was created.
    /// - Throws: ``ConveyorError`` for invalid input (nothing is stored) or when Redis fails.
    @discardableResult
    public func enqueue(_ type: String, json: String, options: JobOptions = JobOptions()) async throws -> EnqueuedJob {
        let queue = try queueName(options.queue)
        let arguments = try enqueueArguments(type, json: json, options: options, queue: queue)
        let acknowledgement = options.replicaAcknowledgement ?? configuration.replicaAcknowledgement
        let reply: RedisReply
        do {
            reply = try await invoke(
                "conveyor_enqueue",
                key: keys.prefix(queue),
                arguments,
                jobID: nil,
                acknowledgement: acknowledgement,
                failsOnShortfall: true
            )
        } catch let error as ConveyorError where error.code == .notReplicated {
            try? await register(queue)
            throw ConveyorError(error.code, "job \(arguments[0]): " + error.message, jobID: "\(queue)/\(arguments[0])")
        }
        // Registered only once something is stored: a refused job leaves no trace.
        try await register(queue)
        let enqueued = try Self.enqueued(reply)
        metrics.enqueued([enqueued], queue: queue, types: [type])
        return enqueued
    }

    /// Enqueues many jobs: per queue, one atomic call per 1 000 jobs; when a job is invalid, nothing of its call is
    /// stored. To store all or nothing of a larger set, call ``checkMany(_:)`` first.
    ///
    /// - Parameter jobs: The jobs, possibly for several queues.
    /// - Returns: One result per job, in order.
    /// - Throws: ``ConveyorError`` naming the first invalid job (`job N:`, counting from 1 in `jobs`).
    public func enqueueMany(_ jobs: [NewJob]) async throws -> [EnqueuedJob] {
        var results = [EnqueuedJob?](repeating: nil, count: jobs.count)
        for batch in try manyBatches(jobs) {
            let reply = try await invokeMany("conveyor_enqueue_many", batch)
            try await register(batch.queue)
            guard let replies = reply.array, replies.count == batch.positions.count else {
                throw ConveyorError(.redis, "conveyor_enqueue_many answered \(reply)")
            }
            for (position, single) in zip(batch.positions, replies) {
                results[position] = try Self.enqueued(single)
            }
            metrics.enqueued(
                batch.positions.compactMap { results[$0] },
                queue: batch.queue,
                types: batch.positions.map { jobs[$0].type }
            )
        }
        return results.compactMap { $0 }
    }

    /// Checks jobs exactly as ``enqueueMany(_:)`` would — in Swift and with the server's own checks
    /// (`conveyor_check_many`) — and stores nothing.
    ///
    /// - Parameter jobs: The jobs, possibly for several queues.
    /// - Throws: ``ConveyorError`` naming the first invalid job (`job N:`, counting from 1 in `jobs`).
    public func checkMany(_ jobs: [NewJob]) async throws {
        for batch in try manyBatches(jobs) {
            _ = try await invokeMany("conveyor_check_many", batch)
        }
    }

    /// One call's worth of jobs of one queue: their positions in the caller's list and the call's arguments.
    struct ManyBatch {
        var queue: String
        var positions: [Int]
        var arguments: [any RedisArgumentConvertible]
        /// The most replicas any job of the call asks for (a call is acknowledged as a whole).
        var acknowledgement: ReplicaAcknowledgement?
    }

    /// Splits jobs into calls of at most 1 000 jobs of one queue, checking what Swift can check.
    func manyBatches(_ jobs: [NewJob]) throws -> [ManyBatch] {
        var byQueue: [String: [(Int, [any RedisArgumentConvertible])]] = [:]
        for (position, job) in jobs.enumerated() {
            let queue: String
            let arguments: [any RedisArgumentConvertible]
            do {
                queue = try queueName(job.options.queue)
                arguments = try enqueueArguments(job.type, json: job.payload, options: job.options, queue: queue)
            } catch let error as ConveyorError {
                throw ConveyorError(error.code, "job \(position + 1): \(error.message)")
            }
            byQueue[queue, default: []].append((position, arguments))
        }
        let acknowledgement =
            jobs.compactMap(\.options.replicaAcknowledgement).max { $0.replicas < $1.replicas }
            ?? configuration.replicaAcknowledgement
        var batches: [ManyBatch] = []
        for (queue, entries) in byQueue.sorted(by: { $0.key < $1.key }) {
            for start in stride(from: 0, to: entries.count, by: 1000) {
                let slice = entries[start..<min(start + 1000, entries.count)]
                var arguments: [any RedisArgumentConvertible] = [slice.count]
                for (_, jobArguments) in slice {
                    let optionPairs = (jobArguments.count - 3) / 2
                    arguments += jobArguments[0..<3] + [optionPairs] + jobArguments[3...]
                }
                batches.append(
                    ManyBatch(
                        queue: queue,
                        positions: slice.map(\.0),
                        arguments: arguments,
                        acknowledgement: acknowledgement
                    )
                )
            }
        }
        return batches
    }

    /// Calls a many-jobs function; an error naming "job N" of the call is renamed to the job's place in the caller's
    /// list.
    private func invokeMany(_ function: String, _ batch: ManyBatch) async throws -> RedisReply {
        do {
            return try await invoke(
                function,
                key: keys.prefix(batch.queue),
                batch.arguments,
                jobID: nil,
                acknowledgement: function == "conveyor_check_many" ? nil : batch.acknowledgement,
                failsOnShortfall: true
            )
        } catch let error as ConveyorError {
            guard let match = error.message.firstMatch(of: #/^job (\d+): /#), let index = Int(match.output.1),
                batch.positions.indices.contains(index - 1)
            else { throw error }
            throw ConveyorError(
                error.code,
                "job \(batch.positions[index - 1] + 1): " + error.message.dropFirst(match.output.0.count)
            )
        }
    }

    // MARK: - Reading

    /// Reads a job by its full id (`<queue>/<id>`), in one lookup.
    ///
    /// - Parameter id: The full job id.
    /// - Returns: The job, or `nil` when there is none with that id.
    /// - Throws: ``ConveyorError`` for a malformed id or job hash, or when Redis fails.
    public func get(_ id: String) async throws -> Job? {
        let (queue, localID) = try split(id)
        let reply = try await command(RedisCommand("HGETALL", keys.job(queue, localID)))
        return try Self.job(from: reply, id: id)
    }

    // MARK: - Shared plumbing

    /// Calls a function of the `conveyor` library; error replies become ``ConveyorError``s.
    func invoke(
        _ function: String,
        queue: String,
        _ arguments: [any RedisArgumentConvertible],
        jobID: String?,
        on connection: RedisConnection? = nil
    ) async throws -> RedisReply {
        try await invoke(function, key: keys.prefix(queue), arguments, jobID: jobID, on: connection)
    }

    /// Calls a function of the `conveyor` library with any one key (the global leader hash, for instance).
    func invoke(
        _ function: String,
        key: String,
        _ arguments: [any RedisArgumentConvertible],
        jobID: String?,
        on connection: RedisConnection? = nil,
        acknowledgement: ReplicaAcknowledgement? = nil,
        failsOnShortfall: Bool = false
    ) async throws -> RedisReply {
        try await prepare()
        let command = RedisCommand("FCALL", [function, 1, key] + arguments)
        let wait = try acknowledgement.map { ($0, try $0.command()) }
        var reply = try await send(
            command,
            jobID: jobID,
            on: connection,
            wait: wait,
            failsOnShortfall: failsOnShortfall
        )
        if let message = reply.errorMessage, Self.isMissingFunction(message) {
            // The server lost the library since it was checked (FUNCTION FLUSH, a restart without persistence):
            // check again, which installs it when this client may and otherwise says how to.
            state.withLock { $0.libraryChecked = false }
            try await prepare()
            reply = try await send(
                command,
                jobID: jobID,
                on: connection,
                wait: wait,
                failsOnShortfall: failsOnShortfall
            )
        }
        if let message = reply.errorMessage {
            throw ConveyorError.fromReply(message, jobID: jobID)
        }
        return reply
    }

    /// Sends a call; with `wait`, followed by `WAIT` in the same round trip, and fails when fewer replicas than
    /// asked acknowledged a call that succeeded.
    private func send(
        _ command: RedisCommand,
        jobID: String?,
        on connection: RedisConnection?,
        wait: (ReplicaAcknowledgement, RedisCommand)?,
        failsOnShortfall: Bool
    ) async throws
        -> RedisReply
    {
        do {
            guard let (acknowledgement, waitCommand) = wait else {
                if let connection { return try await connection.send(command) }
                return try await redis.send(command)
            }
            let replies =
                if let connection {
                    try await connection.pipeline([command, waitCommand], blockingFor: acknowledgement.timeout)
                } else {
                    try await redis.pipeline([command, waitCommand], blockingFor: acknowledgement.timeout)
                }
            if replies[0].errorMessage == nil, let acknowledged = replies[1].int,
                acknowledged < acknowledgement.replicas
            {
                let shortfall = acknowledgement.shortfall(acknowledged: acknowledged, what: "the write", jobID: jobID)
                guard failsOnShortfall else {
                    warnOfShortfall(shortfall)
                    return replies[0]
                }
                throw shortfall
            }
            return replies[0]
        } catch let error as RedisClientError {
            throw ConveyorError(.redis, error.message, jobID: jobID)
        }
    }

    /// Logs a shortfall of replicas at most every 10 s (a failover makes every call fall short for seconds).
    private func warnOfShortfall(_ shortfall: ConveyorError) {
        let now = ContinuousClock.now
        let due = state.withLock { state in
            guard state.lastShortfallWarning.map({ now - $0 >= .seconds(10) }) ?? true else { return false }
            state.lastShortfallWarning = now
            return true
        }
        guard due else { return }
        logger.warning(
            "\(shortfall.message) (calls other than enqueues go on; this is logged at most every 10 s)",
            metadata: ["conveyor.redis": "\(redis.configuration.url)"]
        )
    }

    /// Sends plain commands (reads); transport failures become ``ConveyorError``s.
    func command(_ command: RedisCommand) async throws -> RedisReply {
        try await pipeline([command])[0]
    }

    func pipeline(
        _ commands: [RedisCommand],
        allowErrors: Bool = false,
        blockingFor: Duration? = nil
    ) async throws -> [RedisReply] {
        do {
            let replies =
                if let blockingFor {
                    try await redis.pipeline(commands, blockingFor: blockingFor)
                } else {
                    try await redis.pipeline(commands)
                }
            if !allowErrors, let failure = replies.first(where: { $0.errorMessage != nil }),
                let message = failure.errorMessage
            {
                throw ConveyorError(.redis, "Redis answered: \(message)")
            }
            return replies
        } catch let error as RedisClientError {
            throw ConveyorError(.redis, error.message)
        }
    }

    /// Adds a queue to the registry (`<namespace>:queues`) the first time this instance uses it.
    func register(_ queue: String) async throws {
        if state.withLock({ $0.registeredQueues.contains(queue) }) { return }
        let reply = try await pipeline([RedisCommand("SADD", keys.queues, queue)], allowErrors: true)[0]
        if let message = reply.errorMessage {
            // A user confined to its queues' keys may not write the registry: the job is stored all the same, and
            // listings that name the queue find it.
            guard message.hasPrefix("NOPERM") else { throw ConveyorError(.redis, "Redis answered: \(message)") }
            logger.debug("may not register the queue", metadata: ["conveyor.queue": "\(queue)"])
        }
        state.withLock { _ = $0.registeredQueues.insert(queue) }
    }

    func rememberLease(_ id: String, _ token: String?) {
        state.withLock { $0.leases[id] = token }
    }

    func rememberedLease(_ id: String) -> String? {
        state.withLock { $0.leases[id] }
    }

    func queueName(_ given: String?) throws -> String {
        let queue = given ?? configuration.defaultQueue
        try Self.validateQueue(queue)
        return queue
    }

    /// Checks a queue name: 1-64 of `A-Z a-z 0-9 _ . -` (it becomes part of Redis keys).
    ///
    /// - Parameter queue: The name.
    /// - Throws: ``ConveyorError`` with ``ConveyorError/Code/invalidArgument`` saying what is allowed.
    public static func validateQueue(_ queue: String) throws {
        let allowed = queue.utf8.allSatisfy { byte in
            (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122)
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-")
        }
        guard !queue.isEmpty, queue.utf8.count <= 64, allowed else {
            throw ConveyorError(
                .invalidArgument,
                "queue name '\(queue)' must be 1-64 letters, digits or _ . - (it becomes part of Redis keys)"
            )
        }
    }

    /// What a job type may be, for error messages: the rule of `conveyor_enqueue`.
    public static let jobTypeRule = "1-128 letters, digits or _ . - : /"

    /// Whether `type` is a job type `conveyor_enqueue` accepts: 1-128 ASCII letters, digits or `_ . - : /`. The
    /// CLI, the HTTP API and ``Schedule`` check it where the type is given, so that a type no job can have is refused
    /// there and not at the first enqueue.
    public static func isValidJobType(_ type: String) -> Bool {
        !type.isEmpty && type.utf8.count <= 128
            && type.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_.-:/".contains($0)) }
    }

    /// What is wrong with a job reference, or `nil`: its type must be 1-64 letters, digits or `_ . -` and its id
    /// 1-256 bytes without control characters (the rule of `conveyor_enqueue`, which takes an empty pair for "no
    /// reference": enqueue refuses a ``JobReference`` with both parts empty instead of dropping it).
    public static func referenceProblem(_ reference: JobReference) -> String? {
        let type = reference.type.utf8
        let nameBytes = type.allSatisfy { byte in
            (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte) || byte == 95
                || byte == 46 || byte == 45
        }
        guard (1...64).contains(type.count), nameBytes else {
            return "the reference type must be 1-64 letters, digits or _ . -, got '\(reference.type)'"
        }
        guard (1...256).contains(reference.id.utf8.count), !reference.id.utf8.contains(where: { $0 < 32 || $0 == 127 })
        else {
            return "the reference id must be 1-256 bytes without control characters"
        }
        return nil
    }

    /// Splits a full job id `<queue>/<id>` into its queue and its id within the queue.
    func split(_ id: String) throws -> (queue: String, localID: String) {
        guard let slash = id.firstIndex(of: "/") else {
            throw ConveyorError(
                .invalidArgument,
                "job id '\(id)' has no queue; full job ids look like <queue>/<id>, e.g. emails/0193…",
                jobID: id
            )
        }
        let queue = String(id[..<slash])
        let localID = String(id[id.index(after: slash)...])
        try Self.validateQueue(queue)
        guard !localID.isEmpty else {
            throw ConveyorError(.invalidArgument, "job id '\(id)' has nothing after the queue", jobID: id)
        }
        return (queue, localID)
    }

    private func encodeJSON(_ value: some Encodable) throws -> String {
        do {
            return String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
        } catch {
            throw ConveyorError(.invalidArgument, "the payload cannot be encoded as JSON: \(error)")
        }
    }

    private func enqueueArguments(
        _ type: String,
        json: String,
        options: JobOptions,
        queue: String
    ) throws -> [any RedisArgumentConvertible] {
        guard json.utf8.count <= configuration.maximumPayloadBytes else {
            throw ConveyorError(
                .invalidArgument,
                "the payload is \(json.utf8.count) bytes, over the limit of \(configuration.maximumPayloadBytes) "
                    + "bytes; store large data elsewhere and pass a reference, or raise maximumPayloadBytes"
            )
        }
        if let problem = StrictJSON.problem(in: json) {
            throw ConveyorError(.invalidArgument, "the payload is not valid JSON: \(problem.describe(in: json))")
        }
        if options.runAt != nil && options.delay != nil {
            throw ConveyorError(.invalidArgument, "give runAt or delay, not both")
        }
        var arguments: [any RedisArgumentConvertible] = [options.id ?? Self.makeID(), type, json]
        func option(_ name: String, _ value: any RedisArgumentConvertible) {
            arguments.append(name)
            arguments.append(value)
        }
        option("max_payload_bytes", configuration.maximumPayloadBytes)
        option("max_retries", options.maxRetries ?? configuration.defaultMaxRetries)
        if options.priority != 0 { option("priority", options.priority) }
        if let runAt = options.runAt { option("run_at", Self.milliseconds(runAt)) }
        if let delay = options.delay { option("delay_ms", Self.milliseconds(delay)) }
        if let timeout = options.timeout {
            guard timeout > .zero else {
                throw ConveyorError(.invalidArgument, "the timeout must be positive, got \(timeout)")
            }
            option("timeout_ms", max(1, Self.milliseconds(timeout)))
        }
        if let reference = options.reference {
            // conveyor_enqueue reads an empty pair as "no reference"; from Swift it is a mistake, not silence.
            if reference.type.isEmpty && reference.id.isEmpty {
                throw ConveyorError(
                    .invalidArgument,
                    "the reference has an empty reference_type and reference_id: give both, or no reference"
                )
            }
            option("reference_type", reference.type)
            option("reference_id", reference.id)
        }
        if let uniqueKey = options.uniqueKey { option("unique_key", uniqueKey) }
        return arguments
    }

    static func enqueued(_ reply: RedisReply) throws -> EnqueuedJob {
        guard let parts = reply.array, parts.count == 3, let outcome = parts[0].string, let id = parts[1].string,
            let status = parts[2].string.flatMap(JobStatus.init(rawValue:))
        else {
            throw ConveyorError(.redis, "unexpected reply to enqueue: \(reply)")
        }
        let kind: EnqueuedJob.Outcome =
            switch outcome {
            case "exists": .existing
            case "duplicate": .duplicate
            default: .created
            }
        return EnqueuedJob(id: id, status: status, outcome: kind)
    }

    /// The jobs of one event entry: `id` and `type` for one job, or `ids` and `types` (space-separated, in the same
    /// order) for several jobs that made the same transition in one call.
    static func eventJobs(_ fields: [String: String]) -> [(id: String, type: String)] {
        if let id = fields["id"] { return [(id, fields["type"] ?? "")] }
        guard let ids = fields["ids"] else { return [] }
        let types = (fields["types"] ?? "").split(separator: " ").map(String.init)
        return ids.split(separator: " ").enumerated().map { index, id in
            (String(id), index < types.count ? types[index] : "")
        }
    }

    static func fields(_ flat: [RedisReply]) -> [String: String] {
        var fields: [String: String] = [:]
        var index = 0
        while index + 1 < flat.count {
            if let name = flat[index].string { fields[name] = flat[index + 1].string }
            index += 2
        }
        return fields
    }

    static func job(from reply: RedisReply, id: String) throws -> Job? {
        guard let flat = reply.array else {
            throw ConveyorError(.redis, "unexpected reply reading job \(id): \(reply)", jobID: id)
        }
        if flat.isEmpty { return nil }
        return try Job(flat: flat, storedAs: id)
    }

    /// A time-ordered UUIDv7 in lower-case hex (see ``JobIDGenerator``).
    static func makeID() -> String {
        JobIDGenerator.shared.next()
    }

    static func milliseconds(_ date: Date) -> Int {
        Int((date.timeIntervalSince1970 * 1000).rounded())
    }

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }
}
