import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

@Suite("JobQueue transitions against a real redis-server")
struct JobQueueTests {
    @Test func enqueueStoresAReadableHashAndIndexesIt() async throws {
        try await withJobQueue { jobs, _ in
            let enqueued = try await jobs.enqueue(
                "send_email",
                payload: Email(to: "a@example.com"),
                options: JobOptions(queue: "emails", reference: JobReference(type: "user", id: "7"))
            )
            #expect(enqueued.outcome == .created && enqueued.status == .pending)
            #expect(enqueued.id.hasPrefix("emails/"))
            let raw = try await rawJob(jobs, enqueued.id)
            // Only what differs from the defaults is written (memory per job): the key says the id and queue.
            #expect(Set(raw.keys) == ["type", "status", "payload", "created_at", "reference_type", "reference_id"])
            #expect(raw["status"] == "pending" && raw["payload"] == #"{"to":"a@example.com"}"#)
            let job = try #require(try await jobs.get(enqueued.id))
            #expect(job.id == enqueued.id && job.queue == "emails" && job.maxRetries == 3 && job.priority == 0)
            #expect(job.retryCount == 0 && job.attempts == 0 && job.runAt == job.createdAt)
            #expect(try job.decodePayload(as: Email.self) == Email(to: "a@example.com"))
            #expect(job.reference == JobReference(type: "user", id: "7"))
            #expect(try await jobs.counts(queue: "emails")[.pending] == 1)
            #expect(try await jobs.queues() == ["emails"])
            #expect(try await jobs.stats(queue: "emails")["enqueued"] == 1)
            let pending = try await jobs.redis.send("LRANGE", "conveyor:{emails}:pending", 0, -1)
            #expect(pending.array?.compactMap(\.string) == [String(enqueued.id.dropFirst("emails/".count))])
        }
    }

    @Test func generatedIDsAreTimeOrderedUUIDv7() async throws {
        let first = JobQueue.makeID()
        try await Task.sleep(for: .milliseconds(2))
        let second = JobQueue.makeID()
        #expect(first < second)
        #expect(first.count == 36 && Array(first)[14] == "7")
    }

