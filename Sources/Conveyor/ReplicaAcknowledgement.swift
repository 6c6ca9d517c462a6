import RedisClient

/// How many replicas must hold a change before the call that made it returns: Conveyor follows each write with
/// Redis's `WAIT`.
///
/// Redis replicates asynchronously: a job the primary acknowledged can be lost when the primary dies before a
/// replica has it, and a failover then promotes a replica without it. With an acknowledgement, an enqueue (or a
/// worker's completion, or a scheduler's fire) returns only once `replicas` replicas have the change; a failover
/// promotes the replica with the most data, so such a job survives the loss of the primary. `WAIT` does not make a
/// write durable on disk (see the README's "Durability").
///
/// ```swift
/// var configuration = JobQueue.Configuration()
/// configuration.replicaAcknowledgement = ReplicaAcknowledgement(replicas: 1, timeout: .seconds(1))
/// ```
public struct ReplicaAcknowledgement: Sendable, Hashable {
    /// How many replicas must acknowledge the write (1 or more).
    public var replicas: Int
    /// How long to wait for them (more than zero, at most a minute). When fewer acknowledge in time, an enqueue
    /// fails with ``ConveyorError/Code/notReplicated`` (the job itself stays on the primary); outcomes and fires
    /// cannot be undone, and failing them would only make work run again, so they log a warning and go on.
    public var timeout: Duration

    /// Creates an acknowledgement setting.
    ///
    /// - Parameters:
    ///   - replicas: Replicas that must have the write (1 by default).
    ///   - timeout: The longest wait for them (1 s by default).
    public init(replicas: Int = 1, timeout: Duration = .seconds(1)) {
        self.replicas = replicas
        self.timeout = timeout
    }

    /// The `WAIT` command, after checking the values.
    func command() throws(ConveyorError) -> RedisCommand {
        guard (1...1000).contains(replicas) else {
            throw ConveyorError(
                .invalidArgument,
                "replicaAcknowledgement.replicas must be 1 to 1000, got \(replicas); leave the setting nil to not wait"
            )
        }
        guard timeout > .zero, timeout <= .seconds(60) else {
            throw ConveyorError(
                .invalidArgument,
                "replicaAcknowledgement.timeout must be more than zero and at most 60 s, got \(timeout)"
            )
        }
        let (seconds, attoseconds) = timeout.components
        return RedisCommand("WAIT", replicas, max(1, Int(seconds * 1000 + attoseconds / 1_000_000_000_000_000)))
    }

    /// The error for a write that fewer replicas than asked acknowledged.
    func shortfall(acknowledged: Int, what: String, jobID: String?) -> ConveyorError {
        ConveyorError(
            .notReplicated,
            "\(what) is stored on the primary, but only \(acknowledged) of \(replicas) replicas acknowledged it "
                + "within \(timeout): it is lost if the primary fails before it replicates; check the replicas "
                + "(INFO replication on the primary), then retry with the same job id (enqueue is idempotent by id)",
            jobID: jobID
        )
    }
}
