import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Synchronization
import Testing

@testable import Conveyor

/// A small seeded generator, so a failing run can be repeated.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}

/// What the random clients did: every job id they created, and every one they removed.
final class Ledger: Sendable {
    let created = Mutex<[String]>([])
    let removed = Mutex<Set<String>>([])
}

@Suite("JobQueue invariants under concurrent random operations")
struct JobQueueInvariantTests {
    static let expectedRefusals: Set<ConveyorError.Code> = [.staleLease, .invalidState, .jobNotFound, .duplicate]

    @Test func everyJobSitsInExactlyTheIndexOfItsStatus() async throws {
        try await withRedisServer { server in
            let admin = JobQueue(redis: server.makeClient())
            try await admin.installLibrary()
            try await admin.setTypeIndex(true)
            for status in [JobStatus.completed, .failed, .cancelled] {
                try await admin.setRetention(status: status, maxAge: nil, maxCount: nil)
            }
            let ledger = Ledger()
            let seed = UInt64(Date().timeIntervalSince1970)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<8 {
                    group.addTask {
                        let redis = server.makeClient(maximumConnections: 2)
                        defer { redis.shutdown() }
                        var configuration = JobQueue.Configuration(workerID: "worker-\(client)")
                        configuration.backoff = Backoff(base: .milliseconds(2), cap: .milliseconds(20))
                        let jobs = JobQueue(redis: redis, configuration: configuration)
                        var random = SplitMix64(state: seed &+ UInt64(client))
                        var held: [ClaimedJob] = []
                        for _ in 0..<2_500 {
                            do {
                                try await Self.step(jobs, &random, &held, ledger)
                            } catch let error as ConveyorError where Self.expectedRefusals.contains(error.code) {
                                continue
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await Self.verify(
                admin,
                created: Set(ledger.created.withLock { $0 }),
                removed: ledger.removed.withLock { $0 },
                seed: seed
            )
        }
    }

    static func step(
        _ jobs: JobQueue,
        _ random: inout SplitMix64,
        _ held: inout [ClaimedJob],
        _ ledger: Ledger
    ) async throws {
        func someID(_ random: inout SplitMix64) -> String? {
            ledger.created.withLock { ids in ids.isEmpty ? nil : ids[Int.random(in: 0..<ids.count, using: &random)] }
        }
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<30:
            var options = JobOptions(maxRetries: Int.random(in: 0...2, using: &random))
            if Bool.random(using: &random) { options.delay = .milliseconds(Int.random(in: 0...20, using: &random)) }
            if Int.random(in: 0..<4, using: &random) == 0 { options.priority = Int.random(in: -3...3, using: &random) }
            if Int.random(in: 0..<5, using: &random) == 0 {
                options.uniqueKey = "u\(Int.random(in: 0..<20, using: &random))"
            }
            if Int.random(in: 0..<5, using: &random) == 0 {
                options.id = "fixed-\(Int.random(in: 0..<50, using: &random))"
            }
            let result = try await jobs.enqueue("t", json: "{}", options: options)
            if result.outcome == .created { ledger.created.withLock { $0.append(result.id) } }
        case 30..<50:
            let lease: Duration = Bool.random(using: &random) ? .milliseconds(15) : .seconds(30)
            held += try await jobs.claim(count: Int.random(in: 1...3, using: &random), lease: lease).jobs
        case 50..<56 where !held.isEmpty:
            let job = held.remove(at: Int.random(in: 0..<held.count, using: &random))
            try await jobs.complete(job.job.id, leaseToken: job.leaseToken, result: #"{"ok":true}"#)
        case 56..<62:
            // A worker's batched call, mixed with the one-job calls above and below: some outcomes (completions
            // and failures, stale ones among them), then a claim for the slots they free.
            var outcomes: [ReportedOutcome] = []
            for _ in 0..<min(held.count, Int.random(in: 0...4, using: &random)) {
                let job = held.remove(at: Int.random(in: 0..<held.count, using: &random))
                if Bool.random(using: &random) {
                    outcomes.append(.completed(id: job.job.id, token: job.leaseToken, result: #"{"batch":1}"#))
                } else {
                    outcomes.append(
                        .failed(
                            id: job.job.id,
                            token: job.leaseToken,
                            error: "batch",
                            retry: Bool.random(using: &random),
                            delay: nil,
                            backoff: Backoff(base: .milliseconds(2), cap: .milliseconds(20)),
                            maxRetries: nil
                        )
                    )
                }
            }
            let lease: Duration = Bool.random(using: &random) ? .milliseconds(15) : .seconds(30)
            let reply = try await jobs.report(
                queue: "default",
                outcomes: outcomes,
                claim: Int.random(in: 0...3, using: &random),
                lease: lease,
                worker: jobs.configuration.workerID
            )
            for status in reply.statuses {
                if case .failure(let error) = status, !expectedRefusals.contains(error.code) { throw error }
            }
            held += reply.claim.jobs
        case 62..<72 where !held.isEmpty:
            let job = held.remove(at: Int.random(in: 0..<held.count, using: &random))
            try await jobs.fail(job.job.id, leaseToken: job.leaseToken, error: "e", retry: Bool.random(using: &random))
        case 72..<78:
            if let id = someID(&random) { try await jobs.cancel(id) }
        case 78..<84:
            if let id = someID(&random) { try await jobs.retry(id) }
        case 84..<90:
            try await jobs.reclaimExpired(maxStalls: 2)
        case 90..<94:
            // Caller-given ids can be enqueued again after a removal; keep the bookkeeping simple by not removing them.
            if let id = someID(&random), !id.hasPrefix("default/fixed-") {
                try await jobs.remove(id, force: Bool.random(using: &random))
                ledger.removed.withLock { _ = $0.insert(id) }
            }
        default:
            if !held.isEmpty {
                let leases = held.map { (id: $0.job.id, token: $0.leaseToken) }
                _ = try await jobs.heartbeat(queue: "default", leases: leases, lease: .seconds(30))
            }
        }
    }

    static func verify(_ jobs: JobQueue, created: Set<String>, removed: Set<String>, seed: UInt64) async throws {
        let redis = jobs.redis
        var hashes: [String: JobStatus] = [:]
        var cursor = "0"
        repeat {
            let reply = try await redis.send("SCAN", cursor, "MATCH", "conveyor:{default}:job:*", "COUNT", 1000)
            let parts = reply.array ?? []
            cursor = parts.first?.string ?? "0"
            for key in parts.last?.array?.compactMap(\.string) ?? [] {
                let localID = String(key.dropFirst("conveyor:{default}:job:".count))
                let status = try await redis.send("HGET", key, "status").string ?? ""
                hashes[localID] = JobStatus(rawValue: status)
            }
        } while cursor != "0"

        var memberships: [String: [String]] = [:]
        let pending = try await redis.send("LRANGE", "conveyor:{default}:pending", 0, -1)
        for id in pending.array?.compactMap(\.string) ?? [] { memberships[id, default: []].append("pending") }
        for index in ["prioritized", "scheduled", "retry", "active", "completed", "failed", "cancelled"] {
            let members = try await redis.send("ZRANGE", "conveyor:{default}:\(index)", 0, -1)
            for id in members.array?.compactMap(\.string) ?? [] { memberships[id, default: []].append(index) }
        }
        let expectedIndex: [JobStatus: Set<String>] = [
            .pending: ["pending", "prioritized"], .scheduled: ["scheduled"], .retrying: ["retry"],
            .processing: ["active"], .completed: ["completed"], .failed: ["failed"], .cancelled: ["cancelled"],
        ]
        var problems: [String] = []
        for (id, status) in hashes {
            let indexes = memberships[id] ?? []
            if indexes.count != 1 || !(expectedIndex[status]?.contains(indexes[0]) ?? false) {
                problems.append("\(id) is \(status.rawValue) but indexed in \(indexes)")
            }
        }
        for (id, indexes) in memberships where hashes[id] == nil {
            problems.append("\(id) is in \(indexes) but has no hash")
        }
        #expect(problems.isEmpty, "seed \(seed): \(problems.prefix(10))")

        // The per-type pending index (its sorted set and its list together) holds exactly the pending jobs, once.
        let typed = try await redis.send("ZRANGE", jobs.keys.pending("default", type: "t"), 0, -1)
        let listed = try await redis.send("LRANGE", jobs.keys.pendingList("default", type: "t"), 0, -1)
        let indexed = (typed.array ?? []).compactMap(\.string) + (listed.array ?? []).compactMap(\.string)
        let pendingIDs = Set(hashes.filter { $0.value == .pending }.keys)
        #expect(Set(indexed) == pendingIDs && indexed.count == pendingIDs.count, "seed \(seed): type index drifted")

        let counts = try await jobs.counts()
        for status in JobStatus.allCases {
            #expect(counts[status] == hashes.values.filter { $0 == status }.count, "seed \(seed): count of \(status)")
        }
        let existing = Set(hashes.keys.map { "default/\($0)" })
        let expected = created.subtracting(removed)
        #expect(
            existing.subtracting(expected).isEmpty,
            "seed \(seed): invented \(existing.subtracting(expected).prefix(5))"
        )
        #expect(
            expected.subtracting(existing).isEmpty,
            "seed \(seed): lost \(expected.subtracting(existing).prefix(5))"
        )
        #expect(created.count > 3_000, "only \(created.count) jobs were created")
        let stats = try await jobs.stats()
        for counter in ["started", "completed", "failed", "retried", "cancelled", "stalled", "removed", "requeued"] {
            #expect(stats[counter, default: 0] > 0, "seed \(seed): no \(counter) transition happened: \(stats)")
        }

        let uniqueKeys = try await redis.send("KEYS", "conveyor:{default}:unique:*")
        for key in uniqueKeys.array?.compactMap(\.string) ?? [] {
            let holder = try await redis.send("GET", key).string ?? ""
            let job = try await jobs.get(holder)
            #expect(
                job.map { !$0.status.isFinished } == true,
                "seed \(seed): \(key) held by \(holder), \(String(describing: job?.status))"
            )
        }
    }
}
