import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

/// Issue 11: the job's path through Redis (batched report and claim, wake-ups, due times, retention off the
/// completion path, event recording), each shown against a real redis-server.
@Suite("The hot path: batched calls, wake-ups, due times, retention, events")
struct HotPathTests {
    /// Calls made inside functions, by command, from INFO commandstats.
    static func commandCalls(_ jobs: JobQueue) async throws -> [String: Int] {
        let text = try await jobs.redis.send("INFO", "commandstats").string ?? ""
        var calls: [String: Int] = [:]
        for line in text.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
            let name = line.dropFirst("cmdstat_".count).prefix { $0 != ":" }
            if let match = line.firstMatch(of: #/calls=(\d+)/#) { calls[String(name)] = Int(match.output.1) }
        }
        return calls
    }

    @Test func oneReportRecordsEachOutcomeOnItsOwnAndClaimsForTheFreedSlots() async throws {
        try await withJobQueue { jobs, _ in
            let ids = try await jobs.enqueueMany((0..<6).map { NewJob("t", json: #"{"n":\#($0)}"#) }).map(\.id)
            let claimed = try await jobs.claim(count: 3, lease: .seconds(30)).jobs
            #expect(claimed.map(\.job.id) == Array(ids.prefix(3)))
            let backoff = Backoff(base: .seconds(60), cap: .seconds(60), jitter: false)
            let reply = try await jobs.report(
                queue: "default",
                outcomes: [
                    .completed(id: claimed[0].job.id, token: claimed[0].leaseToken, result: #"{"ok":1}"#),
                    .failed(
                        id: claimed[1].job.id,
                        token: claimed[1].leaseToken,
                        error: "boom",
                        retry: true,
                        delay: nil,
                        backoff: backoff,
                        maxRetries: nil
                    ),
                    .completed(id: claimed[2].job.id, token: "999999", result: nil),
                    .completed(id: claimed[2].job.id, token: claimed[2].leaseToken, result: "not json"),
                    .completed(id: "default/missing", token: "1", result: nil),
                ],
                claim: 2,
                lease: .seconds(30),
                worker: "w"
            )
            let statuses = reply.statuses.map { result -> String in
                switch result {
                case .success(let status): status.rawValue
                case .failure(let error): "\(error.code)"
                }
            }
            #expect(statuses == ["completed", "retrying", "staleLease", "invalidArgument", "jobNotFound"])
            #expect(reply.claim.jobs.map(\.job.id) == Array(ids[3..<5]))
            #expect(try await jobs.get(ids[0])?.result == #"{"ok":1}"#)
            let retrying = try #require(try await jobs.get(ids[1]))
            #expect(retrying.status == .retrying && retrying.retryCount == 1 && retrying.error == "boom")
            // The refused outcomes changed nothing: that job still runs under its lease.
            #expect(try await jobs.get(ids[2])?.status == .processing)
            let counts = try await jobs.counts().filter { $0.value > 0 }
            #expect(counts == [.pending: 1, .processing: 3, .retrying: 1, .completed: 1], "\(counts)")
            // Repeating the call with the same tokens answers the same and changes nothing.
            let again = try await jobs.report(
                queue: "default",
                outcomes: [.completed(id: claimed[0].job.id, token: claimed[0].leaseToken, result: #"{"ok":1}"#)],
                claim: 0,
                lease: .seconds(30),
                worker: "w"
            )
            #expect(try again.statuses.first?.get() == .completed)
            #expect(try await jobs.stats()["completed"] == 1)
        }
    }

    @Test func badReportsAreRefusedWholeAndNameTheOutcome() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let token = try await jobs.take(id).leaseToken
            let local = try jobs.split(id).localID
            let prefix = jobs.keys.prefix("default")
            let cases: [([String], String)] = [
                (["w", "30000", "0", "1", "done", local, token, ""], #"outcome 1 is "done""#),
                (["w", "30000", "0", "1", "completed", local, token], "takes a job id, a lease token and a result"),
                (["w", "30000", "0", "2", "completed", local, token, ""], "outcome 2"),
                (["w", "30000", "0", "0", "completed"], "more arguments than the 0 outcomes"),
                (["w", "30000", "1001", "0"], "claim count must be between 0 and 1000"),
                (
                    ["w", "30000", "0", "1", "failed", local, token, "e", "1", "", "1", "1", "2", ""],
                    "outcome 1: jitter must be a number from 0 to 1"
                ),
            ]
            for (arguments, expected) in cases {
                let reply = try await jobs.redis.send(
                    RedisCommand("FCALL", ["conveyor_report", "1", prefix] + arguments)
                )
                #expect(reply.errorMessage?.hasPrefix("INVALID") == true, "\(arguments): \(reply)")
                #expect(reply.errorMessage?.contains(expected) == true, "\(arguments): \(reply)")
            }
            #expect(try await jobs.get(id)?.status == .processing)
        }
    }

    @Test func wakeTokensComeWithNewWorkAndGoWhenTheQueueRunsDry() async throws {
        try await withJobQueue { jobs, _ in
            let wake = jobs.keys.wake("default")
            _ = try await jobs.enqueue("t", json: "{}")
            #expect(try await jobs.redis.send("LLEN", wake) == .integer(1))
            _ = try await jobs.enqueueMany((0..<100).map { _ in NewJob("t", json: "{}") })
            #expect(try await jobs.redis.send("LLEN", wake) == .integer(64), "at most 64 tokens are kept")
            // A scheduled job wakes idle workers once (to learn the earlier due time), not per job.
            _ = try await jobs.claim(count: 1000)
            #expect(
                try await jobs.redis.send("EXISTS", wake) == .integer(0),
                "a claim that empties the queue clears it"
            )
            _ = try await jobs.enqueue("t", json: "{}", options: JobOptions(delay: .seconds(60)))
            #expect(try await jobs.redis.send("LLEN", wake) == .integer(1))
            _ = try await jobs.enqueue("t", json: "{}", options: JobOptions(delay: .seconds(120)))
            #expect(try await jobs.redis.send("LLEN", wake) == .integer(1), "a later due time wakes nobody")
            try await jobs.pause()
            _ = try await jobs.enqueue("t", json: "{}")
            _ = try await jobs.claim()
            #expect(try await jobs.redis.send("EXISTS", wake) == .integer(0), "a paused queue's claim clears them")
            try await jobs.resume()
            #expect(try await jobs.redis.send("LLEN", wake) == .integer(1), "a resume wakes one worker per job")
        }
    }

    @Test func claimsPromoteOnlyOnceSomethingIsDue() async throws {
        try await withJobQueue { jobs, _ in
            let meta = jobs.keys.meta("default")
            // Far enough ahead that 20 claims on a loaded machine (up to 400 ms each seen) end before it falls due.
            let due = try await jobs.enqueue("t", json: "{}", options: JobOptions(delay: .seconds(15))).id
            let runAt = try #require(try await jobs.get(due)?.runAt)
            #expect(try await jobs.redis.send("HGET", meta, "next_due").int == JobQueue.milliseconds(runAt))
            let before = try await Self.commandCalls(jobs)
            for _ in 0..<20 { #expect(try await jobs.claim().jobs.isEmpty) }
            let after = try await Self.commandCalls(jobs)
            // Each claim looks at the prioritized set once (ZRANGEBYSCORE); promoting would read the scheduled and
            // retry sets too.
            #expect((after["zrangebyscore"] ?? 0) - (before["zrangebyscore"] ?? 0) == 20, "nothing due: no promotion")
            try await eventually(timeout: .seconds(60), "the job to fall due and be claimed") {
                try await jobs.claim().jobs.first?.job.id == due
            }
            #expect(try await jobs.redis.send("HGET", meta, "next_due").string == "none")
            // With nothing scheduled, a claim reads neither the scheduled nor the retry set (nor recomputes).
            let idle = try await Self.commandCalls(jobs)
            for _ in 0..<10 { _ = try await jobs.claim() }
            let later = try await Self.commandCalls(jobs)
            #expect((later["zrange"] ?? 0) - (idle["zrange"] ?? 0) == 10, "one ZRANGE per claim (the prioritized set)")
            #expect((later["hset"] ?? 0) == (idle["hset"] ?? 0), "no next_due rewrite")
        }
    }

    @Test func aCompletionDoesNoRetentionWorkHoweverManyJobsAreKept() async throws {
        try await withJobQueue { jobs, _ in
            try await jobs.setRetention(status: .completed, maxAge: .seconds(3600), maxCount: 10)
            let ids = try await jobs.enqueueMany((0..<60).map { _ in NewJob("t", json: "{}") }).map(\.id)
            let claimed = try await jobs.claim(count: 60).jobs
            for job in claimed.prefix(50) { try await jobs.complete(job.job.id, leaseToken: job.leaseToken) }
            let before = try await Self.commandCalls(jobs)
            for job in claimed.suffix(10) { try await jobs.complete(job.job.id, leaseToken: job.leaseToken) }
            let after = try await Self.commandCalls(jobs)
            for command in ["zcard", "zrangebyscore", "del", "hgetall"] {
                #expect((after[command] ?? 0) == (before[command] ?? 0), "a completion ran \(command)")
            }
            // Retention applies in the reclaim call every worker makes (and applyRetention).
            #expect(try await jobs.counts()[.completed] == 60)
            #expect(try await jobs.reclaimExpired() == 0)
            #expect(try await jobs.counts()[.completed] == 10)
            #expect(try await jobs.get(ids[0]) == nil)
            #expect(try await jobs.get(ids[59])?.status == .completed)
        }
    }

    @Test func aQueueRecordsAllTransitionsOnlyFinishedOnesOrNone() async throws {
        try await withJobQueue { jobs, _ in
            #expect(try await jobs.eventRecording() == .all)
            func entries(_ queue: String) async throws -> [[String: String]] {
                let reply = try await jobs.redis.send("XRANGE", jobs.keys.events(queue), "-", "+")
                return (reply.array ?? []).map { JobQueue.fields($0.array?.last?.array ?? []) }
            }
            for (queue, recording) in [("a", EventRecording.all), ("f", .finished), ("n", .none)] {
                try await jobs.setEventRecording(recording, queue: queue)
                #expect(try await jobs.eventRecording(queue: queue) == recording)
                let ids = try await jobs.enqueueMany(
                    (0..<3).map { _ in NewJob("t", json: "{}", options: JobOptions(queue: queue)) }
                )
                .map(\.id)
                let claimed = try await jobs.claim(queue: queue, count: 3).jobs
                _ = try await jobs.report(
                    queue: queue,
                    outcomes: claimed.map { .completed(id: $0.job.id, token: $0.leaseToken, result: nil) },
                    claim: 0,
                    lease: .seconds(30),
                    worker: "w"
                )
                let recorded = try await entries(queue)
                switch recording {
                case .all:
                    // One entry per batch: created, started, completed, each naming the three jobs in order.
                    #expect(recorded.map { $0["to"] } == ["pending", "processing", "completed"])
                    #expect(recorded.allSatisfy { JobQueue.eventJobs($0).map(\.id) == ids })
                case .finished:
                    #expect(recorded.map { $0["to"] } == ["completed"])
                case .none:
                    #expect(recorded.isEmpty)
                }
                // Waiting for a result works whatever the queue records.
                #expect(try await jobs.result(of: ids[0], timeout: .seconds(10)).status == .completed)
            }
        }
    }

    /// The upgrade from the previous library version (e0170dacdff2db64): its jobs (every field written, the
    /// per-type index a sorted set) are claimed and finished by this version, and the calls a client of the
    /// previous version makes (conveyor_claim, conveyor_complete, conveyor_fail with the same arguments) keep
    /// working next to this version's batched calls, with every job in exactly one index.
    @Test func jobsAndCallsOfThePreviousVersionWorkAfterTheUpgrade() async throws {
        try await withJobQueue { jobs, _ in
            let redis = jobs.redis
            let prefix = jobs.keys.prefix("default")
            // Jobs as the previous version's conveyor_enqueue wrote them.
            for index in 0..<4 {
                let local = "old-\(index)"
                _ = try await redis.send(
                    RedisCommand(
                        "HSET",
                        [
                            "\(prefix):job:\(local)", "id", "default/\(local)", "queue", "default", "type", "t",
                            "status",
                            "pending", "payload", "{}", "retry_count", "0", "max_retries", "3", "priority", "0",
                            "attempts", "0", "stalls", "0", "timeout_ms", "0", "run_at", "1700000000000", "created_at",
                            "1700000000000", "updated_at", "1700000000000",
                        ]
                    )
                )
                _ = try await redis.send("RPUSH", "\(prefix):pending", local)
                _ = try await redis.send("ZADD", "\(prefix):pending:type:t", 1_759_218_604_441_600 + index, local)
            }
            // conveyor install keeps the type index on for a queue that has one (the previous version kept one).
            _ = try await redis.send("HSET", jobs.keys.meta("default"), "type_index", "1")
            let new = try await jobs.enqueueMany((0..<4).map { _ in NewJob("t", json: "{}") }).map(\.id)
            #expect(try await jobs.pending(type: "t").map(\.id) == (0..<4).map { "default/old-\($0)" } + new)
            // A client of the previous version claims as it did; the reply has every field it reads.
            let claim = try await redis.send("FCALL", "conveyor_claim", 1, prefix, "old-worker", 30_000, 2)
            let oldJobs = try (claim.array?.first?.array ?? []).map { try Job(flat: $0.array ?? [], storedAs: nil) }
            #expect(oldJobs.map(\.id) == ["default/old-0", "default/old-1"])
            #expect(oldJobs.allSatisfy { $0.queue == "default" && $0.leaseToken != nil && $0.status == .processing })
            // This version's batched call, next to it.
            let batch = try await jobs.report(
                queue: "default",
                outcomes: [],
                claim: 3,
                lease: .seconds(30),
                worker: "w"
            )
            #expect(batch.claim.jobs.map(\.job.id) == ["default/old-2", "default/old-3", new[0]])
            let complete = try await redis.send(
                "FCALL",
                "conveyor_complete",
                1,
                prefix,
                "old-0",
                oldJobs[0].leaseToken ?? "",
                ""
            )
            #expect(complete.string == "completed")
            let fail = try await redis.send(
                "FCALL",
                "conveyor_fail",
                1,
                prefix,
                "old-1",
                oldJobs[1].leaseToken ?? "",
                "e",
                "retry",
                "0"
            )
            #expect(fail.string == "failed")
            _ = try await jobs.report(
                queue: "default",
                outcomes: batch.claim.jobs.map { .completed(id: $0.job.id, token: $0.leaseToken, result: nil) },
                claim: 10,
                lease: .seconds(30),
                worker: "w"
            )
            let counts = try await jobs.counts().filter { $0.value > 0 }
            #expect(counts == [.completed: 4, .failed: 1, .processing: 3], "\(counts)")
            // The previous version's sorted-set entries are gone with their jobs; nothing is indexed twice.
            #expect(try await redis.send("ZCARD", "\(prefix):pending:type:t") == .integer(0))
            #expect(try await redis.send("LLEN", jobs.keys.pendingList("default", type: "t")) == .integer(0))
            #expect(try await jobs.pending(type: "t").isEmpty)
        }
    }

    /// The library's name carries its protocol (conveyor_2; the previous one was conveyor, with the same function
    /// names), so an older client that loads its own library over this one is refused by Redis, and a mixed fleet
    /// cannot swap the libraries back and forth; conveyor install replaces the previous one.
    @Test func anOlderClientCannotLoadItsLibraryOverThisOne() async throws {
        try await withJobQueue { jobs, _ in
            let previous =
                "#!lua name=conveyor\nredis.register_function('conveyor_version', function() return 'e0170dacdff2db64' end)"
            let refused = try await jobs.redis.send("FUNCTION", "LOAD", "REPLACE", previous)
            #expect(refused.errorMessage?.contains("already exists") == true, "\(refused)")
            #expect(try await jobs.installedLibraryVersion() == JobQueue.libraryVersion)
            // Over the previous library, conveyor install deletes it and loads this one.
            _ = try await jobs.redis.send("FUNCTION", "DELETE", "conveyor_2")
            #expect(try await jobs.redis.send("FUNCTION", "LOAD", previous).string == "conveyor")
            #expect(
                try await jobs.installLibrary()
                    == .replaced(previous: "e0170dacdff2db64", version: JobQueue.libraryVersion)
            )
            let names = try await jobs.redis.send("FUNCTION", "LIST").array?.compactMap { entry in
                entry.array.flatMap { fields in
                    fields.firstIndex { $0.string == "library_name" }.map { fields[$0 + 1].string }
                } ?? nil
            }
            #expect(names == ["conveyor_2"])
        }
    }
}

@Suite("The pending index by type, per queue")
struct TypeIndexTests {
    @Test func pendingByTypeReadsTheSameWithTheIndexOnOrOff() async throws {
        try await withJobQueue { jobs, _ in
            #expect(try await jobs.indexesTypes() == false)
            var expected: [String] = []
            for index in 0..<12 {
                let priority = [0, 5, -5][index % 3]
                let type = index % 2 == 0 ? "a" : "b"
                let id = try await jobs.enqueue(type, json: "{}", options: JobOptions(priority: priority)).id
                if type == "a" { expected.append(id) }
            }
            let scanned = try await jobs.pending(type: "a", queue: "default").map(\.id)
            #expect(Set(scanned) == Set(expected))
            let list = jobs.keys.pendingList("default", type: "a")
            #expect(try await jobs.redis.send("EXISTS", list) == .integer(0), "off: no index is written")
            #expect(try await jobs.setTypeIndex(true) == 12)
            #expect(try await jobs.pending(type: "a", queue: "default").map(\.id) == scanned)
            _ = try await jobs.enqueue("a", json: "{}")
            let claimed = try await jobs.claim(count: 5).jobs
            let left = try await jobs.pending(type: "a", queue: "default").map(\.id)
            #expect(
                Set(left).isDisjoint(with: claimed.map(\.job.id))
                    && left.count == 7 - claimed.filter { $0.job.type == "a" }.count
            )
            #expect(try await jobs.setTypeIndex(false) == 0)
            #expect(try await jobs.redis.send("EXISTS", list) == .integer(0), "off: the index is deleted")
            #expect(try await jobs.pending(type: "a", queue: "default").map(\.id) == left)
            let refused = try await jobs.redis.send(
                "FCALL",
                "conveyor_set_type_index",
                1,
                jobs.keys.prefix("default"),
                "maybe"
            )
            #expect(refused.errorMessage?.contains(#"must be "on" or "off", got "maybe""#) == true)
        }
    }
}

@Suite("conveyor configure")
struct ConfigureCommandTests {
    @Test func showsAndChangesWhatAQueueRecordsAndIndexes() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)"]
            _ = try await jobs.enqueue("t", json: "{}", options: JobOptions(queue: "emails"))
            let shown = try await ConveyorExecutable.run(["configure", "emails"] + redis)
            #expect(shown.status == 0 && shown.standardOutput == "emails: events all, type index off\n")
            let changed = try await ConveyorExecutable.run(
                ["configure", "emails", "--events", "finished", "--type-index", "on", "--json"] + redis
            )
            #expect(changed.status == 0, "\(changed.standardError)")
            #expect(changed.standardOutput.contains(#""events":"finished""#))
            #expect(try await jobs.eventRecording(queue: "emails") == .finished)
            #expect(try await jobs.indexesTypes(queue: "emails"))
            let bad = try await ConveyorExecutable.run(["configure", "emails", "--events", "some"] + redis)
            #expect(bad.status == 64 && bad.standardError.contains("--events must be all, finished or none"))
            let unknown = try await ConveyorExecutable.run(["configure", "nosuch", "--events", "none"] + redis)
            #expect(unknown.status != 0)
            #expect(
                try await jobs.eventRecording(queue: "nosuch") == .all,
                "an unknown queue is not configured into being"
            )
        }
    }
}

