/// Why a Conveyor operation failed: the message says what was wrong and what to do.
public struct ConveyorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure. New codes may be added; switch with a `default`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String

        /// An argument was invalid (bad JSON, a name with forbidden characters, a value out of range, …).
        public static let invalidArgument = Code(name: "invalidArgument")
        /// No job has the given id.
        public static let jobNotFound = Code(name: "jobNotFound")
        /// The job is in a state that does not allow the operation (completing a job that is not processing, …).
        public static let invalidState = Code(name: "invalidState")
        /// The lease token is not the job's current one: the caller lost its lease, and another worker or a reclaim
        /// took the job.
        public static let staleLease = Code(name: "staleLease")
        /// Another live job holds the uniqueness key.
        public static let duplicate = Code(name: "duplicate")
        /// The job hash was written by another client and is missing fields or holds garbage.
        public static let malformedJob = Code(name: "malformedJob")
        /// Redis could not be reached, or answered in a way Conveyor did not expect.
        public static let redis = Code(name: "redis")
        /// The server lacks Conveyor's function library, or holds another version: run `conveyor install`.
        public static let libraryMismatch = Code(name: "libraryMismatch")
        /// A handler's process could not be started (the command does not exist, no pipes or processes are left).
        public static let processFailed = Code(name: "processFailed")
        /// Redis refused a write because it is at its `maxmemory` limit (policy `noeviction`): free memory or raise
        /// the limit. Workers wait and retry; nothing was written.
        public static let outOfMemory = Code(name: "outOfMemory")
        /// Waiting for a job took longer than the timeout.
        public static let timeout = Code(name: "timeout")
        /// The change was stored on the primary, but fewer replicas than ``ReplicaAcknowledgement/replicas``
        /// acknowledged it in time.
        public static let notReplicated = Code(name: "notReplicated")
        /// A typed wait (``JobQueue/result(of:as:timeout:)``) found the job failed or cancelled: its error is in
        /// the message.
        public static let jobFailed = Code(name: "jobFailed")

        public var description: String { name }
    }

    /// The kind of failure.
    public var code: Code
    /// What went wrong and what to do.
    public var message: String
    /// The job concerned, when there is one.
    public var jobID: String?

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: The kind of failure.
    ///   - message: What went wrong and what to do.
    ///   - jobID: The job concerned, if any.
    public init(_ code: Code, _ message: String, jobID: String? = nil) {
        self.code = code
        self.message = message
        self.jobID = jobID
    }

    public var description: String { message }

    /// Maps an error reply of a Conveyor Lua function (`CODE message`) to an error.
    static func fromReply(_ message: String, jobID: String?) -> ConveyorError {
        let parts = message.split(separator: " ", maxSplits: 1)
        let text = parts.count == 2 ? String(parts[1]) : message
        switch parts.first {
        case "INVALID": return ConveyorError(.invalidArgument, text, jobID: jobID)
        case "NOTFOUND": return ConveyorError(.jobNotFound, text, jobID: jobID)
        case "STATE": return ConveyorError(.invalidState, text, jobID: jobID)
        case "STALE": return ConveyorError(.staleLease, text, jobID: jobID)
        case "DUPLICATE": return ConveyorError(.duplicate, text, jobID: jobID)
        case "OOM":
            return ConveyorError(
                .outOfMemory,
                "Redis is out of memory (\(message)); raise maxmemory or free memory (remove or clean up old jobs)",
                jobID: jobID
            )
        default: return ConveyorError(.redis, "Redis answered: \(message)", jobID: jobID)
        }
    }
}
