import Foundation
import RedisClient

extension JobQueue {
    /// The longest history one call reads: the hour hashes live 25 hours from their first write, so 24 hours are
    /// always whole.
    static let historyMinutesKept = 1440

    /// The queue's throughput per minute over the last `minutes` minutes, the current minute included.
    ///
    /// Every Lua function that counts `enqueued`, `started`, `completed`, `failed`, `retried`, `stalled` or
    /// `cancelled` in the queue's stats also counts it in the minute it ran (by Redis `TIME`), in one hash per hour
    /// (`<prefix>:history:<hour>`, see `lua/README.md`) that expires 25 hours after its first write. So the history
    /// covers every node that works on the queue, and it reads one hash per hour it spans.
    ///
    /// - Parameters:
    ///   - queue: The queue (the default queue when `nil`).
    ///   - minutes: How many minutes to read, 1 to 1440 (24 hours); 60 by default.
    /// - Returns: One entry per minute, oldest first, the current minute last; a minute without counts has every
    ///   counter at 0.
    /// - Throws: ``ConveyorError``: ``ConveyorError/Code/invalidArgument`` for a bad queue name or `minutes`
    ///   outside 1...1440, ``ConveyorError/Code/redis`` when Redis fails.
    public func history(queue: String? = nil, minutes: Int = 60) async throws -> [ThroughputMinute] {
        let queue = try queueName(queue)
        guard (1...Self.historyMinutesKept).contains(minutes) else {
            throw ConveyorError(
                .invalidArgument,
                "minutes must be from 1 to \(Self.historyMinutesKept) (the history keeps 24 hours), got \(minutes)"
            )
        }
        // TIME goes with a read of the queue's slot, so on a cluster it is the clock of the node that counted; that
        // read is the hour this machine's clock says, which is usually one of the hours needed.
        let guess = Self.milliseconds(Date()) / 3_600_000
        let header = try await pipeline([
            RedisCommand("TIME"), RedisCommand("HGETALL", keys.history(queue, hour: guess)),
        ])
        let time = (header[0].array ?? []).compactMap(\.string).compactMap(Int.init)
        guard time.count == 2 else { throw ConveyorError(.redis, "TIME answered \(header[0])") }
        let last = time[0] / 60  // minutes since the epoch, by Redis TIME
        let first = last - minutes + 1
        var hours: [Int: [String: String]] = [:]
        if (first / 60...last / 60).contains(guess) { hours[guess] = Self.fields(header[1].array ?? []) }
        let missing = (first / 60...last / 60).filter { hours[$0] == nil }
        if !missing.isEmpty {
            let replies = try await pipeline(missing.map { RedisCommand("HGETALL", keys.history(queue, hour: $0)) })
            for (hour, reply) in zip(missing, replies) { hours[hour] = Self.fields(reply.array ?? []) }
        }
        return (first...last).map { minute in
            let fields = hours[minute / 60] ?? [:]
            var counts: [String: Int] = [:]
            for name in ThroughputMinute.counterNames {
                counts[name] = fields["\(minute):\(name)"].flatMap(Int.init) ?? 0
            }
            return ThroughputMinute(minute: Date(timeIntervalSince1970: TimeInterval(minute * 60)), counts: counts)
        }
    }
}