@Suite("The worker's dispatcher against a real redis-server", .timeLimit(.minutes(2)))
struct DispatcherTests {
    /// A retry delay or limit out of Redis's ranges would make Redis refuse the whole batch of outcomes (and the
    /// claim in it) again and again: the worker brings them into range, and a refused outcome is dropped alone.
    @Test func anOutOfRangeRetryDelayDoesNotStopTheBatch() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            let policy = HandlerOptions(maxRetries: 50_000, retry: .custom { _, _ in .seconds(-5) })
            handlers.register("bad", options: policy) { (_: [String: Int], _: JobContext) in
                throw JobFailure("always")
            }
            handlers.register("ok") { (_: [String: Int], _: JobContext) in }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration(concurrency: 4))
            try await withWorker(worker) {
                let bad = try await jobs.enqueue("bad", json: "{}", options: JobOptions(maxRetries: 2)).id
                let ok = try await jobs.enqueueMany((0..<20).map { _ in NewJob("ok", json: "{}") }).map(\.id)
                for id in ok { #expect(try await jobs.result(of: id, timeout: .seconds(20)).status == .completed) }
                // A negative delay became 0 and 50 000 retries the highest limit Redis takes: it keeps retrying.
                try await eventually(timeout: .seconds(20), "the bad job to be retried") {
                    try await jobs.get(bad)?.retryCount ?? 0 >= 3
                }
            }
        }
    }

    /// Cancelling the worker's task (a service group that cancels its services) stops it, without a grace period,
    /// instead of leaving it hanging or spinning.
    @Test func cancellingTheWorkersTaskStopsIt() async throws {
        try await withJobQueue { jobs, _ in
            var handlers = JobHandlers()
            handlers.register("t") { (_: [String: Int], _: JobContext) in try await Task.sleep(for: .seconds(60)) }
            let worker = Worker(queue: jobs, handlers: handlers, configuration: testWorkerConfiguration(concurrency: 3))
            let run = Task { try await worker.run() }
            let id = try await jobs.enqueue("t", json: "{}").id
            try await eventually("the job to start") { try await jobs.get(id)?.status == .processing }
            let clock = ContinuousClock()
            let started = clock.now
            run.cancel()
            _ = await run.result
            #expect(clock.now - started < .seconds(10), "the worker took \(clock.now - started) to stop")
        }
    }

    /// Lua's unpack takes about 8 000 values at most: retention and promotion work in chunks.
    @Test func trimmingAndPromotingNineThousandJobsInOneCallWorks() async throws {
        try await withJobQueue { jobs, _ in
            try await jobs.setRetention(status: .completed, maxAge: nil, maxCount: 0)
            for _ in 0..<9 {
                _ = try await jobs.enqueueMany((0..<1000).map { _ in NewJob("t", json: "{}") })
                let claimed = try await jobs.claim(count: 1000).jobs
                _ = try await jobs.report(
                    queue: "default",
                    outcomes: claimed.map { .completed(id: $0.job.id, token: $0.leaseToken, result: nil) },
                    claim: 0,
                    lease: .seconds(30),
                    worker: "w"
                )
            }
            let prefix = jobs.keys.prefix("default")
            let trimmed = try await jobs.redis.send("FCALL", "conveyor_trim", 1, prefix, 10_000)
            #expect(trimmed == .integer(9000), "\(trimmed)")
            let soon = Date().addingTimeInterval(1)
            for _ in 0..<9 {
                _ = try await jobs.enqueueMany(
                    (0..<1000).map { _ in NewJob("t", json: "{}", options: JobOptions(runAt: soon)) }
                )
            }
            try await Task.sleep(for: .milliseconds(1500))
            let claim = try await jobs.redis.send("FCALL", "conveyor_claim", 1, prefix, "w", 30_000, 1, 10_000)
            #expect(claim.errorMessage == nil, "\(claim)")
            #expect(try await jobs.counts()[.pending] == 8999)
        }
    }
}

