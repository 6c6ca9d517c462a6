public import Foundation

/// A recurring job: what to enqueue, where, and when — every interval, or on a cron expression in a time zone.
///
/// Fire times come from the schedule, never from when a tick happened to run: an interval schedule fires at
/// `anchor + k × interval` (the anchor is its start time), a cron schedule at the expression's times. A late tick
/// therefore does not shift the series.
public struct Schedule: Sendable, Hashable {
    /// When a schedule fires.
    public enum Rule: Sendable, Hashable {
        /// Every interval (at least one second), from the schedule's start.
        case every(Duration)
        /// On a cron expression read in a time zone.
        case cron(CronExpression, timeZone: TimeZone)
    }

    /// What to do about missed fire times: when a tick finds several fire times due (the scheduler started late,
    /// was down, or the leader changed), only the latest is on time, and only when it is at most 60 s old; the others
    /// were missed.
    public enum MisfirePolicy: Sendable, Hashable {
        /// Run none of the missed times: a tick fires at most once per schedule, the latest due time when it is on
        /// time, and goes on with the next future one (the default).
        case skip
        /// Run once now for all missed times (one catch-up job, the latest missed time), besides the on-time one.
        case runOnce
        /// Run each missed time, at most this many (the latest ones), besides the on-time one.
        case runEach(max: Int)
    }

    /// The shortest interval allowed.
    public static let minimumInterval: Duration = .seconds(1)

    /// The unique name (1-100 letters, digits or `_ . - :`).
    public var name: String
    /// The job type to enqueue.
    public var type: String
    /// The payload of every job, as JSON text.
    public var payload: String
    /// The queue to enqueue into.
    public var queue: String
    /// Priority, retries and timeout of the jobs.
    public var priority: Int
    /// Retries of each job (`nil`: the queue's default).
    public var maxRetries: Int?
    /// Time limit per attempt of each job.
    public var timeout: Duration?
    /// When it fires.
    public var rule: Rule
    /// No fire time before this; also the anchor of an interval schedule. `nil`: an interval schedule is anchored
    /// at the Unix epoch (every 30 s fires at :00 and :30), the same on every node that declares it.
    public var start: Date?
    /// No fire time after this.
    public var end: Date?
    /// What to do about missed fire times.
    public var misfire: MisfirePolicy

    /// Creates a schedule and checks it.
    ///
    /// - Parameters:
    ///   - name: Unique name.
    ///   - type: Job type.
    ///   - payload: JSON payload of every job (`{}` by default).
    ///   - queue: Queue (`default`).
    ///   - rule: Interval or cron.
    ///   - priority: Job priority (0).
    ///   - maxRetries: Job retries (queue default).
    ///   - timeout: Job time limit.
    ///   - start: First possible fire time and interval anchor (`nil`: none; intervals anchored at the epoch).
    ///   - end: Last possible fire time (none).
    ///   - misfire: Missed fire times policy (skip).
    /// - Throws: ``ConveyorError`` with code ``ConveyorError/Code/invalidArgument`` saying what is wrong.
    public init(
        name: String,
        type: String,
        payload: String = "{}",
        queue: String = "default",
        rule: Rule,
        priority: Int = 0,
        maxRetries: Int? = nil,
        timeout: Duration? = nil,
        start: Date? = nil,
        end: Date? = nil,
        misfire: MisfirePolicy = .skip
    ) throws {
        let allowed = name.utf8.allSatisfy { byte in
            (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
                || [UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: ":")].contains(byte)
        }
        guard !name.isEmpty, name.utf8.count <= 100, allowed else {
            throw ConveyorError(.invalidArgument, "schedule name '\(name)' must be 1-100 letters, digits or _ . - :")
        }
        if case .every(let interval) = rule, interval < Self.minimumInterval {
            throw ConveyorError(
                .invalidArgument,
                "schedule '\(name)': the interval \(interval) is below the minimum of 1 second"
            )
        }
        if let end, let start, end <= start {
            throw ConveyorError(.invalidArgument, "schedule '\(name)': the end \(end) is not after the start \(start)")
        }
        if case .runEach(let max) = misfire, max < 1 {
            throw ConveyorError(.invalidArgument, "schedule '\(name)': runEach needs a maximum of at least 1")
        }
        if let problem = StrictJSON.problem(in: payload) {
            throw ConveyorError(
                .invalidArgument,
                "schedule '\(name)': the payload is not valid JSON: \(problem.describe(in: payload))"
            )
        }
        guard JobQueue.isValidJobType(type) else {
            throw ConveyorError(
                .invalidArgument,
                "schedule '\(name)': the job type '\(type)' must be \(JobQueue.jobTypeRule) (no job could have it)"
            )
        }
        try JobQueue.validateQueue(queue)
        self.name = name
        self.type = type
        self.payload = payload
        self.queue = queue
        self.rule = rule
        self.priority = priority
        self.maxRetries = maxRetries
        self.timeout = timeout
        self.start = start
        self.end = end
        self.misfire = misfire
    }

