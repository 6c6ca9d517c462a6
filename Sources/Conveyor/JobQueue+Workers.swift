public import Foundation
import RedisClient

/// A worker process, as it registered itself in Redis.
public struct WorkerInfo: Sendable, Hashable, Codable {
    /// The worker's id (`host:pid:random`).
    public var id: String
    /// The host it runs on.
    public var host: String
    /// Its process id.
    public var pid: Int
    /// The queues it serves, in priority order.
    public var queues: [String]
    /// How many jobs it runs at once.
    public var concurrency: Int
    /// The full ids of the jobs it runs now.
    public var inFlight: [String]
    /// When it started.
    public var startedAt: Date
    /// When it last heartbeated.
    public var lastHeartbeat: Date
}

extension JobQueue {
    /// The worker processes alive now: a worker refreshes its record every 2 s (or its heartbeat interval, if
    /// shorter) and it expires after three of those, so a killed worker is gone within about 6 s; ids whose record
    /// expired are removed from `<namespace>:workers` here.
    ///
    /// - Returns: The workers, by id.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func workers() async throws -> [WorkerInfo] {
        let ids = try await command(RedisCommand("SMEMBERS", keys.workers)).array?.compactMap(\.string) ?? []
        guard !ids.isEmpty else { return [] }
        let records = try await pipeline(ids.map { RedisCommand("GET", keys.worker($0)) })
        var workers: [WorkerInfo] = []
        var gone: [String] = []
        let decoder = Self.workerDecoder
        for (id, record) in zip(ids, records) {
            guard let bytes = record.bytes, let info = try? decoder.decode(WorkerInfo.self, from: Data(bytes)) else {
                gone.append(id)
                continue
            }
            workers.append(info)
        }
        if !gone.isEmpty { _ = try await command(RedisCommand("SREM", [keys.workers] + gone)) }
        return workers.sorted { $0.id < $1.id }
    }

    /// The worker record's JSON, as the job hashes write things: snake_case names, times in whole epoch ms.
    static let workerEncoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(JobQueue.milliseconds(date))
        }
        return encoder
    }()

    static let workerDecoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }()

    func register(worker info: WorkerInfo, ttl: Duration) async throws {
        let encoder = Self.workerEncoder
        let json = String(decoding: try encoder.encode(info), as: UTF8.self)
        _ = try await pipeline([
            RedisCommand("SET", keys.worker(info.id), json, "PX", Self.milliseconds(ttl)),
            RedisCommand("SADD", keys.workers, info.id),
        ])
    }

    func deregister(worker id: String) async throws {
        _ = try await pipeline([RedisCommand("DEL", keys.worker(id)), RedisCommand("SREM", keys.workers, id)])
    }

    /// Gives a processing job back to the front of pending at once (a worker shutting down); the caller must hold
    /// its lease. The job is not counted as failed or stalled.
    ///
    /// - Parameters:
    ///   - id: The full job id.
    ///   - leaseToken: The token from the claim.
    /// - Returns: ``JobStatus/pending``, or ``JobStatus/cancelled`` when a cancel was requested.
    /// - Throws: ``ConveyorError`` as for ``complete(_:leaseToken:result:)``.
    @discardableResult
    public func release(_ id: String, leaseToken: String) async throws -> JobStatus {
        try await release(id, leaseToken: leaseToken, unstarted: false)
    }

    /// ``release(_:leaseToken:)``; `unstarted` when the handler never ran, so the attempt is not counted.
    @discardableResult
    func release(_ id: String, leaseToken: String, unstarted: Bool) async throws -> JobStatus {
        let (queue, localID) = try split(id)
        let arguments: [any RedisArgumentConvertible] =
            unstarted ? [localID, leaseToken, "unstarted"] : [localID, leaseToken]
        let reply = try await invoke("conveyor_release", queue: queue, arguments, jobID: id)
        return reply.string == "cancelled" ? .cancelled : .pending
    }

    /// Records a running job's progress (JSON) in its hash (`progress`) and event stream.
    ///
    /// - Parameters:
    ///   - id: The full job id.
    ///   - leaseToken: The token from the claim.
    ///   - json: The progress as JSON text.
    /// - Throws: ``ConveyorError`` as for ``complete(_:leaseToken:result:)``.
    public func reportProgress(_ id: String, leaseToken: String, json: String) async throws {
        let (queue, localID) = try split(id)
        _ = try await invoke("conveyor_progress", queue: queue, [localID, leaseToken, json], jobID: id)
    }

    /// The progress a job last reported, as JSON text.
    ///
    /// - Parameter id: The full job id.
    /// - Returns: The progress, or `nil`.
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func progress(of id: String) async throws -> String? {
        let (queue, localID) = try split(id)
        return try await command(RedisCommand("HGET", keys.job(queue, localID), "progress")).string
    }
}
