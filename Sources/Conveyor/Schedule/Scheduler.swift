public import Foundation
public import Logging
import RedisClient
public import ServiceLifecycle
import Synchronization

/// Who holds the scheduler's leader lease.
public struct LeaderInfo: Sendable, Hashable {
    /// The node's id.
    public var node: String
    /// What the node says about itself (host, pid).
    public var info: [String: String]
    /// Since when it leads.
    public var since: Date
    /// When its lease runs out unless renewed.
    public var expiresAt: Date
    /// The leadership epoch: it grows with every new leader.
    public var epoch: Int
}

extension JobQueue {
    /// The scheduler leader, if a lease is held now.
    ///
    /// - Returns: The leader, or `nil` when no node holds an unexpired lease.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func leader() async throws -> LeaderInfo? {
        let fields = Self.fields(try await command(RedisCommand("HGETALL", keys.leader)).array ?? [])
        let date = { (text: String?) in Date(timeIntervalSince1970: Double(Int(text ?? "") ?? 0) / 1000) }
        let expires = date(fields["expires_at"])
        guard let node = fields["node"], expires > (try await redisTime()) else { return nil }
        let info =
            (try? JSONDecoder().decode([String: String].self, from: Data((fields["info"] ?? "{}").utf8))) ?? [:]
        return LeaderInfo(
            node: node,
            info: info,
            since: date(fields["since"]),
            expiresAt: expires,
            epoch: Int(fields["epoch"] ?? "") ?? 0
        )
    }
}

/// Fires recurring schedules on one elected node.
///
/// Every node may run a `Scheduler` (every `conveyor worker` does by default); they elect one leader through a
/// lease in Redis, and only the leader ticks. The leader sleeps until the next schedule is due, or until a schedule
/// changes. A follower tries to take over when the leader's lease runs out, so a dead leader is replaced within the
/// lease time. Firing does not rely on the election: each fire time is a compare-and-set in Redis and makes a job
/// with a deterministic id, so two nodes that both believe they lead still fire each time once.
public final class Scheduler: Service, Sendable {
    /// Lease and identity settings.
    public struct Configuration: Sendable {
        /// How long a leader's lease lasts without renewal (10 s); it is renewed every third of it.
        public var lease: Duration
        /// This node's id, shown by `conveyor leader` (`host:pid:random`).
        public var nodeID: String
        /// This node's own clock. No scheduling decision reads it (Redis `TIME` decides when schedules are due and
        /// leases expire); it is only compared with Redis time to warn about a skewed node. Tests skew it.
        package var clock: @Sendable () -> Date = { Date() }

        /// Creates a configuration.
        ///
        /// - Parameters:
        ///   - lease: Leader lease (10 s).
        ///   - nodeID: Node id (`host:pid:random`).
        public init(lease: Duration = .seconds(10), nodeID: String? = nil) {
            self.lease = max(lease, .milliseconds(300))
            self.nodeID =
                nodeID
                ?? "\(ProcessInfo.processInfo.hostName):\(ProcessInfo.processInfo.processIdentifier):"
                + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        }
    }

    /// The job store whose schedules it fires.
    public let queue: JobQueue
    /// Its settings.
    public let configuration: Configuration
    private let logger: Logger
    private let failures = RepeatedFailureLog()
    private let token = JobQueue.makeID()
    private let state = Mutex<(leading: Bool, stopping: Bool, waiter: RedisConnection?)>((false, false, nil))
    private let warnedAboutSkew = Mutex(false)
    /// A node whose clock differs from Redis's by more than this is told so, once.
    private static let tolerableSkew = 5.0

