import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Synchronization
import Testing

@testable import Conveyor

/// The lines of a file the handlers append to (empty when it does not exist yet).
private func lines(_ path: String) -> [String] {
    ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
}

/// The fire time (epoch ms) of a scheduled job's id, `<queue>/<schedule>@<fire time>`.
private func fireTime(_ id: String) -> Int? {
    Int(id.split(separator: "@").last ?? "")
}

/// A duration in milliseconds, one decimal.
private func milliseconds(_ duration: Duration) -> String {
    String(format: "%.1f", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
}

/// Real `conveyor` processes in network namespaces of their own (NetworkNamespace.swift), cut off from Redis or on a
/// lossy, slow link while the others carry on. One at a time: they are timing-sensitive and the last one measures
/// throughput.
@Suite("Network partitions between nodes", .serialized, .timeLimit(.minutes(4)))
struct PartitionTests {
    @Test func aWorkerCutOffPastItsLeaseHasItsJobsRunElsewhereAndItsLateCompletionsRefused() async throws {
        try await NetworkLab.with(nodes: 2) { lab, jobs in
            let (a, b) = (lab.nodes[0], lab.nodes[1])
            let runs = lab.directory + "/runs"
            // Each run of a job appends a line when it starts and when it ends, naming the worker's node.
            let handler = try lab.script(
                "run.sh",
                """
                read job
                echo "$CONVEYOR_JOB_ID $NODE start" >> \(runs)
                sleep "$PAUSE"
                echo "$CONVEYOR_JOB_ID $NODE end" >> \(runs)
                printf '{"node":"%s"}' "$NODE"
                """
            )
            let arguments = { (node: LabNode) in
                [
                    "worker", "--redis", lab.redisURL(from: node), "--queue", "work", "--concurrency", "4",
                    "--lease", "2s", "--heartbeat", "500ms", "--reclaim", "500ms", "--no-scheduler",
                    "--log-level", "warning", "--exec", "long=PAUSE=4 sh \(handler)",
                    "--exec", "short=PAUSE=0 sh \(handler)",
                ]
            }
            // Worker A alone first, so that it holds every long job; it also serves a queue of its own.
            let workerA = lab.conveyor(
                "worker-a",
                in: a,
                arguments(a) + ["--queue", "a-only"],
                environment: ["NODE": "a"]
            )
            try await eventually(timeout: .seconds(30), "worker A to register") { try await jobs.workers().count == 1 }
            let long = try await jobs.enqueueMany(
                (0..<4).map { NewJob("long", json: #"{"n":\#($0)}"#, options: JobOptions(queue: "work")) }
            ).map(\.id)
            try await eventually(timeout: .seconds(30), "worker A to run the 4 long jobs") {
                lines(runs).filter { $0.hasSuffix(" a start") }.count == 4
            }

            // Cut A off mid-job; B, on another node, comes up and carries on.
            try await lab.cut(a)
            let cutAt = ContinuousClock.now
            let workerB = lab.conveyor("worker-b", in: b, arguments(b), environment: ["NODE": "b"])
            let short = try await jobs.enqueueMany(
                (0..<20).map { NewJob("short", json: #"{"n":\#($0)}"#, options: JobOptions(queue: "work")) }
            ).map(\.id)
            for id in long + short {
                let job = try await jobs.result(of: id, timeout: .seconds(60))
                #expect(job.status == .completed, "\(id): \(job.status) \(job.error ?? "")")
                #expect(job.result == #"{"node":"b"}"#, "\(id) was completed by \(job.result ?? "nobody")")
            }
            // A's handlers ran to the end meanwhile: its completions wait to be sent.
            try await eventually(timeout: .seconds(30), "worker A's 4 long jobs to end") {
                lines(runs).filter { $0.hasSuffix(" a end") }.count == 4
            }
            let rerunWithin = ContinuousClock.now - cutAt
            // And the partition outlasts A's command timeout (10 s): its call in flight fails, and it reconnects.
            try await workerA.waitFor("recording outcomes or claiming failed", timeout: .seconds(60))
            #expect(workerA.isRunning, "worker A died while cut off:\n\(workerA.output)")
            let partition = ContinuousClock.now - cutAt

            // Healed: A's late completions reach Redis and are refused by their stale lease tokens.
            try await lab.heal(a)
            for id in long {
                try await workerA.waitFor("job \(id) moved on while it ran", timeout: .seconds(60))
            }
            for id in long {
                let job = try #require(try await jobs.get(id))
                #expect(job.status == .completed && job.result == #"{"node":"b"}"#, "\(id): \(job.result ?? "")")
            }
            let refusedWithin = ContinuousClock.now - cutAt - partition
            print(
                "worker partition: A's 4 jobs ran again on B within \(rerunWithin.formatted(.units(fractionalPart: .show(length: 1)))) "
                    + "of the cut; A was cut off for \(partition.formatted(.units(fractionalPart: .show(length: 1)))), "
                    + "its late completions refused within \(refusedWithin.formatted(.units(fractionalPart: .show(length: 1)))) of the heal"
            )
            // A works again.
            let own = try await jobs.enqueue("short", json: "{}", options: JobOptions(queue: "a-only")).id
            let ownJob = try await jobs.result(of: own, timeout: .seconds(60))
            #expect(ownJob.status == .completed && ownJob.result == #"{"node":"a"}"#, "\(ownJob.result ?? "")")

            // Nothing lost; the only jobs that ran twice are the 4 A held when it was cut off, once on each node.
            let starts = Dictionary(grouping: lines(runs).filter { $0.hasSuffix(" start") }) {
                String($0.split(separator: " ")[0])
            }
            for id in long {
                #expect(
                    starts[id]?.map { $0.split(separator: " ")[1] }.sorted() == ["a", "b"],
                    "\(id): \(starts[id] ?? [])"
                )
            }
            for id in short + [own] { #expect(starts[id]?.count == 1, "\(id) ran \(starts[id]?.count ?? 0) times") }
            #expect(starts.count == long.count + short.count + 1)
            let work = try await jobs.counts(queue: "work")
            #expect(work[.completed] == 24 && work[.pending] == 0 && work[.processing] == 0, "\(work)")
            #expect(work[.failed] == 0 && work[.retrying] == 0, "\(work)")

            for worker in [workerA, workerB] { try await worker.signal(SIGTERM) }
            for worker in [workerA, workerB] {
                let ended = try await worker.exit()
                #expect(ended.status == 0, "\(worker.name) exited with \(ended.status):\n\(worker.output)")
            }
        }
    }

    @Test func aLeaderCutOffPastItsLeaseIsReplacedAndFiresNothingWhenItComesBack() async throws {
        try await NetworkLab.with(nodes: 2) { lab, jobs in
            let fires = lab.directory + "/fires"
            let tick = try lab.script("tick.sh", "echo \"$CONVEYOR_JOB_ID\" >> \(fires)")
            // The jobs run in the root namespace, which no cut reaches.
            let worker = lab.conveyor(
                "worker",
                in: nil,
                [
                    "worker", "--redis", "redis://127.0.0.1:\(lab.server.port)", "--no-scheduler", "--concurrency", "4",
                    "--exec", "tick=sh \(tick)", "--log-level", "warning",
                ]
            )
            let schedulers = lab.nodes.map { node in
                lab.conveyor(
                    "scheduler-\(node.namespace)",
                    in: node,
                    ["scheduler", "--redis", lab.redisURL(from: node), "--lease", "2s", "--log-level", "debug"]
                )
            }
            let windowStart = Date().addingTimeInterval(2).timeIntervalSince1970.rounded(.up)
            // Every fire time is made up after a gap (runEach), so each must run exactly once.
            try await jobs.upsert(
                try Schedule(
                    name: "tick",
                    type: "tick",
                    rule: .every(.seconds(1)),
                    start: Date(timeIntervalSince1970: windowStart),
                    misfire: .runEach(max: 100)
                )
            )
            let leaderPID = { () async throws -> Int32 in
                var pid: Int32 = 0
                try await eventually(timeout: .seconds(30), "a leader") {
                    pid = Int32(try await jobs.leader()?.info["pid"] ?? "") ?? 0
                    return pid > 0
                }
                return pid
            }
            let firstPID = try await leaderPID()
            var pids: [Int32] = []
            for scheduler in schedulers { pids.append(try await scheduler.pid()) }
            let oldIndex = try #require(pids.firstIndex(of: firstPID), "the leader \(firstPID) is none of \(pids)")
            let (old, other) = (lab.nodes[oldIndex], schedulers[1 - oldIndex])
            let oldLeader = schedulers[oldIndex]
            try await eventually(timeout: .seconds(30), "two fire times run") { lines(fires).count >= 2 }
            try await oldLeader.waitFor("fired 1 scheduled jobs")

            // Cut the leader off past its lease: the other node takes over and fires on.
            try await lab.cut(old)
            let cutAt = ContinuousClock.now
            try await eventually(timeout: .seconds(30), "the other node to lead") {
                try await leaderPID() == (try await other.pid())
            }
            // The partition lasts until the new leader has fired three fire times that fell due after it took over.
            let takeover = Int(Date().timeIntervalSince1970 * 1000)
            try await eventually(timeout: .seconds(30), "three fire times run under the new leader") {
                lines(fires).compactMap(fireTime).filter { $0 > takeover }.count >= 3
            }
            #expect(oldLeader.isRunning, "the old leader died while cut off:\n\(oldLeader.output)")

            // Healed: the old leader finds it lost the lease, and fires nothing more.
            let beforeHeal = oldLeader.output.count
            try await lab.heal(old)
            let partition = ContinuousClock.now - cutAt
            try await eventually(timeout: .seconds(30), "the old leader to notice it lost the lease") {
                oldLeader.output.dropFirst(beforeHeal).contains("lost scheduler leadership")
            }
            let healed = Int(Date().timeIntervalSince1970 * 1000)
            try await eventually(timeout: .seconds(30), "three more fire times run") {
                lines(fires).compactMap(fireTime).filter { $0 > healed }.count >= 3
            }
            #expect(try await leaderPID() == (try await other.pid()))
            let windowEnd = Date().addingTimeInterval(-3).timeIntervalSince1970.rounded(.down)
            for process in schedulers + [worker] { try await process.signal(SIGTERM) }
            for process in schedulers + [worker] {
                let ended = try await process.exit()
                #expect(ended.status == 0, "\(process.name) exited with \(ended.status):\n\(process.output)")
            }
            let afterHeal = String(oldLeader.output.dropFirst(beforeHeal))
            #expect(!afterHeal.contains("fired "), "the old leader fired after the heal:\n\(afterHeal)")

            // Each fire time in the window ran exactly once, and made exactly one job.
            let ran = lines(fires)
            #expect(ran.count == Set(ran).count, "fire times that ran twice: \(ran.sorted())")
            var made: [String] = []
            for status in [JobStatus.completed, .pending, .processing, .failed, .retrying] {
                made += try await jobs.list(status: status, limit: 10_000).map(\.id)
            }
            #expect(made.count == Set(made).count)
            #expect(Set(made) == Set(ran), "jobs made \(made.count), run \(ran.count)")
            let times = Set(made.compactMap(fireTime))
            let expected = Set(stride(from: Int(windowStart) * 1000, through: Int(windowEnd) * 1000, by: 1000))
            #expect(expected.subtracting(times).isEmpty, "fire times missed: \(expected.subtracting(times).sorted())")
            let schedule = try #require(try await jobs.storedSchedule("default", "tick"))
            #expect(schedule.lastRunAt.map { Int($0.timeIntervalSince1970 * 1000) } == times.max())
            print(
                "leader partition: cut off for \(partition.formatted(.units(fractionalPart: .show(length: 1)))); "
                    + "\(times.count) fire times, each run once"
            )
        }
    }

    @Test func lossAndDelayOnEveryWorkerLinkLoseNoJob() async throws {
        try await NetworkLab.with(nodes: 2) { lab, jobs in
            let workers = lab.nodes.enumerated().map { index, node in
                lab.conveyor(
                    "worker-\(index)",
                    in: node,
                    [
                        "worker", "--redis", lab.redisURL(from: node), "--example-handlers", "--concurrency", "20",
                        "--lease", "5s", "--reclaim", "1s", "--no-scheduler", "--log-level", "warning",
                    ]
                )
            }
            try await eventually(timeout: .seconds(30), "both workers to register") {
                try await jobs.workers().count == 2
            }
            let plainRoundTrip = try await lab.roundTrip(from: lab.nodes[0])

            // A producer in the root namespace keeps a backlog of 50 ms jobs.
            let enqueued = Atomic<Int>(0)
            let producing = Atomic<Bool>(true)
            let producer = Task {
                while producing.load(ordering: .relaxed) {
                    if try await jobs.counts()[.pending] ?? 0 < 1_000 {
                        let batch = (0..<500).map { _ in NewJob("sleep", json: #"{"ms":50}"#) }
                        enqueued.add(try await jobs.enqueueMany(batch).count, ordering: .relaxed)
                    } else {
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
            }
            // The queue's completion counter (the completed index keeps only the newest 10 000 jobs).
            let completed = { try await jobs.stats()["completed"] ?? 0 }
            let rate = { (seconds: Int) async throws -> Double in
                let clock = ContinuousClock()
                let (startCount, start) = (try await completed(), clock.now)
                try await Task.sleep(for: .seconds(seconds))
                let (endCount, end) = (try await completed(), clock.now)
                let elapsed = end - start
                return Double(endCount - startCount)
                    / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            }
            try await eventually(timeout: .seconds(30), "jobs to run") { try await completed() > 0 }
            let plain = try await rate(8)

            // Every worker link: 5 % of the packets dropped each way, the rest held 50 ms each way.
            for node in lab.nodes { try await lab.impair(node, lossPercent: 5, delay: .milliseconds(50)) }
            let impairedRoundTrip = try await lab.roundTrip(from: lab.nodes[1])
            #expect(impairedRoundTrip >= .milliseconds(100), "a round trip took \(impairedRoundTrip)")
            var impaired: [Double] = []
            // A minute of it, in six windows of 10 s.
            for _ in 0..<6 {
                impaired.append(try await rate(10))
                for worker in workers { #expect(worker.isRunning, "\(worker.name) died:\n\(worker.output)") }
            }
            for node in lab.nodes { try await lab.heal(node) }
            producing.store(false, ordering: .relaxed)
            try await producer.value

            // Nothing lost: every job enqueued completes, none fails.
            let total = enqueued.load(ordering: .relaxed)
            try await eventually(timeout: .seconds(60), "all \(total) jobs to complete") {
                try await completed() == total
            }
            let counts = try await jobs.counts()
            #expect(counts[.pending] == 0 && counts[.processing] == 0 && counts[.retrying] == 0, "\(counts)")
            #expect(counts[.failed] == 0, "\(counts)")
            let stats = try await jobs.stats()
            #expect(stats["enqueued"] == total && stats["completed"] == total, "\(stats)")
            let stalled = stats["stalled"] ?? 0
            for worker in workers { #expect(worker.isRunning, "\(worker.name) died:\n\(worker.output)") }
            for worker in workers { try await worker.signal(SIGTERM) }
            for worker in workers {
                let ended = try await worker.exit()
                #expect(ended.status == 0, "\(worker.name) exited with \(ended.status):\n\(worker.output)")
            }
            let mean = impaired.reduce(0, +) / Double(impaired.count)
            print(
                """
                impaired links: \(total) jobs of 50 ms, 2 workers x 20 slots; round trip \(milliseconds(plainRoundTrip)) ms plain, \
                \(milliseconds(impairedRoundTrip)) ms with 5 % loss + 50 ms delay each way; \(String(format: "%.0f", plain)) jobs/s \
                plain, \(String(format: "%.0f", mean)) jobs/s impaired (per 10 s: \
                \(impaired.map { String(format: "%.0f", $0) }.joined(separator: ", "))); \(stalled) leases expired
                """
            )
        }
    }
}
