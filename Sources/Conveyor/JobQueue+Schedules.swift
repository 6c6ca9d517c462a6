public import Foundation
import Logging
import RedisClient
import Synchronization

/// A schedule as stored, with its state.
public struct StoredSchedule: Sendable, Hashable {
    /// The definition.
    public var schedule: Schedule
    /// When it fires next (`nil` when paused or ended).
    public var nextRunAt: Date?
    /// When it last fired.
    public var lastRunAt: Date?
    /// Whether it is paused.
    public var isPaused: Bool
}

/// What an upsert of a schedule did.
public enum ScheduleUpsert: String, Sendable, Hashable {
    /// A new schedule was stored.
    case created
    /// The stored definition was different and was replaced (its next run time was computed again).
    case updated
    /// The stored definition was the same; nothing changed.
    case unchanged
}

extension JobQueue {
    /// Stores a schedule, idempotently: declaring the same schedule again (from any node) changes nothing and keeps
    /// its next run time; a changed definition replaces the stored one.
    ///
    /// - Parameter schedule: The schedule.
    /// - Returns: What happened, and the next run time.
    /// - Throws: ``ConveyorError`` for an invalid schedule or when Redis fails.
    @discardableResult
    public func upsert(_ schedule: Schedule) async throws -> (outcome: ScheduleUpsert, nextRunAt: Date?) {
        try await register(schedule.queue)
        let definition = try ScheduleDefinition(schedule).json()
        let next = schedule.nextFire(after: try await redisTime()).map { Self.milliseconds($0) } ?? -1
        _ = try await command(RedisCommand("SADD", keys.schedules, "\(schedule.queue)/\(schedule.name)"))
        let reply = try await invoke(
            "conveyor_schedule_upsert",
            queue: schedule.queue,
            [schedule.name, definition, next],
            jobID: nil
        )
        guard let parts = reply.array, parts.count == 2, let outcome = parts[0].string.flatMap(ScheduleUpsert.init),
            let nextRun = parts[1].int
        else {
            throw ConveyorError(.redis, "unexpected reply to a schedule upsert: \(reply)")
        }
        if outcome == .updated {
            logger.debug("schedule \(schedule.name) changed; its next run was computed again")
        }
        if outcome != .unchanged { try await announceScheduleChange(schedule.name) }
        return (outcome, nextRun >= 0 ? Date(timeIntervalSince1970: Double(nextRun) / 1000) : nil)
    }

    /// Deletes a schedule (jobs it already created stay).
    ///
    /// - Parameters:
    ///   - name: The schedule's name.
    ///   - queue: Its queue (the default queue when `nil`).
    /// - Returns: Whether it existed.
    /// - Throws: ``ConveyorError`` when Redis fails.
    @discardableResult
    public func removeSchedule(_ name: String, queue: String? = nil) async throws -> Bool {
        let queue = try queueName(queue)
        _ = try await command(RedisCommand("SREM", keys.schedules, "\(queue)/\(name)"))
        let removed = try await invoke("conveyor_schedule_remove", queue: queue, [name], jobID: nil).int == 1
        try await announceScheduleChange(name)
        return removed
    }

    /// Stops a schedule from firing until it is resumed.
    ///
    /// - Parameters:
    ///   - name: The schedule's name.
    ///   - queue: Its queue (the default queue when `nil`).
    /// - Throws: ``ConveyorError`` (``ConveyorError/Code/jobNotFound`` for an unknown schedule).
    public func pauseSchedule(_ name: String, queue: String? = nil) async throws {
        _ = try await invoke("conveyor_schedule_pause", queue: try queueName(queue), [name, "1"], jobID: nil)
        try await announceScheduleChange(name)
    }