    @Test func sameCallerIDTwiceMakesOneJob() async throws {
        try await withJobQueue { jobs, _ in
            let first = try await jobs.enqueue("t", json: "{}", options: JobOptions(id: "order-42"))
            let second = try await jobs.enqueue("t", json: #"{"other":1}"#, options: JobOptions(id: "order-42"))
            #expect(first.outcome == .created && second.outcome == .existing)
            #expect(first.id == "default/order-42" && second.id == first.id)
            #expect(try await jobs.get(first.id)?.payload == "{}")
            #expect(try await jobs.counts()[.pending] == 1)
        }
    }

    @Test func delayedJobIsScheduledThenPromotedWhenDue() async throws {
        try await withJobQueue { jobs, _ in
            // Long enough that the first claim comes before it even on a busy machine.
            let enqueued = try await jobs.enqueue("t", json: "{}", options: JobOptions(delay: .seconds(3)))
            #expect(enqueued.status == .scheduled)
            let early = try await jobs.claim()
            #expect(early.jobs.isEmpty)
            let due = try #require(early.nextDueAt)
            let runAt = try #require(try await jobs.get(enqueued.id)?.runAt)
            #expect(abs(due.timeIntervalSince(runAt)) < 0.002)
            try await Task.sleep(until: .now + .milliseconds(3_050))
            let claimed = try await jobs.claim()
            #expect(claimed.jobs.map(\.job.id) == [enqueued.id])
            #expect(claimed.jobs.first?.job.status == .processing)
        }
    }

    @Test func runAtInThePastRunsNowAndRunAtInTheFutureIsScheduled() async throws {
        try await withJobQueue { jobs, _ in
            let past = try await jobs.enqueue(
                "t",
                json: "{}",
                options: JobOptions(runAt: Date(timeIntervalSince1970: 1))
            )
            #expect(past.status == .pending)
            let later = Date().addingTimeInterval(3600)
            let future = try await jobs.enqueue("t", json: "{}", options: JobOptions(runAt: later))
            #expect(future.status == .scheduled)
            let runAt = try #require(try await jobs.get(future.id)?.runAt)
            #expect(abs(runAt.timeIntervalSince(later)) < 0.01)
        }
    }

    @Test func claimTakesByPriorityThenFIFO() async throws {
        try await withJobQueue { jobs, _ in
            var ids: [Int: String] = [:]
            for (index, priority) in [5, 0, -5, 10, 0].enumerated() {
                ids[index] = try await jobs.enqueue("t", json: "{}", options: JobOptions(priority: priority)).id
            }
            let listed = try await jobs.list(status: .pending).map(\.id)
            let claimed = try await jobs.claim(count: 10).jobs.map(\.job.id)
            let expected = [3, 0, 1, 4, 2].map { ids[$0]! }
            #expect(claimed == expected)
            #expect(listed == expected)
        }
    }

    @Test func completeRecordsTheResultOnceAndRefusesStaleOrWrongState() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let claimed = try #require(try await jobs.claim().jobs.first)
            #expect(claimed.job.attempts == 1 && claimed.job.worker == jobs.configuration.workerID)
            try await jobs.complete(id, leaseToken: claimed.leaseToken, result: #"{"sent":true}"#)
            try await jobs.complete(id, leaseToken: claimed.leaseToken, result: #"{"sent":true}"#)
            let job = try #require(try await jobs.get(id))
            #expect(job.status == .completed && job.result == #"{"sent":true}"# && job.finishedAt != nil)
            #expect(try await jobs.counts()[.completed] == 1)
            try await expectRejected(jobs, .invalidState, mentioning: "is completed, not processing") {
                try await jobs.complete(id, leaseToken: "999", result: nil)
            }
            let other = try await jobs.enqueue("t", json: "{}").id
            try await expectRejected(jobs, .invalidState, mentioning: "is pending, not processing") {
                try await jobs.complete(other, leaseToken: "1", result: nil)
            }
        }
    }

    @Test func failRetriesWithBackoffThenFailsForGood() async throws {
        var configuration = JobQueue.Configuration()
        configuration.backoff = Backoff(base: .milliseconds(100), cap: .milliseconds(250), jitter: false)
        try await withJobQueue(configuration) { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}", options: JobOptions(maxRetries: 3)).id
            var delays: [Int] = []
            for attempt in 1...4 {
                try await eventually("job \(id) due again") {
                    try await !jobs.claim(count: 1).jobs.isEmpty
                }
                let job = try #require(try await jobs.get(id))
                #expect(job.status == .processing && job.attempts == attempt)
                let status = try await jobs.fail(id, leaseToken: job.leaseToken!, error: "boom \(attempt)")
                let after = try #require(try await jobs.get(id))
                #expect(after.error == "boom \(attempt)")
                if attempt <= 3 {
                    #expect(status == .retrying && after.retryCount == attempt)
                    delays.append(JobQueue.milliseconds(after.runAt!) - JobQueue.milliseconds(after.updatedAt!))
                } else {
                    #expect(status == .failed && after.finishedAt != nil)
                }
            }
            #expect(delays == [100, 200, 250])
            #expect(try await jobs.counts()[.failed] == 1)
            #expect(try await jobs.stats()["retried"] == 3)
        }
    }

    @Test func jitteredBackoffStaysWithinTheExponentialBound() async throws {
        try await withJobQueue { jobs, _ in
            for _ in 0..<20 {
                let id = try await jobs.enqueue("t", json: "{}").id
                let token = try await jobs.take(id).leaseToken
                try await jobs.fail(id, leaseToken: token, error: "x")
                let job = try #require(try await jobs.get(id))
                let delay = JobQueue.milliseconds(job.runAt!) - JobQueue.milliseconds(job.updatedAt!)
                #expect((0...1000).contains(delay))
            }
        }
    }

