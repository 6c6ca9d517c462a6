import Conveyor
import Foundation

/// The API's JSON shapes (snake_case like the job hash, times in epoch milliseconds), and how request bodies become
/// jobs.
extension ServeAPI {
    /// The fields a job in a request body may have.
    static let jobFields: Set<String> = [
        "type", "payload", "queue", "id", "priority", "run_at", "delay_ms", "max_retries", "timeout_ms", "reference",
        "unique_key",
    ]

    /// A job's type: 1-128 letters, digits or `_ . - : /`, the rule enqueuing applies (checked here too so that a
    /// schedule cannot be stored with a type that none of its jobs could have).
    static func jobType(_ body: JSONBody) throws(APIError) -> String {
        let type = try body.requiredString("type")
        guard JobQueue.isValidJobType(type) else {
            throw APIError.invalid("\(body.place): 'type' must be \(JobQueue.jobTypeRule), got '\(type)'")
        }
        return type
    }

    /// A job reference as enqueuing accepts it (``JobQueue/referenceProblem(_:)``), so that an empty one is
    /// refused rather than dropped, with the place of the request it came from.
    static func reference(type: String, id: String, place: String) throws(APIError) -> JobReference {
        let reference = JobReference(type: type, id: id)
        if let problem = JobQueue.referenceProblem(reference) { throw APIError.invalid("\(place): \(problem)") }
        return reference
    }

    /// A job from a request body: `{"type": …, "payload": …, "queue": …, …}` (see the OpenAPI document).
    static func newJob(_ body: JSONBody) throws(APIError) -> NewJob {
        try body.allow(jobFields)
        let type = try jobType(body)
        var options = JobOptions()
        options.queue = try body.string("queue")
        options.id = try body.string("id")
        options.priority = try body.integer("priority", in: -100...100) ?? 0
        options.maxRetries = try body.integer("max_retries", in: 0...10_000)
        options.timeout = try body.integer("timeout_ms", in: 1...(30 * 86_400_000)).map { .milliseconds($0) }
        options.uniqueKey = try body.string("unique_key")
        let runAt = try body.integer("run_at", in: 0...253_402_300_799_000)
        let delay = try body.integer("delay_ms", in: 0...(3650 * 86_400_000))
        if runAt != nil && delay != nil {
            throw APIError.invalid("\(body.place): give 'run_at' or 'delay_ms', not both")
        }
        options.runAt = runAt.map { Date(timeIntervalSince1970: Double($0) / 1000) }
        options.delay = delay.map { .milliseconds($0) }
        if let reference = try body.object("reference") {
            try reference.allow(["type", "id"])
            options.reference = try Self.reference(
                type: try reference.requiredString("type"),
                id: try reference.requiredString("id"),
                place: reference.place
            )
        }
        return NewJob(type, json: try body.json("payload") ?? "{}", options: options)
    }

    static func enqueuedObject(_ job: EnqueuedJob) -> [String: Any] {
        ["id": job.id, "outcome": job.outcome.rawValue, "status": job.status.rawValue]
    }

    static func scheduleObject(_ stored: StoredSchedule) -> [String: Any] {
        let schedule = stored.schedule
        var object: [String: Any] = [
            "name": schedule.name, "type": schedule.type, "queue": schedule.queue, "priority": schedule.priority,
            "payload": jsonValue(schedule.payload), "paused": stored.isPaused,
            "next_run_at": APIResponses.milliseconds(stored.nextRunAt),
            "last_run_at": APIResponses.milliseconds(stored.lastRunAt),
        ]
        switch schedule.rule {
        case .every(let interval):
            object["every_ms"] = Int(
                interval.components.seconds * 1000 + interval.components.attoseconds / 1_000_000_000_000_000
            )
        case .cron(let expression, let timeZone):
            object["cron"] = expression.description
            object["time_zone"] = timeZone.identifier
        }
        if let maxRetries = schedule.maxRetries { object["max_retries"] = maxRetries }
        return object
    }

    static func workerObject(_ worker: WorkerInfo) -> [String: Any] {
        [
            "id": worker.id, "host": worker.host, "pid": worker.pid, "queues": worker.queues,
            "concurrency": worker.concurrency, "in_flight": worker.inFlight,
            "started_at": APIResponses.milliseconds(worker.startedAt),
            "last_heartbeat": APIResponses.milliseconds(worker.lastHeartbeat),
        ]
    }

    static func leaderObject(_ leader: LeaderInfo) -> [String: Any] {
        [
            "node": leader.node, "epoch": leader.epoch, "info": leader.info,
            "since": APIResponses.milliseconds(leader.since), "expires_at": APIResponses.milliseconds(leader.expiresAt),
        ]
    }

    static func eventObject(_ event: JobEvent) -> [String: Any] {
        var object: [String: Any] = [
            "stream_id": event.streamID, "queue": event.queue, "id": event.jobID, "type": event.type,
            "from": event.from?.rawValue ?? NSNull(), "to": event.to?.rawValue ?? "removed",
            "at": APIResponses.milliseconds(event.at),
        ]
        if let error = event.error { object["error"] = error }
        return object
    }

    /// JSON text as a value, or the text itself when it is not JSON.
    static func jsonValue(_ text: String) -> Any {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) ?? text
    }
}
