extension Worker.Configuration {
    /// The shortest and longest lease: Conveyor's functions take at most a day, and under a second a heartbeat
    /// cannot renew a lease reliably.
    package static let leaseRange: ClosedRange<Duration> = .seconds(1)...(.seconds(86_400))
    /// The shortest heartbeat interval (it must also be shorter than the lease).
    package static let shortestHeartbeat: Duration = .milliseconds(100)
    /// The reclaim interval: often enough to matter, not so often that an idle worker spins.
    package static let reclaimRange: ClosedRange<Duration> = .milliseconds(100)...(.seconds(86_400))
    /// The longest idle wait, and the shortest (an idle worker must not spin).
    package static let idleWaitRange: ClosedRange<Duration> = .milliseconds(100)...(.seconds(86_400))
    /// How long an outcome may wait for the next claim: up to a second (results would otherwise show late).
    package static let batchWindowRange: ClosedRange<Duration> = .zero...(.seconds(1))
    /// The longest grace period after a shutdown starts.
    package static let longestGracePeriod: Duration = .seconds(86_400)
    /// The longest default time limit of an attempt (what Conveyor's functions accept for a job's own).
    package static let longestTimeout: Duration = .seconds(30 * 86_400)
    /// Jobs one worker may run at once.
    package static let concurrencyRange = 1...10_000
    /// Lease expiries before a job fails (what Conveyor's functions accept).
    package static let maxStallsRange = 0...1000
    /// The scheduler's leader lease: renewed every third of it, so under a second it would be renewed too often to
    /// be reliable; over an hour a dead leader would go unnoticed for too long.
    package static let schedulerLeaseRange: ClosedRange<Duration> = .seconds(1)...(.seconds(3600))

    /// Checks every setting; ``Worker/run()`` calls it before it touches Redis.
    ///
    /// - Throws: ``ConveyorError`` with code ``ConveyorError/Code/invalidArgument`` naming the first setting out of
    ///   range, its allowed range and its value.
    public func validate() throws {
        func refuse(_ message: String) -> ConveyorError {
            ConveyorError(.invalidArgument, "Worker.Configuration: " + message)
        }
        func check(_ name: String, _ value: Duration, _ range: ClosedRange<Duration>) throws {
            if value < range.lowerBound {
                throw refuse("\(name) must be at least \(Self.describe(range.lowerBound)), not \(value)")
            }
            if value > range.upperBound {
                throw refuse("\(name) must be at most \(Self.describe(range.upperBound)), not \(value)")
            }
        }
        if let queues {
            guard !queues.isEmpty else { throw refuse("give at least one queue, or nil for the default queue") }
            for name in queues { try JobQueue.validateQueue(name) }
        }
        guard Self.concurrencyRange.contains(concurrency) else {
            throw refuse("concurrency must be from 1 to \(Self.concurrencyRange.upperBound), not \(concurrency)")
        }
        try check("lease", lease, Self.leaseRange)
        guard heartbeatInterval >= Self.shortestHeartbeat else {
            throw refuse(
                "heartbeatInterval must be at least \(Self.describe(Self.shortestHeartbeat)), not \(heartbeatInterval)"
            )
        }
        guard heartbeatInterval < lease else {
            throw refuse("heartbeatInterval must be shorter than the lease (\(lease)), not \(heartbeatInterval)")
        }
        try check("reclaimInterval", reclaimInterval, Self.reclaimRange)
        try check("idleWait", idleWait, Self.idleWaitRange)
        try check("batchWindow", batchWindow, Self.batchWindowRange)
        guard (1...200).contains(workerID.count) else {
            throw refuse("workerID must be 1 to 200 characters, not \(workerID.count)")
        }
        guard gracePeriod >= .zero else { throw refuse("gracePeriod must not be negative, not \(gracePeriod)") }
        guard gracePeriod <= Self.longestGracePeriod else {
            throw refuse(
                "gracePeriod must be at most \(Self.describe(Self.longestGracePeriod)), not \(gracePeriod)"
            )
        }
        if runsScheduler { try check("schedulerLease", schedulerLease, Self.schedulerLeaseRange) }
        guard Self.maxStallsRange.contains(maxStalls) else {
            throw refuse("maxStalls must be from 0 to \(Self.maxStallsRange.upperBound), not \(maxStalls)")
        }
        if let defaultTimeout {
            guard defaultTimeout > .zero else { throw refuse("defaultTimeout must be positive, not \(defaultTimeout)") }
            guard defaultTimeout <= Self.longestTimeout else {
                throw refuse(
                    "defaultTimeout must be at most \(Self.describe(Self.longestTimeout)), not \(defaultTimeout)"
                )
            }
        }
    }

    /// "100ms", "1s", "1d": how the limits read in an error.
    private static func describe(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        where milliseconds >= size && milliseconds % size == 0 {
            return "\(milliseconds / size)\(unit)"
        }
        return "\(milliseconds)ms"
    }
}