    /// Lets a paused schedule fire again, from its next fire time after now (missed times are not made up).
    ///
    /// - Parameters:
    ///   - name: The schedule's name.
    ///   - queue: Its queue (the default queue when `nil`).
    /// - Throws: ``ConveyorError`` (``ConveyorError/Code/jobNotFound`` for an unknown schedule).
    public func resumeSchedule(_ name: String, queue: String? = nil) async throws {
        let queue = try queueName(queue)
        guard let stored = try await storedSchedule(queue, name) else {
            throw ConveyorError(.jobNotFound, "no schedule \(name) in queue \(queue)")
        }
        let next = stored.schedule.nextFire(after: try await redisTime()).map { Self.milliseconds($0) } ?? -1
        _ = try await invoke("conveyor_schedule_pause", queue: queue, [name, "0", next], jobID: nil)
        try await announceScheduleChange(name)
    }

    /// The time by Redis `TIME`: the one clock that decides when schedules fire, whatever the clocks of the nodes say.
    func redisTime() async throws -> Date {
        let reply = try await command(RedisCommand("TIME")).array ?? []
        guard reply.count == 2, let seconds = reply[0].int, let microseconds = reply[1].int else {
            throw ConveyorError(.redis, "unexpected reply to TIME: \(reply)")
        }
        return Date(timeIntervalSince1970: Double(seconds) + Double(microseconds) / 1e6)
    }

    /// Appends to the schedule-changes stream, which wakes the leader early.
    func announceScheduleChange(_ name: String) async throws {
        _ = try await command(RedisCommand("XADD", keys.scheduleChanges, "MAXLEN", "~", 100, "*", "schedule", name))
    }

    /// When the earliest active schedule fires next, if any.
    func nextScheduleRun() async throws -> Date? {
        let entries = try await command(RedisCommand("SMEMBERS", keys.schedules)).array?.compactMap(\.string) ?? []
        let queues = Set(entries.compactMap { $0.split(separator: "/", maxSplits: 1).first.map(String.init) })
        guard !queues.isEmpty else { return nil }
        let firsts = try await pipeline(
            queues.sorted().map { RedisCommand("ZRANGE", keys.dueSchedules($0), 0, 0, "WITHSCORES") }
        )
        return firsts.compactMap { $0.array?.last?.int }.min().map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }

