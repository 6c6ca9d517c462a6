import Conveyor
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The JSON API's handlers: one per operation of the CLI, each a thin layer over ``JobQueue``.
struct ServeAPI: Sendable {
    let jobs: JobQueue
    let configuration: ServeConfiguration

    /// The statuses by name, for filters.
    static let statuses = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0.rawValue, $0) })

    /// Runs a handler, turning every failure into a JSON error.
    static func answer(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            return APIResponses.error(error)
        } catch let error as ConveyorError {
            return APIResponses.error(APIError(error))
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            return APIResponses.error(
                APIError(.contentTooLarge, "payloadTooLarge", "the request body is larger than the server accepts")
            )
        } catch {
            return APIResponses.error(APIError(.internalServerError, "internal", "\(error)"))
        }
    }

    /// The request body as one JSON object, at most ``ServeConfiguration/maximumBodyBytes``.
    func body(of request: Request) async throws -> JSONBody {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: configuration.maximumBodyBytes)
        } catch is NIOTooManyBytesError {
            throw APIError(
                .contentTooLarge,
                "payloadTooLarge",
                "the request body is larger than \(configuration.maximumBodyBytes) bytes: send fewer jobs per request"
            )
        }
        return try JSONBody(bytes: Array(buffer.readableBytesView))
    }

    /// A queue named in the path, which must exist.
    func knownQueue(_ context: ServeRequestContext) async throws -> String {
        let name = context.pathParameter("queue")
        try JobQueue.validateQueue(name)
        let known = try await jobs.queues()
        guard known.contains(name) else {
            throw APIError(
                .notFound,
                "queueNotFound",
                "no queue '\(name)' in this namespace (known: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
            )
        }
        return name
    }

    /// The full id `<queue>/<id>` named in the path.
    static func jobID(_ context: ServeRequestContext) -> String {
        context.pathParameter("queue") + "/" + context.pathParameter("id")
    }

    // MARK: - Queues

    func listQueues() async throws -> Response {
        APIResponses.json(["queues": try await QueueSummary.read(try await jobs.queues(), from: jobs).map(\.object)])
    }

    func getQueue(_ context: ServeRequestContext) async throws -> Response {
        APIResponses.json(try await QueueSummary.read(try await knownQueue(context), from: jobs).object)
    }

    func pauseQueue(_ context: ServeRequestContext, paused: Bool) async throws -> Response {
        let name = try await knownQueue(context)
        if paused { try await jobs.pause(queue: name) } else { try await jobs.resume(queue: name) }
        return APIResponses.json(["queue": name, "paused": paused])
    }

    func retryAll(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        let name = try await knownQueue(context)
        let status =
            try QueryParameters(request: request).choice(
                "status",
                ["failed": JobStatus.failed, "cancelled": .cancelled, "retrying": .retrying, "scheduled": .scheduled]
            ) ?? .failed
        let (retried, skipped) = try await jobs.retryAll(queue: name, status: status)
        return APIResponses.json(["queue": name, "status": status.rawValue, "retried": retried, "skipped": skipped])
    }

    func throughput(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        let name = try await knownQueue(context)
        let window = try QueryParameters(request: request).integer("window_ms", in: 1000...86_400_000, default: 60_000)
        let result = try await jobs.throughput(queue: name, over: .milliseconds(window))
        return APIResponses.json([
            "queue": name, "completed": result.completed, "failed": result.failed,
            "covered_ms": Int(
                result.covered.components.seconds * 1000 + result.covered.components.attoseconds / 1_000_000_000_000_000
            ),
        ])
    }

    func history(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        let name = try await knownQueue(context)
        let minutes = try QueryParameters(request: request).integer("minutes", in: 1...1440, default: 60)
        let history = try await jobs.history(queue: name, minutes: minutes)
        return APIResponses.json([
            "queue": name,
            "minutes": history.map {
                ["minute": APIResponses.milliseconds($0.minute), "counts": $0.counts] as [String: Any]
            },
        ])
    }

    // MARK: - Jobs

    func listJobs(_ request: Request) async throws -> Response {
        // Every parameter is checked before anything is read, whichever of them decides what is listed.
        let query = QueryParameters(request: request)
        let id = query.string("id")
        let referenceType = query.string("reference_type")
        let referenceID = query.string("reference_id")
        let status = try query.choice("status", Self.statuses)
        let queue = query.string("queue") ?? jobs.configuration.defaultQueue
        try JobQueue.validateQueue(queue)
        let offset = try query.integer("offset", in: 0...1_000_000_000, default: 0)
        let limit = try query.integer("limit", in: 1...1000, default: 50)
        let order =
            try query.choice("order", ["oldest": ListOrder.oldestFirst, "newest": .newestFirst]) ?? .oldestFirst
        if referenceType != nil && referenceID == nil { throw APIError.invalid("reference_type needs reference_id") }
        if referenceID != nil && referenceType == nil { throw APIError.invalid("reference_id needs reference_type") }
        if let referenceType, let referenceID {
            _ = try Self.reference(type: referenceType, id: referenceID, place: "query")
        }
        if let id {
            let job = try await jobs.get(id)
            return APIResponses.json(["jobs": job.map { [$0.jsonObject(full: true)] } ?? []])
        }
        if let referenceType, let referenceID {
            return APIResponses.json([
                "jobs": try await jobs.jobs(referenceType: referenceType, referenceID: referenceID).map {
                    $0.jsonObject(full: true)
                }
            ])
        }
        guard let status else {
            throw APIError.invalid(
                "give status (\(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))), "
                    + "reference_type and reference_id, or id"
            )
        }
        let found = try await jobs.list(
            queue: queue,
            status: status,
            type: query.string("type"),
            offset: offset,
            limit: limit,
            order: order
        )
        let total = try await jobs.counts(queue: queue)[status] ?? 0
        return APIResponses.json([
            "jobs": found.map { $0.jsonObject(full: true) }, "offset": offset, "limit": limit, "total": total,
        ])
    }

    func getJob(_ context: ServeRequestContext) async throws -> Response {
        let id = Self.jobID(context)
        guard let job = try await jobs.get(id) else {
            throw ConveyorError(.jobNotFound, "no job \(id)", jobID: id)
        }
        var object = job.jsonObject(full: true)
        object["progress"] = try await jobs.progress(of: id).map(Self.jsonValue) ?? NSNull()
        return APIResponses.json(object)
    }

    func jobEvents(_ context: ServeRequestContext) async throws -> Response {
        let id = Self.jobID(context)
        guard try await jobs.get(id) != nil else { throw ConveyorError(.jobNotFound, "no job \(id)", jobID: id) }
        let events = try await jobs.events(ofJob: id)
        return APIResponses.json(["events": events.map(Self.eventObject)])
    }

    func enqueue(_ request: Request) async throws -> Response {
        let body = try await body(of: request)
        let job = try Self.newJob(body)
        let enqueued = try await jobs.enqueue(job.type, json: job.payload, options: job.options)
        return APIResponses.json(Self.enqueuedObject(enqueued), status: enqueued.outcome == .created ? .created : .ok)
    }

    func enqueueBulk(_ request: Request) async throws -> Response {
        let body = try await body(of: request)
        try body.allow(["jobs"])
        guard let items = try body.array("jobs") else { throw APIError.invalid("body: 'jobs' is required") }
        guard (1...1000).contains(items.count) else {
            throw APIError.invalid("body: 'jobs' must hold 1 to 1000 jobs, got \(items.count)")
        }
        var newJobs: [NewJob] = []
        for (index, item) in items.enumerated() {
            newJobs.append(try Self.newJob(try JSONBody(value: item, place: "jobs[\(index)]")))
        }
        let enqueued = try await jobs.enqueueMany(newJobs)
        return APIResponses.json(["jobs": enqueued.map(Self.enqueuedObject)], status: .created)
    }

    func retry(_ context: ServeRequestContext) async throws -> Response {
        let id = Self.jobID(context)
        try await jobs.retry(id)
        return APIResponses.json(["id": id, "status": JobStatus.pending.rawValue])
    }

    func cancel(_ context: ServeRequestContext) async throws -> Response {
        let id = Self.jobID(context)
        let status = try await jobs.cancel(id)
        return APIResponses.json(["id": id, "status": status.rawValue, "cancel_requested": status == .processing])
    }

    func remove(_ request: Request, _ context: ServeRequestContext) async throws -> Response {
        let id = Self.jobID(context)
        try await jobs.remove(id, force: try QueryParameters(request: request).boolean("force"))
        return APIResponses.json(["id": id, "removed": true])
    }

    // MARK: - Schedules, workers, leader, stats

    func listSchedules() async throws -> Response {
        APIResponses.json(["schedules": try await jobs.schedules().map(Self.scheduleObject)])
    }

    func addSchedule(_ request: Request) async throws -> Response {
        let body = try await body(of: request)
        try body.allow([
            "name", "type", "payload", "queue", "every_ms", "cron", "time_zone", "priority", "max_retries",
            "timeout_ms",
        ])
        let rule: Schedule.Rule
        switch (try body.integer("every_ms", in: 1000...(3650 * 86_400_000)), try body.string("cron")) {
        case (let every?, nil):
            guard try body.string("time_zone") == nil else {
                throw APIError.invalid("body: 'time_zone' goes with 'cron'; an 'every_ms' interval has none")
            }
            rule = .every(.milliseconds(every))
        case (nil, let cron?):
            rule = .cron(
                try CronExpression(cron),
                timeZone: try Schedule.timeZone(try body.string("time_zone") ?? "UTC")
            )
        default: throw APIError.invalid("body: give 'every_ms' or 'cron' (one of them)")
        }
        let schedule = try Schedule(
            name: try body.requiredString("name"),
            type: try Self.jobType(body),
            payload: try body.json("payload") ?? "{}",
            queue: try body.string("queue") ?? jobs.configuration.defaultQueue,
            rule: rule,
            priority: try body.integer("priority", in: -100...100) ?? 0,
            maxRetries: try body.integer("max_retries", in: 0...10_000),
            timeout: try body.integer("timeout_ms", in: 1...(30 * 86_400_000)).map { .milliseconds($0) }
        )
        let (outcome, next) = try await jobs.upsert(schedule)
        return APIResponses.json(
            [
                "name": schedule.name, "queue": schedule.queue, "outcome": outcome.rawValue,
                "next_run_at": APIResponses.milliseconds(next),
            ],
            status: outcome == .created ? .created : .ok
        )
    }

    /// The stored schedule named in the path.
    func storedSchedule(_ context: ServeRequestContext) async throws -> StoredSchedule {
        let queue = context.pathParameter("queue")
        let name = context.pathParameter("name")
        guard
            let found = try await jobs.schedules().first(where: {
                $0.schedule.queue == queue && $0.schedule.name == name
            })
        else {
            throw APIError(.notFound, "scheduleNotFound", "no schedule '\(name)' in queue '\(queue)'")
        }
        return found
    }

    func changeSchedule(_ context: ServeRequestContext, _ action: ScheduleAction) async throws -> Response {
        let stored = try await storedSchedule(context)
        let schedule = stored.schedule
        switch action {
        case .pause: try await jobs.pauseSchedule(schedule.name, queue: schedule.queue)
        case .resume: try await jobs.resumeSchedule(schedule.name, queue: schedule.queue)
        case .remove: _ = try await jobs.removeSchedule(schedule.name, queue: schedule.queue)
        case .runNow:
            let enqueued = try await jobs.enqueue(
                schedule.type,
                json: schedule.payload,
                options: JobOptions(
                    queue: schedule.queue,
                    priority: schedule.priority,
                    maxRetries: schedule.maxRetries,
                    timeout: schedule.timeout
                )
            )
            return APIResponses.json(
                ["name": schedule.name, "queue": schedule.queue, "job": Self.enqueuedObject(enqueued)],
                status: .created
            )
        }
        return APIResponses.json(["name": schedule.name, "queue": schedule.queue, "action": action.rawValue])
    }

    enum ScheduleAction: String {
        case pause, resume, remove
        case runNow = "run"
    }

    func listWorkers() async throws -> Response {
        APIResponses.json(["workers": try await jobs.workers().map(Self.workerObject)])
    }

    func leader() async throws -> Response {
        guard let leader = try await jobs.leader() else { return APIResponses.json(["leader": NSNull()]) }
        return APIResponses.json(["leader": Self.leaderObject(leader)])
    }

    func stats() async throws -> Response {
        let names = try await jobs.queues()
        let jobs = self.jobs
        // Each queue's summary and last minute, read at once for every queue.
        let read = try await names.concurrentMap { name in
            async let summary = QueueSummary.read(name, from: jobs)
            async let throughput = jobs.throughput(queue: name)
            return (try await summary, try await throughput)
        }
        let queues: [[String: Any]] = read.map { summary, throughput in
            var object = summary.object
            object["last_minute"] = ["completed": throughput.completed, "failed": throughput.failed]
            return object
        }
        async let workers = jobs.workers()
        async let leader = jobs.leader()
        return APIResponses.json([
            "queues": queues, "workers": try await workers.map(Self.workerObject),
            "leader": try await leader.map(Self.leaderObject) ?? NSNull(),
        ])
    }
}
