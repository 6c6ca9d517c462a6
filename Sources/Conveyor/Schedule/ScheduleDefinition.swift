import Foundation

/// A ``Schedule`` as stored in Redis: canonical JSON (sorted keys), so the same declaration from any node is the
/// same text and an upsert of it changes nothing.
struct ScheduleDefinition: Codable, Sendable, Equatable {
    var name: String
    var type: String
    var payload: String
    var queue: String
    var priority: Int
    var maxRetries: Int?
    var timeoutMilliseconds: Int?
    var everyMilliseconds: Int?
    var cron: String?
    var timeZone: String?
    var startMilliseconds: Int?
    var endMilliseconds: Int?
    var misfire: String

    enum CodingKeys: String, CodingKey {
        case name, type, payload, queue, priority, cron
        case maxRetries = "max_retries"
        case timeoutMilliseconds = "timeout_ms"
        case everyMilliseconds = "every_ms"
        case timeZone = "time_zone"
        case startMilliseconds = "start_ms"
        case endMilliseconds = "end_ms"
        case misfire
    }

    init(_ schedule: Schedule) {
        name = schedule.name
        type = schedule.type
        payload = schedule.payload
        queue = schedule.queue
        priority = schedule.priority
        maxRetries = schedule.maxRetries
        timeoutMilliseconds = schedule.timeout.map { JobQueue.milliseconds($0) }
        switch schedule.rule {
        case .every(let interval): everyMilliseconds = JobQueue.milliseconds(interval)
        case .cron(let expression, let zone):
            cron = expression.source
            timeZone = zone.identifier
        }
        startMilliseconds = schedule.start.map { JobQueue.milliseconds($0) }
        endMilliseconds = schedule.end.map { JobQueue.milliseconds($0) }
        switch schedule.misfire {
        case .skip: misfire = "skip"
        case .runOnce: misfire = "once"
        case .runEach(let max): misfire = "each:\(max)"
        }
    }

    /// The canonical JSON text.
    func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    /// The schedule this definition describes.
    ///
    /// - Throws: ``ConveyorError`` when the stored definition is not one Conveyor can use.
    func schedule() throws -> Schedule {
        let rule: Schedule.Rule
        if let every = everyMilliseconds {
            rule = .every(.milliseconds(every))
        } else if let cron {
            rule = .cron(try CronExpression(cron), timeZone: try Schedule.timeZone(timeZone ?? "UTC"))
        } else {
            throw ConveyorError(.invalidArgument, "schedule '\(name)' has neither every_ms nor cron")
        }
        let policy: Schedule.MisfirePolicy
        if misfire == "once" {
            policy = .runOnce
        } else if misfire.hasPrefix("each:"), let max = Int(misfire.dropFirst(5)) {
            policy = .runEach(max: max)
        } else {
            policy = .skip
        }
        return try Schedule(
            name: name,
            type: type,
            payload: payload,
            queue: queue,
            rule: rule,
            priority: priority,
            maxRetries: maxRetries,
            timeout: timeoutMilliseconds.map { .milliseconds($0) },
            start: startMilliseconds.map { Date(timeIntervalSince1970: Double($0) / 1000) },
            end: endMilliseconds.map { Date(timeIntervalSince1970: Double($0) / 1000) },
            misfire: policy
        )
    }
}