    /// Every stored schedule, by queue and name. A schedule whose stored definition cannot be read is left out
    /// (and logged with its name).
    ///
    /// - Returns: The schedules with their state.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func schedules() async throws -> [StoredSchedule] {
        let entries = try await command(RedisCommand("SMEMBERS", keys.schedules)).array?.compactMap(\.string) ?? []
        var result: [StoredSchedule] = []
        for entry in entries.sorted() {
            guard let slash = entry.firstIndex(of: "/") else { continue }
            if let stored = try await storedSchedule(
                String(entry[..<slash]),
                String(entry[entry.index(after: slash)...])
            ) {
                result.append(stored)
            }
        }
        return result
    }

    func storedSchedule(_ queue: String, _ name: String) async throws -> StoredSchedule? {
        let reply = try await command(RedisCommand("HGETALL", keys.schedule(queue, name)))
        return Self.storedSchedule(Self.fields(reply.array ?? []), name: "\(queue)/\(name)", logger: logger)
    }

    /// Reads a schedule hash; an unreadable one is logged with its name and skipped.
    static func storedSchedule(_ fields: [String: String], name: String, logger: Logger) -> StoredSchedule? {
        guard !fields.isEmpty else { return nil }
        do {
            guard let text = fields["definition"] else {
                throw ConveyorError(.malformedJob, "it has no definition")
            }
            let definition = try JSONDecoder().decode(ScheduleDefinition.self, from: Data(text.utf8))
            let date = { (value: String?) in
                value.flatMap(Int.init).flatMap { $0 >= 0 ? Date(timeIntervalSince1970: Double($0) / 1000) : nil }
            }
            let paused = fields["paused"] == "1"
            return StoredSchedule(
                schedule: try definition.schedule(),
                nextRunAt: paused ? nil : date(fields["next_run_at"]),
                lastRunAt: date(fields["last_run_at"]),
                isPaused: paused
            )
        } catch {
            logger.error("schedule \(name) is unreadable and is skipped: \(error)")
            return nil
        }
    }

    /// The queues that hold a schedule of this name (a name is unique within a queue, not across queues).
    ///
    /// - Parameter name: The schedule's name.
    /// - Returns: Queue names, sorted.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func scheduleQueues(named name: String) async throws -> [String] {
        let entries = try await command(RedisCommand("SMEMBERS", keys.schedules)).array?.compactMap(\.string) ?? []
        return entries.compactMap { entry in
            let parts = entry.split(separator: "/", maxSplits: 1).map(String.init)
            return parts.count == 2 && parts[1] == name ? parts[0] : nil
        }.sorted()
    }

    /// Pauses a schedule that can never fire, and says so once.
    private func pauseBroken(_ name: String, queue: String, reason: String) async {
        do {
            _ = try await invoke("conveyor_schedule_pause", queue: queue, [name, "1"], jobID: nil)
            let advice = "fix it (upsert it again, or conveyor schedule add) and resume it"
            logger.error("schedule \(name) in queue \(queue) cannot fire and is paused: \(reason); \(advice)")
        } catch {
            logger.error("schedule \(name) in queue \(queue) cannot fire (\(reason)) and could not be paused: \(error)")
        }
    }

    /// Fires every due schedule: for each one, the due fire times (after its misfire policy) become jobs with the
    /// ids `<schedule>@<fire time ms>`, and its next run time moves on — in one compare-and-set call, so any number
    /// of concurrent callers (two leaders with a stale view, a repeated tick) fire each time exactly once.
    ///
    /// - Parameter now: The current time; `nil` (the default) reads Redis `TIME`. Whatever time is given, no fire
    ///   time later than Redis `TIME` fires: `conveyor_schedule_fire` refuses it.
    /// - Returns: The full ids of the jobs fired (also ones another caller had fired first are not included).
    /// - Throws: ``ConveyorError`` when Redis fails.
    @discardableResult
    public func tickSchedules(now given: Date? = nil) async throws -> [String] {
        try await prepare()
        let now: Date
        if let given { now = given } else { now = try await redisTime() }
        let entries = try await command(RedisCommand("SMEMBERS", keys.schedules)).array?.compactMap(\.string) ?? []
        let queues = Set(entries.compactMap { $0.split(separator: "/", maxSplits: 1).first.map(String.init) })
        var fired: [String] = []
        for queue in queues.sorted() {
            // Due schedules in batches of 1000: read a batch in one pipeline, fire it in another.
            let allDue =
                try await command(
                    RedisCommand(
                        "ZRANGEBYSCORE",
                        keys.dueSchedules(queue),
                        "-inf",
                        Self.milliseconds(now),
                        "LIMIT",
                        0,
                        100_000
                    )
                ).array?.compactMap(\.string) ?? []
            for start in stride(from: 0, to: allDue.count, by: 1000) {
                let due = Array(allDue[start..<min(start + 1000, allDue.count)])
                let hashes = try await pipeline(due.map { RedisCommand("HGETALL", keys.schedule(queue, $0)) })
                var calls: [(name: String, arguments: [any RedisArgumentConvertible])] = []
                for (name, hash) in zip(due, hashes) {
                    let fields = Self.fields(hash.array ?? [])
                    guard let stored = Self.storedSchedule(fields, name: name, logger: logger) else {
                        // Unreadable: it would be due again at once, for ever. Pause it; fixing it resumes it.
                        if !fields.isEmpty {
                            await pauseBroken(name, queue: queue, reason: "its definition is unreadable")
                        }
                        continue
                    }
                    guard let nextRunAt = stored.nextRunAt else { continue }
                    calls.append((name, fireArguments(stored.schedule, nextRunAt: nextRunAt, now: now)))
                }
                if calls.isEmpty { continue }
                // A hundred schedules per call (conveyor_schedule_fire_many), the calls in one pipeline.
                var commands: [RedisCommand] = []
                for first in stride(from: 0, to: calls.count, by: 100) {
                    let part = calls[first..<min(calls.count, first + 100)]
                    var arguments: [any RedisArgumentConvertible] = [
                        "conveyor_schedule_fire_many", 1, keys.prefix(queue), part.count,
                    ]
                    for call in part { arguments += [call.arguments.count] + call.arguments }
                    commands.append(RedisCommand("FCALL", arguments))
                }
                var batches: [RedisReply]
                if let acknowledgement = configuration.replicaAcknowledgement {
                    batches = try await pipeline(
                        commands + [try acknowledgement.command()],
                        allowErrors: true,
                        blockingFor: acknowledgement.timeout
                    )
                    // The fires are made; a shortfall is logged, not undone (the next tick does not fire them again).
                    if let acknowledged = batches.removeLast().int, acknowledged < acknowledgement.replicas {
                        logger.warning(
                            "only \(acknowledged) of \(acknowledgement.replicas) replicas acknowledged the fires",
                            metadata: ["conveyor.queue": "\(queue)"]
                        )
                    }
                } else {
                    batches = try await pipeline(commands, allowErrors: true)
                }
                var replies: [RedisReply] = []
                for (index, batch) in batches.enumerated() {
                    let size = min(100, calls.count - index * 100)
                    if let list = batch.array, list.count == size {
                        // An error text in place of a reply is that schedule's error.
                        replies += list.map { reply in
                            if let text = reply.string, text.firstMatch(of: #/^[A-Z]+ /#) != nil { return .error(text) }
                            return reply
                        }
                    } else {
                        replies += Array(repeating: batch.errorMessage.map { .error($0) } ?? batch, count: size)
                    }
                }
                if replies.contains(where: { $0.errorMessage?.contains("Function not found") == true }) {
                    // The server lost the library (FUNCTION FLUSH, a restart without persistence): check it again
                    // (installing it where this client may); the next tick fires these.
                    state.withLock { $0.libraryChecked = false }
                    try? await prepare()
                }
                for (call, reply) in zip(calls, replies) {
                    if let message = reply.errorMessage {
                        if message.hasPrefix("INVALID") {
                            // Its jobs are refused at every fire: retrying cannot help.
                            await pauseBroken(call.name, queue: queue, reason: message)
                        } else {
                            logger.error("schedule \(call.name) in queue \(queue) could not fire: \(message)")
                        }
                        continue
                    }
                    if let parts = reply.array, parts.first?.string == "fired" {
                        fired += parts.dropFirst().compactMap(\.string)
                    } else if reply.array?.first?.string == "early" {
                        logger.debug("schedule \(call.name) in queue \(queue) is not due yet by Redis time")
                    }
                }
            }
        }
        return fired
    }

    /// The arguments of one schedule's fire, as `conveyor_schedule_fire` takes them.
    private func fireArguments(_ schedule: Schedule, nextRunAt: Date, now: Date) -> [any RedisArgumentConvertible] {
        let (fires, next) = schedule.due(from: nextRunAt, now: now)
        var options: [any RedisArgumentConvertible] = []
        if schedule.priority != 0 { options += ["priority", schedule.priority] }
        if let maxRetries = schedule.maxRetries { options += ["max_retries", maxRetries] }
        if let timeout = schedule.timeout { options += ["timeout_ms", Self.milliseconds(timeout)] }
        let head: [any RedisArgumentConvertible] = [
            schedule.name, Self.milliseconds(nextRunAt), next.map { Self.milliseconds($0) } ?? -1, schedule.type,
            schedule.payload, options.count / 2,
        ]
        return head + options + fires.map { Self.milliseconds($0) }
    }
}