    @Test func failWithoutRetryFailsAtOnceAndRepeatsSafely() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let token = try await jobs.take(id).leaseToken
            #expect(try await jobs.fail(id, leaseToken: token, error: "bad input", retry: false) == .failed)
            #expect(try await jobs.fail(id, leaseToken: token, error: "bad input", retry: false) == .failed)
            #expect(try await jobs.get(id)?.retryCount == 0)
            #expect(try await jobs.counts()[.failed] == 1)
        }
    }

    @Test func heartbeatExtendsReportsLostAndCancelRequests() async throws {
        try await withJobQueue { jobs, _ in
            let first = try await jobs.enqueue("t", json: "{}").id
            let second = try await jobs.enqueue("t", json: "{}").id
            let claimed = try await jobs.claim(count: 2, lease: .seconds(1)).jobs
            let before = try await jobs.redis.send(
                "ZSCORE",
                "conveyor:{default}:active",
                first.split(separator: "/")[1]
            )
            _ = try await jobs.cancel(second)
            let statuses = try await jobs.heartbeat(
                queue: "default",
                leases: [(first, claimed[0].leaseToken), (second, claimed[1].leaseToken), (first, "stale")],
                lease: .seconds(60)
            )
            #expect(statuses == [.extended, .cancelRequested, .lost])
            let after = try await jobs.redis.send("ZSCORE", "conveyor:{default}:active", first.split(separator: "/")[1])
            #expect((after.int ?? 0) - (before.int ?? 0) > 50_000)
            #expect(try await jobs.fail(second, leaseToken: claimed[1].leaseToken, error: "stopped") == .cancelled)
        }
    }

    @Test func expiredLeasesAreReclaimedThenFailAfterTooManyStalls() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            var tokens: [String] = []
            for stall in 1...3 {
                let claimed = try #require(
                    try await jobs.claim(lease: .milliseconds(50), worker: "w\(stall)").jobs.first
                )
                tokens.append(claimed.leaseToken)
                try await Task.sleep(for: .milliseconds(80))
                #expect(try await jobs.reclaimExpired(maxStalls: 2) == 1)
                let job = try #require(try await jobs.get(id))
                if stall <= 2 {
                    #expect(job.status == .pending && job.stalls == stall)
                    #expect(job.error?.contains("worker \"w\(stall)\"") == true)
                } else {
                    #expect(job.status == .failed && job.error?.contains("stall 3 of at most 2") == true)
                }
            }
            // A worker that lost its lease cannot overwrite the outcome.
            try await expectRejected(jobs, .invalidState, mentioning: "is failed") {
                try await jobs.complete(id, leaseToken: tokens[0], result: nil)
            }
        }
    }

    @Test func staleWorkerCannotCompleteAfterAnotherWorkerTookTheJob() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let stale = try #require(try await jobs.claim(lease: .milliseconds(30), worker: "slow").jobs.first)
            try await Task.sleep(for: .milliseconds(60))
            try await jobs.reclaimExpired()
            let fresh = try #require(try await jobs.claim(worker: "fast").jobs.first)
            try await expectRejected(jobs, .staleLease, mentioning: "held by worker \"fast\"") {
                try await jobs.complete(id, leaseToken: stale.leaseToken, result: #"{"from":"slow"}"#)
            }
            try await expectRejected(jobs, .staleLease, mentioning: "lease") {
                try await jobs.fail(id, leaseToken: stale.leaseToken, error: "slow")
            }
            #expect(try await jobs.heartbeat(queue: "default", leases: [(id, stale.leaseToken)]) == [.lost])
            try await jobs.complete(id, leaseToken: fresh.leaseToken, result: #"{"from":"fast"}"#)
            #expect(try await jobs.get(id)?.result == #"{"from":"fast"}"#)
        }
    }

    @Test func cancelEachState() async throws {
        try await withJobQueue { jobs, _ in
            let pending = try await jobs.enqueue("t", json: "{}").id
            let scheduled = try await jobs.enqueue("t", json: "{}", options: JobOptions(delay: .seconds(60))).id
            let retrying = try await jobs.enqueue("t", json: "{}").id
            let token = try await jobs.take(retrying).leaseToken
            try await jobs.fail(retrying, leaseToken: token, error: "x", delay: .seconds(60))
            for id in [pending, scheduled, retrying] {
                #expect(try await jobs.cancel(id) == .cancelled)
                #expect(try await jobs.cancel(id) == .cancelled)
                #expect(try await jobs.get(id)?.status == .cancelled)
            }
            let counts = try await jobs.counts()
            #expect(
                counts[.cancelled] == 3 && counts[.pending] == 0 && counts[.scheduled] == 0 && counts[.retrying] == 0
            )
            let done = try await jobs.enqueue("t", json: "{}").id
            try await jobs.complete(done, leaseToken: try await jobs.take(done).leaseToken)
            try await expectRejected(jobs, .invalidState, mentioning: "cannot be cancelled") {
                try await jobs.cancel(done)
            }
        }
    }

    @Test func retryNowFromFailedCancelledAndScheduled() async throws {
        try await withJobQueue { jobs, _ in
            let failed = try await jobs.enqueue("t", json: "{}", options: JobOptions(maxRetries: 0)).id
            try await jobs.fail(failed, leaseToken: try await jobs.take(failed).leaseToken, error: "x")
            #expect(try await jobs.get(failed)?.status == .failed)
            try await jobs.retry(failed)
            let again = try #require(try await jobs.get(failed))
            #expect(again.status == .pending && again.retryCount == 0 && again.finishedAt == nil)
            let cancelled = try await jobs.enqueue("t", json: "{}").id
            try await jobs.cancel(cancelled)
            try await jobs.retry(cancelled)
            let scheduled = try await jobs.enqueue("t", json: "{}", options: JobOptions(delay: .seconds(600))).id
            try await jobs.retry(scheduled)
            try await jobs.retry(scheduled)
            #expect(try await jobs.counts()[.pending] == 3)
            #expect(try await jobs.claim(count: 5).jobs.count == 3)
            try await expectRejected(jobs, .invalidState, mentioning: "is processing") { try await jobs.retry(failed) }
        }
    }

    @Test func removeDeletesEverywhere() async throws {
        try await withJobQueue { jobs, _ in
            let reference = JobReference(type: "file_upload", id: "42")
            let id = try await jobs.enqueue("t", json: "{}", options: JobOptions(reference: reference, uniqueKey: "u"))
                .id
            try await jobs.remove(id)
            #expect(try await jobs.get(id) == nil)
            #expect(try await jobs.counts()[.pending] == 0)
            #expect(try await jobs.jobs(referenceType: "file_upload", referenceID: "42").isEmpty)
            #expect(try await jobs.redis.send("EXISTS", "conveyor:{default}:unique:u") == .integer(0))
            let running = try await jobs.enqueue("t", json: "{}").id
            _ = try await jobs.take(running)
            try await expectRejected(jobs, .invalidState, mentioning: "force") { try await jobs.remove(running) }
            try await jobs.remove(running, force: true)
            #expect(try await jobs.counts()[.processing] == 0)
            try await expectRejected(jobs, .jobNotFound, mentioning: "no job") { try await jobs.remove(running) }
        }
    }

    @Test func uniqueKeyRejectsWhileLiveAndFreesWhenFinished() async throws {
        try await withJobQueue { jobs, _ in
            let first = try await jobs.enqueue("t", json: "{}", options: JobOptions(uniqueKey: "report:7"))
            let second = try await jobs.enqueue("t", json: "{}", options: JobOptions(uniqueKey: "report:7"))
            #expect(second.outcome == .duplicate && second.id == first.id)
            #expect(try await jobs.counts()[.pending] == 1)
            try await jobs.complete(first.id, leaseToken: try await jobs.take(first.id).leaseToken)
            let third = try await jobs.enqueue("t", json: "{}", options: JobOptions(uniqueKey: "report:7"))
            #expect(third.outcome == .created && third.id != first.id)
        }
    }

    @Test func pauseStopsClaimsUntilResume() async throws {
        try await withJobQueue { jobs, _ in
            try await jobs.enqueue("t", json: "{}")
            try await jobs.pause()
            #expect(try await jobs.isPaused())
            let paused = try await jobs.claim()
            #expect(paused.isPaused && paused.jobs.isEmpty)
            try await jobs.enqueue("t", json: "{}")
            try await jobs.resume()
            #expect(try await jobs.claim(count: 5).jobs.count == 2)
        }
    }

    @Test func enqueueManyAcrossQueuesAndBatches() async throws {
        try await withJobQueue { jobs, _ in
            let batch = (0..<2_500).map { index in
                NewJob("bulk", json: #"{"n":\#(index)}"#, options: JobOptions(queue: index % 2 == 0 ? "even" : "odd"))
            }
            let results = try await jobs.enqueueMany(batch)
            #expect(results.count == 2_500 && results.allSatisfy { $0.outcome == .created })
            #expect(results[0].id.hasPrefix("even/") && results[1].id.hasPrefix("odd/"))
            #expect(try await jobs.counts(queue: "even")[.pending] == 1_250)
            #expect(try await jobs.get(results[2_499].id)?.payload == #"{"n":2499}"#)
        }
    }

    @Test func cleanupAndRetentionDeleteFinishedJobs() async throws {
        try await withJobQueue { jobs, _ in
            try await jobs.setRetention(status: .completed, maxAge: nil, maxCount: 5)
            var ids: [String] = []
            for index in 0..<20 {
                let reference = JobReference(type: "batch", id: "\(index)")
                let id = try await jobs.enqueue("t", json: "{}", options: JobOptions(reference: reference)).id
                try await jobs.complete(id, leaseToken: try await jobs.take(id).leaseToken)
                ids.append(id)
            }
            // Retention runs off the completion path (a worker's reclaim loop, or applyRetention).
            #expect(try await jobs.counts()[.completed] == 20)
            #expect(try await jobs.applyRetention() == 15)
            #expect(try await jobs.counts()[.completed] == 5)
            #expect(try await jobs.get(ids[0]) == nil)
            #expect(try await jobs.jobs(referenceType: "batch", referenceID: "0").isEmpty)
            #expect(try await jobs.get(ids[19])?.status == .completed)
            #expect(try await jobs.cleanup(status: .completed, olderThan: .zero) == 5)
            #expect(try await jobs.counts()[.completed] == 0)
            let keys = try await jobs.redis.send("KEYS", "conveyor:{default}:job:*")
            #expect(keys.array?.isEmpty == true)
        }
    }

    @Test func defaultRetentionKeepsMemoryFlat() async throws {
        try await withJobQueue { jobs, _ in
            try await jobs.setRetention(status: .completed, maxAge: .seconds(3600), maxCount: 100)
            for round in 0..<3 {
                let batch = (0..<300).map { NewJob("t", json: #"{"round":\#(round),"n":\#($0)}"#) }
                _ = try await jobs.enqueueMany(batch)
                while let claimed = try await jobs.claim(count: 100).jobs.nilIfEmpty {
                    for job in claimed { try await jobs.complete(job.job.id, leaseToken: job.leaseToken) }
                }
                try await jobs.applyRetention()
                #expect(try await jobs.counts()[.completed] == 100)
                let size = try await jobs.redis.send("DBSIZE").int ?? 0
                #expect(size < 130, "round \(round): \(size) keys")
            }
        }
    }

    @Test func resultOfWaitsForTheJobWithoutPolling() async throws {
        try await withJobQueue { jobs, _ in
            let id = try await jobs.enqueue("t", json: "{}").id
            let claimed = try #require(try await jobs.claim().jobs.first)
            async let finished = jobs.result(of: id, timeout: .seconds(10))
            try await Task.sleep(for: .milliseconds(200))
            try await jobs.complete(id, leaseToken: claimed.leaseToken, result: #"{"ok":1}"#)
            let job = try await finished
            #expect(job.status == .completed && job.result == #"{"ok":1}"#)
            let other = try await jobs.enqueue("t", json: "{}").id
            let clock = ContinuousClock()
            let started = clock.now
            let error = await #expect(throws: ConveyorError.self) {
                try await jobs.result(of: other, timeout: .milliseconds(300))
            }
            #expect(error?.code == .timeout)
            #expect(clock.now - started < .seconds(3))
            #expect(try await jobs.result(of: id, timeout: .zero).status == .completed)
        }
    }

    @Test func listsByStatusTypeAndOrder() async throws {
        try await withJobQueue { jobs, _ in
            var ids: [String] = []
            for index in 0..<10 {
                ids.append(try await jobs.enqueue(index % 2 == 0 ? "even" : "odd", json: #"{"n":\#(index)}"#).id)
            }
            #expect(try await jobs.list(status: .pending, limit: 3).map(\.id) == Array(ids[0..<3]))
            #expect(try await jobs.list(status: .pending, offset: 8).map(\.id) == Array(ids[8...]))
            #expect(try await jobs.list(status: .pending, limit: 2, order: .newestFirst).map(\.id) == [ids[9], ids[8]])
            #expect(
                try await jobs.list(status: .pending, type: "odd", offset: 1, limit: 2).map(\.id) == [ids[3], ids[5]]
            )
            #expect(try await jobs.list(status: .completed).isEmpty)
        }
    }

    @Test func namespacesAreSeparate() async throws {
        try await withJobQueue { jobs, _ in
            let other = JobQueue(redis: jobs.redis, configuration: JobQueue.Configuration(namespace: "other-app"))
            try await jobs.enqueue("t", json: "{}")
            #expect(try await other.counts()[.pending] == 0)
            #expect(try await other.claim().jobs.isEmpty)
            #expect(try await jobs.claim().jobs.count == 1)
        }
    }

    @Test func aClientThatMayInstallReinstallsTheLibraryAfterAFlushOrAnotherVersion() async throws {
        try await withJobQueue(JobQueue.Configuration(installsLibrary: true)) { jobs, _ in
            try await jobs.enqueue("t", json: "{}")
            _ = try await jobs.redis.send("FUNCTION", "FLUSH")
            try await jobs.enqueue("t", json: "{}")
            #expect(try await jobs.counts()[.pending] == 2)
            // A library of the previous protocol (named conveyor), in place of this one.
            _ = try await jobs.redis.send("FUNCTION", "DELETE", "conveyor_2")
            _ = try await jobs.redis.send(
                "FUNCTION",
                "LOAD",
                "REPLACE",
                "#!lua name=conveyor\nredis.register_function('conveyor_version', function() return 'old' end)"
            )
            let fresh = JobQueue(redis: jobs.redis, configuration: .init(installsLibrary: true))
            #expect(try await fresh.enqueue("t", json: "{}").outcome == .created)
            #expect(try await fresh.installedLibraryVersion() == JobQueue.libraryVersion)
        }
    }

    /// Issue 10, item 8: only `conveyor install` (an admin) loads code; every other client checks the version and
    /// names the step.
    @Test func aClientThatMayNotInstallNamesConveyorInstallAndWritesNothing() async throws {
        try await withJobQueue { jobs, _ in
            _ = try await jobs.redis.send("FUNCTION", "FLUSH")
            try await expectRejected(jobs, .libraryMismatch, mentioning: "conveyor install") {
                _ = try await jobs.enqueue("t", json: "{}")
            }
            _ = try await jobs.redis.send(
                "FUNCTION",
                "LOAD",
                "#!lua name=conveyor\nredis.register_function('conveyor_version', function() return 'old' end)"
            )
            let fresh = JobQueue(redis: jobs.redis)
            try await expectRejected(fresh, .libraryMismatch, mentioning: "holds version old") {
                _ = try await fresh.enqueue("t", json: "{}")
            }
            #expect(try await fresh.installedLibraryVersion() == "old")
            #expect(try await fresh.installLibrary() == .replaced(previous: "old", version: JobQueue.libraryVersion))
            #expect(try await fresh.installLibrary() == .current(version: JobQueue.libraryVersion))
            #expect(try await fresh.enqueue("t", json: "{}").outcome == .created)
        }
    }

    @Test func theLibraryVersionIsTheHashOfTheOtherFiles() throws {
        let others = EmbeddedLua.files.filter { $0.path != "functions/version.lua" }.map(\.source).joined()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha1sum")
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try process.run()
        input.fileHandleForWriting.write(Data(others.utf8))
        try input.fileHandleForWriting.close()
        let digest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(JobQueue.libraryVersion == String(digest.prefix(16)), "run deploy/embed-lua.sh")
    }
}

extension Array {
    var nilIfEmpty: Self? { isEmpty ? nil : self }
}

@Suite("Job ids")
struct JobIDTests {
    @Test func idsAreUniqueOrderedUUIDv7() {
        let ids = (0..<20_000).map { _ in JobQueue.makeID() }
        #expect(Set(ids).count == ids.count)
        #expect(ids == ids.sorted())
        for id in ids.prefix(100) {
            let parsed = UUID(uuidString: id)
            #expect(parsed != nil && parsed?.uuidString.lowercased() == id)
            #expect(Array(id)[14] == "7" && "89ab".contains(Array(id)[19]))
        }
        let milliseconds = Int(ids[0].replacingOccurrences(of: "-", with: "").prefix(12), radix: 16) ?? 0
        #expect(abs(Double(milliseconds) / 1000 - Date().timeIntervalSince1970) < 5)
    }
}