@Suite("Firing many schedules in one call")
struct ScheduleFireManyTests {
    @Test func oneBadScheduleIsRefusedAloneAndTheOthersFire() async throws {
        try await withJobQueue { jobs, _ in
            let start = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 - 60).rounded(.down))
            for name in ["a", "b"] {
                try await jobs.upsert(try Schedule(name: name, type: "t", rule: .every(.seconds(3600)), start: start))
            }
            let due = JobQueue.milliseconds(start)
            let prefix = jobs.keys.prefix("default")
            // Both fall due now (as a leader reads them, by the CAS field).
            for name in ["a", "b"] {
                _ = try await jobs.redis.send("HSET", jobs.keys.schedule("default", name), "next_run_at", due)
            }
            func schedule(_ name: String, option: String) -> [String] {
                [name, String(due), String(due + 3_600_000), "t", "{}", "1", option, "1", String(due)]
            }
            let arguments =
                ["conveyor_schedule_fire_many", "1", prefix, "3"]
                + ["9"] + schedule("a", option: "priority")
                + ["9"] + schedule("b", option: "colour")
                + ["9"] + schedule("a", option: "priority")
            let reply = try await jobs.redis.send(RedisCommand("FCALL", arguments))
            let parts = try #require(reply.array, "\(reply)")
            #expect(parts.count == 3)
            #expect(parts[0].array?.first?.string == "fired")
            #expect(parts[1].string?.hasPrefix(#"INVALID unknown job option "colour""#) == true, "\(parts[1])")
            #expect(parts[2].array?.map(\.string) == ["stale"], "the first fire moved a on: a repeat is stale")
            #expect(try await jobs.get("default/a@\(due)") != nil)
            #expect(try await jobs.get("default/b@\(due)") == nil)
            let bad = try await jobs.redis.send("FCALL", "conveyor_schedule_fire_many", 1, prefix, 1, 20, "x")
            #expect(bad.errorMessage?.contains("schedule 1 announces 20 arguments") == true, "\(bad)")
        }
    }
}