    /// Creates a scheduler.
    ///
    /// - Parameters:
    ///   - queue: The job store.
    ///   - configuration: Lease and node id.
    ///   - logger: Where it logs.
    public init(
        queue: JobQueue,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "conveyor.scheduler")
    ) {
        self.queue = queue
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "conveyor.node"] = "\(configuration.nodeID)"
        self.logger = logger
    }

    /// Whether this scheduler holds the leader lease now.
    public var isLeader: Bool { state.withLock { $0.leading } }

    /// Runs until a graceful shutdown or task cancellation; gives the lease up on the way out.
    ///
    /// - Throws: ``ConveyorError`` when Redis cannot be reached at start.
    public func run() async throws {
        try await queue.prepare()
        let connection = queue.redis.makeDedicatedConnection()
        defer { connection.close() }
        state.withLock { $0.waiter = connection }
        await withGracefulShutdownHandler {
            await self.loop(connection)
        } onGracefulShutdown: {
            self.stop()
        }
        let wasLeading = state.withLock { $0.leading }
        _ = try? await queue.invoke("conveyor_leader_release", key: queue.keys.leader, [token], jobID: nil)
        if wasLeading { logger.info("gave up scheduler leadership") }
        state.withLock { $0.leading = false }
    }

    /// Stops the scheduler: it leaves its wait at once and releases the lease.
    public func stop() {
        let waiter = state.withLock { state in
            state.stopping = true
            return state.waiter
        }
        waiter?.interrupt()
    }

    private var isStopping: Bool { state.withLock { $0.stopping } }

    /// Says once when this node's clock is far from Redis's: harmless for scheduling, but worth fixing.
    private func warnIfSkewed(_ redisNow: Date) {
        let skew = configuration.clock().timeIntervalSince(redisNow)
        guard abs(skew) > Self.tolerableSkew else { return }
        let first = warnedAboutSkew.withLock { warned in
            defer { warned = true }
            return !warned
        }
        guard first else { return }
        let amount = String(format: "%.1f", abs(skew))
        logger.warning(
            """
            this node's clock is \(amount) s \(skew > 0 ? "ahead of" : "behind") Redis; schedules fire by Redis \
            time, so nothing fires early or late, but check the node's time sync (NTP)
            """
        )
    }

    private func loop(_ connection: RedisConnection) async {
        let keys = queue.keys
        let renewEvery = configuration.lease / 3
        var cursor = "$"
        while !isStopping && !Task.isCancelled {
            var wait = renewEvery
            do {
                if cursor == "$" {
                    let last = try await connection.send("XREVRANGE", keys.scheduleChanges, "+", "-", "COUNT", 1)
                    cursor = last.array?.first?.array?.first?.string ?? "0-0"
                }
                let info =
                    #"{"host":"\#(ProcessInfo.processInfo.hostName)","pid":"\#(ProcessInfo.processInfo.processIdentifier)"}"#
                let reply = try await queue.invoke(
                    "conveyor_leader_acquire",
                    key: keys.leader,
                    [token, JobQueue.milliseconds(configuration.lease), configuration.nodeID, info],
                    jobID: nil
                )
                let parts = reply.array ?? []
                let leading = parts.first?.int == 1
                // Waits are measured from this reading of Redis time, on a monotonic clock.
                let redisNow = try await queue.redisTime()
                let readAt = ContinuousClock.now
                warnIfSkewed(redisNow)
                let was = state.withLock { state in
                    defer { state.leading = leading }
                    return state.leading
                }
                if leading && !was {
                    logger.info(
                        "became the scheduler leader",
                        metadata: ["conveyor.epoch": "\(parts.count > 1 ? parts[1].int ?? 0 : 0)"]
                    )
                } else if !leading && was {
                    logger.warning("lost scheduler leadership")
                }
                if leading {
                    let fired = try await queue.tickSchedules(now: redisNow)
                    if !fired.isEmpty { logger.debug("fired \(fired.count) scheduled jobs") }
                    if let next = try await queue.nextScheduleRun() {
                        let untilNext =
                            Duration.milliseconds(Int64(next.timeIntervalSince(redisNow) * 1000))
                            - (ContinuousClock.now - readAt)
                        wait = min(wait, max(.milliseconds(1), untilNext))
                    }
                } else if parts.count >= 4, let expiresAt = parts[3].int {
                    // Try again right when the leader's lease would run out.
                    let untilExpiry =
                        Duration.milliseconds(Int64(Double(expiresAt) - redisNow.timeIntervalSince1970 * 1000))
                        - (ContinuousClock.now - readAt)
                    wait = min(wait, max(.milliseconds(1), untilExpiry + .milliseconds(5)))
                }
                // Sleep on the schedule-changes stream: a new or changed schedule wakes the leader at once.
                let changed = try await connection.send(
                    RedisCommand(
                        "XREAD",
                        "COUNT",
                        100,
                        "BLOCK",
                        max(1, JobQueue.milliseconds(wait)),
                        "STREAMS",
                        keys.scheduleChanges,
                        cursor
                    ),
                    blockingFor: wait
                )
                if let entries = changed.array?.first?.array?.last?.array, let last = entries.last?.array?.first?.string
                {
                    cursor = last
                }
                failures.succeeded("scheduler step", logger: logger)
            } catch {
                if isStopping || Task.isCancelled { return }
                failures.failed("scheduler step", "scheduler step failed: \(error)", logger: logger)
                try? await Task.sleep(for: .milliseconds(500))
            }
        }
    }
}