    /// Looks up an IANA time zone by name.
    ///
    /// - Parameter identifier: For example `Europe/Berlin`.
    /// - Returns: The time zone.
    /// - Throws: ``ConveyorError`` with code ``ConveyorError/Code/invalidArgument`` for an unknown name.
    public static func timeZone(_ identifier: String) throws -> TimeZone {
        guard let zone = TimeZone(identifier: identifier) else {
            throw ConveyorError(
                .invalidArgument,
                "unknown time zone '\(identifier)'; use an IANA name such as UTC, Europe/Berlin or America/New_York"
            )
        }
        return zone
    }

    /// The first fire time strictly after `date` (and not before the start, not after the end).
    ///
    /// - Parameter date: The time after which to look.
    /// - Returns: The fire time, or `nil` when the schedule has ended.
    public func nextFire(after date: Date) -> Date? {
        let fire: Date?
        switch rule {
        case .every(let interval):
            let seconds = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
            let anchor = start ?? Date(timeIntervalSince1970: 0)
            if date < anchor {
                fire = anchor
            } else {
                let steps = ((date.timeIntervalSince(anchor)) / seconds).rounded(.down) + 1
                fire = anchor.addingTimeInterval(steps * seconds)
            }
        case .cron(let expression, let timeZone):
            let from = start.map { max(date, $0.addingTimeInterval(-0.001)) } ?? date
            fire = expression.nextFire(after: from, in: timeZone)
        }
        guard let fire else { return nil }
        if let end, fire > end { return nil }
        return fire
    }

    /// The fire times due at `now`, starting from the stored next fire time, after applying the misfire policy;
    /// and the next fire time after them.
    ///
    /// Of the fire times due, only the latest can be on time, and only when it is at most `threshold` old (the tick
    /// is late, not the scheduler gone); every earlier one was missed, whenever it was. So `.skip` fires at most one
    /// time per call, `.runOnce` adds at most one catch-up fire, and `.runEach(max:)` adds up to `max`.
    ///
    /// - Parameters:
    ///   - nextRunAt: The schedule's stored next fire time.
    ///   - now: The current time (Redis time).
    ///   - threshold: The latest due fire time older than this is missed too, not merely late (60 s by default).
    ///   - limit: At most this many missed fire times are looked at (bounded work per tick, however long the
    ///     scheduler was gone).
    /// - Returns: The fire times to run now (oldest first) and the next fire time (`nil` when ended).
    public func due(
        from nextRunAt: Date,
        now: Date,
        threshold: Duration = .seconds(60),
        limit: Int = 1000
    )
        -> (fires: [Date], next: Date?)
    {
        let thresholdSeconds = Double(threshold.components.seconds) + Double(threshold.components.attoseconds) / 1e18
        var times: [Date] = []
        var cursor: Date? = nextRunAt
        while let time = cursor, time <= now, times.count < limit {
            times.append(time)
            cursor = nextFire(after: time)
        }
        if let time = cursor, time <= now {
            // Too many missed times to list: skip to the times of the last threshold, where the latest due one is.
            var recent: [Date] = []
            cursor = nextFire(
                after: max(time.addingTimeInterval(-0.001), now.addingTimeInterval(-thresholdSeconds - 0.001))
            )
            while let time = cursor, time <= now, recent.count < limit {
                recent.append(time)
                cursor = nextFire(after: time)
            }
            if let time = cursor, time <= now { cursor = nextFire(after: now) }
            times += recent
        }
        guard let latest = times.last else { return ([], cursor) }
        let onTime = now.timeIntervalSince(latest) <= thresholdSeconds ? [latest] : []
        let missed = onTime.isEmpty ? times : Array(times.dropLast())
        switch misfire {
        case .skip:
            return (onTime, cursor)
        case .runOnce:
            return ((missed.last.map { [$0] } ?? []) + onTime, cursor)
        case .runEach(let max):
            return (Array(missed.suffix(max)) + onTime, cursor)
        }
    }
}
