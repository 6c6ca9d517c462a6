import ConveyorTesting
import Foundation
import LocalRedis
import Synchronization
import Testing

@testable import Conveyor
@testable import RedisClient

/// Issue 13: Conveyor on a real Redis Cluster (3 primaries and 3 replicas on loopback, made by the test): queues on
/// every shard drained by three `conveyor worker` processes with a schedule firing, a queue's slot moved to another
/// primary mid-drain, a primary SIGKILLed mid-drain, and enqueues that meet `MOVED`.
@Suite("Redis Cluster", .serialized, .timeLimit(.minutes(5)))
struct ClusterTests {
    /// A client for the cluster that waits through a failover.
    static func jobQueue(
        _ cluster: LocalRedisCluster,
        acknowledgement: ReplicaAcknowledgement? = nil
    ) throws
        -> JobQueue
    {
        let redis = RedisClient(
            configuration: .init(url: try RedisURL(cluster.urlString), failoverTimeout: .seconds(60))
        )
        var configuration = JobQueue.Configuration(installsLibrary: true)
        configuration.replicaAcknowledgement = acknowledgement
        return JobQueue(redis: redis, configuration: configuration)
    }

    /// Queue names whose slots lie on every primary, `perPrimary` on each, in primary order.
    static func queuesOnEveryPrimary(_ cluster: LocalRedisCluster, perPrimary: Int) async throws -> [String] {
        let primaries = try await cluster.primaries().map(\.port)
        var byPrimary: [Int: [String]] = [:]
        var index = 0
        while primaries.contains(where: { byPrimary[$0, default: []].count < perPrimary }) {
            index += 1
            let name = "q\(index)"
            let owner = try await cluster.owner(ofSlot: LocalRedisCluster.slot(of: "conveyor:{\(name)}")).port
            if byPrimary[owner, default: []].count < perPrimary { byPrimary[owner, default: []].append(name) }
        }
        return primaries.flatMap { byPrimary[$0] ?? [] }
    }

    /// Each job's `attempts` (0 for a job that is gone), read in pipelines that the client splits by node.
    static func attempts(_ jobs: JobQueue, _ ids: [String]) async throws -> [String: Int] {
        var result: [String: Int] = [:]
        for start in stride(from: 0, to: ids.count, by: 1000) {
            let batch = Array(ids[start..<min(start + 1000, ids.count)])
            let commands = try batch.map { id in
                let (queue, localID) = try jobs.split(id)
                return RedisCommand("HMGET", jobs.keys.job(queue, localID), "attempts", "status")
            }
            let replies = try await jobs.redis.pipeline(commands)
            for (id, reply) in zip(batch, replies) {
                let fields = reply.array ?? []
                let completed = fields.count == 2 && fields[1].string == "completed"
                result[id] = completed ? Int(fields[0].string ?? "") ?? 0 : 0
            }
        }
        return result
    }

    static func workerArguments(_ cluster: LocalRedisCluster, queues: [String]) -> [String] {
        ["--redis", cluster.urlString, "--example-handlers", "--concurrency", "10", "--lease", "3s", "--grace", "1s"]
            + queues.flatMap { ["--queue", $0] }
    }

    @Test func threeWorkerProcessesDrainSixQueuesOnThreeShardsWithAScheduleRunning() async throws {
        try await withRedisCluster { cluster in
            let jobs = try Self.jobQueue(cluster)
            defer { jobs.redis.shutdown() }
            try await jobs.installLibrary()
            // The library is on every primary.
            for primary in try await cluster.primaries() {
                let node = RedisConnection(configuration: .init(url: primary.url, followsClusterRedirects: false))
                defer { node.close() }
                #expect(try await node.send("FCALL", "conveyor_version", 0).string == JobQueue.libraryVersion)
            }
            let names = try await Self.queuesOnEveryPrimary(cluster, perPrimary: 2)
            #expect(names.count == 6)
            let total = 20_000
            var ids: [String] = []
            for batch in stride(from: 0, to: total, by: 1000) {
                let news = try (batch..<batch + 1000).map { index in
                    try NewJob(
                        "echo",
                        payload: ["n": index],
                        options: .init(queue: names[index % names.count], id: "job-\(index)")
                    )
                }
                ids += try await jobs.enqueueMany(news).map(\.id)
            }
            #expect(Set(ids).count == total)
            try await jobs.upsert(try Schedule(name: "tick", type: "echo", queue: "ticks", rule: .every(.seconds(1))))
            let queues = names + ["ticks"]
            var workers = (0..<3).map { _ in WorkerProcess(Self.workerArguments(cluster, queues: queues)) }
            // A worker SIGKILLed mid-drain, and a new one in its place: only its jobs in flight run again.
            try await eventually(timeout: .seconds(120), "a third of the jobs to complete") {
                try await jobs.counts(queue: names[0])[.completed, default: 0] > total / names.count / 3
            }
            try await workers[0].signal(SIGKILL)
            _ = try await workers[0].exit()
            workers[0] = WorkerProcess(Self.workerArguments(cluster, queues: queues))
            try await eventually(timeout: .seconds(180), "every job to complete") {
                var done = 0
                for name in names { done += try await jobs.counts(queue: name)[.completed, default: 0] }
                return done == total
            }
            try await Task.sleep(for: .seconds(2))
            let seen = try await Self.attempts(jobs, ids)
            #expect(seen.values.allSatisfy { $0 >= 1 }, "jobs not completed")
            let again = seen.filter { $0.value > 1 }
            // At most the killed worker's 10 slots (and the jobs it had claimed for them) ran twice.
            #expect(again.count <= 20, "\(again.count) jobs ran more than once: \(again.keys.sorted().prefix(10))")
            var started = 0
            for name in names { started += try await jobs.stats(queue: name)["started", default: 0] }
            #expect(started == total + again.values.reduce(0) { $0 + $1 - 1 })
            // Every fire time made one job, once: ids tick@<ms>, a second apart, none run twice but for the kill.
            let ticks = try await jobs.list(queue: "ticks", status: .completed, limit: 1000)
            let fireTimes = ticks.compactMap { Int($0.id.split(separator: "@").last ?? "") }.sorted()
            #expect(fireTimes.count >= 5, "the schedule fired \(fireTimes.count) times")
            #expect(Set(fireTimes).count == fireTimes.count)
            #expect(zip(fireTimes, fireTimes.dropFirst()).allSatisfy { ($1 - $0) % 1000 == 0 && $1 > $0 })
            let tickRuns = try await Self.attempts(jobs, ticks.map(\.id))
            #expect(tickRuns.values.filter { $0 > 1 }.count <= 1)
            for worker in workers { try await worker.signal(SIGTERM) }
            for worker in workers { _ = try await worker.exit() }
        }
    }

    @Test func aBusyQueuesSlotMovesToAnotherPrimaryMidDrainAndNothingIsLostOrRunTwice() async throws {
        try await withRedisCluster { cluster in
            let jobs = try Self.jobQueue(cluster)
            defer { jobs.redis.shutdown() }
            try await jobs.installLibrary()
            let name = try await Self.queuesOnEveryPrimary(cluster, perPrimary: 1)[0]
            let slot = LocalRedisCluster.slot(of: "conveyor:{\(name)}")
            let source = try await cluster.owner(ofSlot: slot)
            let target = try #require(try await cluster.primaries().first { $0.port != source.port })
            var ids: [String] = []
            for batch in stride(from: 0, to: 6000, by: 1000) {
                let news = try (batch..<batch + 1000).map { index in
                    try NewJob("echo", payload: ["n": index], options: .init(queue: name, id: "job-\(index)"))
                }
                ids += try await jobs.enqueueMany(news).map(\.id)
            }
            let workers = (0..<2).map { _ in WorkerProcess(Self.workerArguments(cluster, queues: [name])) }
            try await eventually(timeout: .seconds(60), "the drain to be under way") {
                try await jobs.counts(queue: name)[.completed, default: 0] >= 500
            }
            // A producer goes on enqueuing while the slot moves, and is never told a job failed.
            let producer = Task {
                var made: [String] = []
                for index in 6000..<6400 {
                    let id = try await jobs.enqueue(
                        "echo",
                        payload: ["n": index],
                        options: .init(queue: name, id: "job-\(index)")
                    ).id
                    made.append(id)
                    try await Task.sleep(for: .milliseconds(5))
                }
                return made
            }
            let before = try await jobs.counts(queue: name)[.completed, default: 0]
            try await cluster.migrateSlot(slot, to: target, keysPerStep: 100, pauseBetweenSteps: .milliseconds(20))
            #expect(try await cluster.owner(ofSlot: slot).port == target.port)
            ids += try await producer.value
            try await eventually(timeout: .seconds(120), "every job to complete") {
                try await jobs.counts(queue: name)[.completed, default: 0] == ids.count
            }
            #expect(before < ids.count - 1000, "the migration happened after most of the drain")
            let seen = try await Self.attempts(jobs, ids)
            #expect(
                seen.values.allSatisfy { $0 == 1 },
                "jobs lost or run twice: \(seen.filter { $0.value != 1 }.prefix(10))"
            )
            #expect(try await jobs.stats(queue: name)["started"] == ids.count)
            // Every key of the queue is on the new owner.
            let old = RedisConnection(configuration: .init(url: source.url, followsClusterRedirects: false))
            defer { old.close() }
            #expect(try await old.send("CLUSTER", "COUNTKEYSINSLOT", slot).int == 0)
            for worker in workers { try await worker.signal(SIGTERM) }
            for worker in workers { #expect(try await worker.exit().status == 0) }
        }
    }

    @Test func aPrimarySIGKILLedMidDrainIsReplacedByItsReplicaAndNoAcknowledgedJobIsLost() async throws {
        let nodeTimeout = Duration.seconds(2)
        try await withRedisCluster(.init(nodeTimeout: nodeTimeout)) { cluster in
            let acknowledgement = ReplicaAcknowledgement(replicas: 1, timeout: .seconds(2))
            let jobs = try Self.jobQueue(cluster, acknowledgement: acknowledgement)
            defer { jobs.redis.shutdown() }
            try await jobs.installLibrary()
            let names = try await Self.queuesOnEveryPrimary(cluster, perPrimary: 1)
            let acknowledged = Mutex<[String]>([])
            /// Batches of 100 over the three queues, each retried with the same ids until acknowledged.
            @Sendable func produce(_ batches: Range<Int>, pause: Duration) async throws {
                for batch in batches {
                    let news = try (0..<100).map { index in
                        let number = batch * 100 + index
                        return try NewJob(
                            "echo",
                            payload: ["n": number],
                            options: .init(queue: names[number % names.count], id: "job-\(number)")
                        )
                    }
                    while true {
                        do {
                            let stored = try await jobs.enqueueMany(news)
                            acknowledged.withLock { $0 += stored.map(\.id) }
                            break
                        } catch {
                            try await Task.sleep(for: .milliseconds(100))
                        }
                    }
                    try await Task.sleep(for: pause)
                }
            }
            // A backlog first, so the killed shard's queue still has work when its primary dies.
            try await produce(0..<150, pause: .zero)
            let arguments =
                Self.workerArguments(cluster, queues: names) + ["--wait-replicas", "1", "--wait-timeout", "2"]
            let workers = (0..<2).map { _ in WorkerProcess(arguments) }
            let production = Task { try await produce(150..<210, pause: .milliseconds(50)) }
            defer { production.cancel() }
            try await eventually(timeout: .seconds(60), "the drain to be under way") {
                try await jobs.counts(queue: names[0])[.completed, default: 0] >= 500
            }
            let victim = try await cluster.owner(ofSlot: LocalRedisCluster.slot(of: "conveyor:{\(names[0])}"))
            let completedBefore = try await jobs.counts(queue: names[0])[.completed, default: 0]
            #expect(try await jobs.counts(queue: names[0])[.pending, default: 0] > 500, "the backlog ran out too early")
            let killedAt = ContinuousClock.now
            await cluster.kill(victim)
            try await eventually(timeout: .seconds(60), "jobs of the killed shard's queue to complete again") {
                try await jobs.counts(queue: names[0])[.completed, default: 0] > completedBefore + 20
            }
            let resumed = ContinuousClock.now - killedAt
            #expect(resumed <= nodeTimeout + .seconds(5), "the workers resumed \(resumed) after the kill")
            let promoted = try await cluster.waitForFailover(of: victim)
            #expect(promoted.port != victim.port)
            // The promoted replica has no replica of its own until the old primary comes back as one: until then
            // acknowledged writes to that shard wait (and fail, and are retried), as they should.
            try await victim.restart()
            try await production.value
            let ids = acknowledged.withLock { $0 }
            #expect(ids.count == 21_000)
            try await eventually(timeout: .seconds(120), "every acknowledged job to complete") {
                var done = 0
                for name in names { done += try await jobs.counts(queue: name)[.completed, default: 0] }
                return done >= ids.count
            }
            let seen = try await Self.attempts(jobs, ids)
            let lost = seen.filter { $0.value == 0 }.keys.sorted()
            #expect(lost.isEmpty, "acknowledged jobs lost: \(lost.prefix(10))")
            for worker in workers { try await worker.signal(SIGTERM) }
            for worker in workers { _ = try await worker.exit() }
            print("cluster failover: workers resumed \(resumed) after SIGKILL of \(victim.port)")
        }
    }

    @Test func anEnqueueThatMeetsMOVEDIsSentWhereItBelongsAndARetryWithTheSameIDMakesNoSecondJob() async throws {
        try await withRedisCluster { cluster in
            let names = try await Self.queuesOnEveryPrimary(cluster, perPrimary: 1)
            let slot = LocalRedisCluster.slot(of: "conveyor:{\(names[0])}")
            let owner = try await cluster.owner(ofSlot: slot)
            let elsewhere = try #require(try await cluster.primaries().first { $0.port != owner.port })
            // A plain redis:// URL to a node that does not serve the queue: the first reply is MOVED.
            let redis = RedisClient(configuration: .init(url: elsewhere.url, failoverTimeout: .seconds(1)))
            defer { redis.shutdown() }
            let jobs = JobQueue(redis: redis, configuration: .init(installsLibrary: true))
            #expect(!redis.isCluster)
            try await jobs.installLibrary()
            #expect(redis.isCluster)
            let id = try await jobs.enqueue("echo", payload: ["n": 1], options: .init(queue: names[0], id: "once")).id
            #expect(id == "\(names[0])/once")
            let key = jobs.keys.job(names[0], "once")
            for node in try await cluster.primaries() {
                let connection = RedisConnection(configuration: .init(url: node.url, followsClusterRedirects: false))
                defer { connection.close() }
                let exists = try await connection.send("EXISTS", key)
                // Only the owner holds it; the others redirect.
                if node.port == owner.port {
                    #expect(exists == .integer(1))
                } else {
                    #expect(exists.errorMessage?.hasPrefix("MOVED") == true)
                }
            }
            // The slot moves; this client's map is stale, so its next enqueue meets MOVED and follows it.
            let target = try #require(
                try await cluster.primaries().first { $0.port != owner.port && $0.port != elsewhere.port }
            )
            try await cluster.migrateSlot(slot, to: target)
            let map = try #require(redis.configuration.topology)
            let changes = map.changes
            #expect(map.owner(ofSlot: slot)?.port == owner.port, "the client's map is not stale")
            let again = try await jobs.enqueue("echo", payload: ["n": 1], options: .init(queue: names[0], id: "once"))
                .id
            #expect(again == id)
            // It met MOVED: the map was corrected to the new owner.
            #expect(map.changes > changes && map.owner(ofSlot: slot)?.port == target.port)
            let second = try await jobs.enqueue("echo", payload: ["n": 2], options: .init(queue: names[0], id: "twice"))
                .id
            #expect(try await jobs.counts(queue: names[0])[.pending] == 2)
            #expect(try await jobs.get(second)?.status == .pending)
            // An enqueue refused for as long as the slot is half moved fails, and leaves nothing behind on either
            // node; retried with the same id once the move is done, it makes the job once.
            let next = try #require(try await cluster.primaries().first { $0.port != target.port })
            let from = RedisConnection(configuration: .init(url: target.url, followsClusterRedirects: false))
            let to = RedisConnection(configuration: .init(url: next.url, followsClusterRedirects: false))
            defer {
                from.close()
                to.close()
            }
            let fromID = try #require(try await from.send("CLUSTER", "MYID").string)
            let toID = try #require(try await to.send("CLUSTER", "MYID").string)
            #expect(try await to.send("CLUSTER", "SETSLOT", slot, "IMPORTING", fromID) == .status("OK"))
            #expect(try await from.send("CLUSTER", "SETSLOT", slot, "MIGRATING", toID) == .status("OK"))
            await #expect {
                _ = try await jobs.enqueue("echo", payload: ["n": 3], options: .init(queue: names[0], id: "refused"))
            } throws: { error in
                (error as? ConveyorError)?.code == .redis && "\(error)".contains("being migrated")
            }
            let refusedKey = jobs.keys.job(names[0], "refused")
            for node in [from, to] {
                let keys = try await node.send("CLUSTER", "GETKEYSINSLOT", slot, 100_000).array ?? []
                #expect(!keys.contains(.bulkString(Array(refusedKey.utf8))), "the refused job was stored")
            }
            // Finish the move by hand: the keys, then the new owner on every primary.
            while let keys = try await from.send("CLUSTER", "GETKEYSINSLOT", slot, 100).array, !keys.isEmpty {
                let names = keys.compactMap(\.string)
                let moved = try await from.send(
                    RedisCommand("MIGRATE", ["127.0.0.1", next.port, "", 0, 5000, "KEYS"] + names)
                )
                #expect(moved == .status("OK"))
            }
            for node in try await cluster.primaries() {
                let connection = RedisConnection(configuration: .init(url: node.url, followsClusterRedirects: false))
                defer { connection.close() }
                _ = try await connection.send("CLUSTER", "SETSLOT", slot, "NODE", toID)
            }
            let retried = try await jobs.enqueue(
                "echo",
                payload: ["n": 3],
                options: .init(queue: names[0], id: "refused")
            ).id
            #expect(retried == "\(names[0])/refused")
            #expect(try await jobs.counts(queue: names[0])[.pending] == 3)
            #expect(try await to.send("EXISTS", refusedKey) == .integer(1))
        }
    }

    @Test func everyCommandLineCommandWorksAgainstTheCluster() async throws {
        try await withRedisCluster { cluster in
            let redis = ["--redis", cluster.urlString]
            func run(_ arguments: [String], input: String = "") async throws -> ConveyorExecutable.Output {
                let result = try await ConveyorExecutable.run(arguments + redis, input: input)
                #expect(result.status == 0, "conveyor \(arguments.joined(separator: " ")): \(result.standardError)")
                return result
            }
            #expect(try await run(["ping"]).standardOutput.hasPrefix("PONG"))
            #expect(try await run(["install"]).standardOutput.contains("Installed"))
            // doctor checks every primary and the cluster (the test nodes keep no data on disk: that check fails).
            let doctor = try await ConveyorExecutable.run(["doctor"] + redis)
            #expect(doctor.standardOutput.contains("PASS  cluster: state ok, 3 primaries"), "\(doctor.standardOutput)")
            #expect(doctor.standardOutput.components(separatedBy: "PASS  function library on").count == 4)
            #expect(doctor.status == 1 && doctor.standardOutput.contains("FAIL  persistence on"))
            let names = try await Self.queuesOnEveryPrimary(cluster, perPrimary: 1)
            var ids: [String] = []
            for name in names {
                ids.append(
                    try await run(["enqueue", "echo", "--queue", name, "--payload", #"{"n":1}"#]).standardOutput
                        .trimmingCharacters(in: .whitespacesAndNewlines)
                )
            }
            let lines = names.map { #"{"type":"echo","queue":"\#($0)","payload":{"n":2}}"# }.joined(separator: "\n")
            #expect(try await run(["enqueue-many", "--file", "-"], input: lines + "\n").standardOutput.contains("3"))
            #expect(try await run(["get", ids[1]]).standardOutput.contains("pending"))
            #expect(
                try await run(["list", "--queue", names[2], "--status", "pending"]).standardOutput.contains(ids[2])
            )
            let stats = try await run(["stats"]).standardOutput
            for name in names { #expect(stats.contains(name), "stats shows no \(name): \(stats)") }
            // Each queue's history is read on its own node: two jobs enqueued in each.
            let history = try parsedJSON(try await run(["stats", "--history", "5", "--json"]))
            let queues = (history as? [String: Any])?["queues"] as? [[String: Any]] ?? []
            #expect(queues.count == names.count)
            for queue in queues {
                let minutes = queue["history"] as? [[String: Any]] ?? []
                #expect(minutes.compactMap { $0["enqueued"] as? Int }.reduce(0, +) == 2, "\(queue)")
            }
            _ = try await run(["pause", names[0]])
            #expect(try await run(["stats"]).standardOutput.contains("yes"))
            _ = try await run(["resume", names[0]])
            _ = try await run(["cancel", ids[0]])
            _ = try await run(["retry", ids[0]])
            _ = try await run(["configure", names[1]])
            _ = try await run(["schedule", "add", "tick", "echo", "--every", "1s", "--queue", names[1]])
            #expect(try await run(["schedule", "list"]).standardOutput.contains("tick"))
            _ = try await run(["schedule", "pause", "tick", "--queue", names[1]])
            _ = try await run(["schedule", "resume", "tick", "--queue", names[1]])
            // From the beginning: the worker may finish the job before tail has read where "now" is.
            let tail = ConveyorProcess(["tail", "--from-beginning"] + redis)
            let worker = WorkerProcess(Self.workerArguments(cluster, queues: names))
            let waited = try await run(["wait", ids[2], "--timeout", "30"])
            #expect(waited.standardOutput.contains("completed") || waited.standardOutput.contains("{"))
            try await tail.waitFor(ids[2])
            try await eventually(timeout: .seconds(30), "the worker to be listed") {
                try await ConveyorExecutable.run(["workers"] + redis).standardOutput.contains("/10")
            }
            try await eventually(timeout: .seconds(30), "a leader") {
                !(try await ConveyorExecutable.run(["leader"] + redis).standardOutput.contains("none"))
            }
            _ = try await run(["schedule", "remove", "tick", "--queue", names[1]])
            _ = try await run(["remove", ids[1], "--force"])
            #expect(try await ConveyorExecutable.run(["get", ids[1]] + redis).status != 0)
            _ = try await run(["cleanup", "--older-than", "1h"])
            try await worker.signal(SIGTERM)
            #expect(try await worker.exit().status == 0)
            try await tail.signal(SIGINT)
            _ = try await tail.exit()
        }
    }

    @Test func aPrimaryThatLacksTheLibraryIsRepairedOnFirstUse() async throws {
        try await withRedisCluster { cluster in
            let jobs = try Self.jobQueue(cluster)
            defer { jobs.redis.shutdown() }
            try await jobs.installLibrary()
            let names = try await Self.queuesOnEveryPrimary(cluster, perPrimary: 1)
            // As a new, empty shard that got slots would be: the library is gone from one primary only.
            let bare = try await cluster.owner(ofSlot: LocalRedisCluster.slot(of: "conveyor:{\(names[1])}"))
            let node = RedisConnection(configuration: .init(url: bare.url, followsClusterRedirects: false))
            defer { node.close() }
            #expect(try await node.send("FUNCTION", "FLUSH") == .status("OK"))
            #expect(try await jobs.installedLibraryVersion() == nil, "a primary without the library went unnoticed")
            // The first call there meets "Function not found", checks every primary and installs where missing.
            let id = try await jobs.enqueue("echo", payload: ["n": 1], options: .init(queue: names[1])).id
            #expect(try await jobs.get(id)?.status == .pending)
            #expect(try await node.send("FCALL", "conveyor_version", 0).string == JobQueue.libraryVersion)
            // A client that may not install says which node lacks it and what to run.
            #expect(try await node.send("FUNCTION", "FLUSH") == .status("OK"))
            let strict = JobQueue(redis: jobs.redis, configuration: .init(installsLibrary: false))
            await #expect {
                _ = try await strict.enqueue("echo", payload: ["n": 2], options: .init(queue: names[1]))
            } throws: { error in
                (error as? ConveyorError)?.code == .libraryMismatch && "\(error)".contains("conveyor install")
                    && "\(error)".contains("cluster node 127.0.0.1:\(bare.port)")
            }
        }
    }

    @Test func devWithAClusterRunsJobsOnEveryShardAndRemovesEveryNodeWhenItStops() async throws {
        let dev = ConveyorProcess(["dev", "--cluster", "3"])
        try await dev.waitFor("Ctrl-C stops (and removes every node).")
        let line = try #require(dev.output.split(separator: "\n").first { $0.contains("export REDIS_URL=") })
        let url = String(try #require(line.split(separator: "'").dropFirst().first))
        #expect(url.hasPrefix("redis+cluster://127.0.0.1:"))
        let ports = url.dropFirst("redis+cluster://".count).split(separator: ",").compactMap {
            Int($0.split(separator: ":").last ?? "")
        }
        #expect(ports.count == 6)
        let redis = ["--redis", url]
        // dev's worker serves the default queue; a scheduler next to it, alone, takes part in the election.
        let enqueued = try await ConveyorExecutable.run(["enqueue", "echo", "--payload", #"{"hi":1}"#] + redis)
        #expect(enqueued.status == 0, "\(enqueued.standardError)")
        let id = enqueued.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let waited = try await ConveyorExecutable.run(["wait", id, "--timeout", "60s"] + redis)
        #expect(waited.status == 0 && waited.standardOutput.contains("hi"), "\(waited.standardError)")
        // A scheduler beside dev's worker (which leads) follows without an error, and stops cleanly.
        let scheduler = ConveyorProcess(["scheduler"] + redis)
        try await Task.sleep(for: .seconds(2))
        let leader = try await ConveyorExecutable.run(["leader"] + redis)
        #expect(
            leader.status == 0 && !leader.standardOutput.contains("no scheduler leader"),
            "\(leader.standardOutput)"
        )
        try await scheduler.signal(SIGTERM)
        #expect(try await scheduler.exit() == 0, "\(scheduler.output)")
        #expect(!scheduler.output.contains("error"), "\(scheduler.output)")
        try await dev.signal(SIGINT)
        #expect(try await dev.exit() == 0, "\(dev.output)")
        #expect(dev.output.contains("Stopped; the cluster is gone."))
        for port in ports {
            let ping = try await ConveyorExecutable.run(["ping", "--redis", "redis://127.0.0.1:\(port)"])
            #expect(ping.status != 0, "a node still answers on \(port)")
        }
    }

    @Test func aPythonProducerWithACluster_AwareClientEnqueuesJobsASwiftWorkerRuns() async throws {
        try await withRedisCluster { cluster in
            let names = try await Self.queuesOnEveryPrimary(cluster, perPrimary: 1)
            // The worker checks the library at start; the producer loads it again (REPLACE), as it would anyway.
            let admin = try Self.jobQueue(cluster)
            defer { admin.redis.shutdown() }
            try await admin.installLibrary()
            let worker = WorkerProcess(Self.workerArguments(cluster, queues: names))
            let root = repositoryRoot
            let ended = try await ChildProcess().run(
                [
                    "/usr/bin/python3", root.appendingPathComponent("Tests/Interop/python_cluster_producer.py").path,
                    "127.0.0.1", String(cluster.nodes[0].port), root.appendingPathComponent("lua").path,
                ] + names,
                input: [],
                environment: ProcessInfo.processInfo.environment
            )
            try await worker.signal(SIGTERM)
            _ = try await worker.exit()
            let output = String(decoding: ended.output, as: UTF8.self)
            #expect(ended.status == 0, "\(output)\(String(decoding: ended.errorTail, as: UTF8.self))")
            let summary = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
            #expect(summary?["primaries"] as? Int == 3)
            #expect(summary?["versions"] as? [String] == [JobQueue.libraryVersion])
            #expect(summary?["completed"] as? Int == 6 && summary?["jobs"] as? Int == 6, "\(output)")
        }
    }

    @Test func aClusterThatSpeaksOnlyTLSIsReachedWithRediss_Cluster() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "conveyor-cluster-tls-\(UUID().uuidString)"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let certificates = try LocalRedisServer.TestCertificates.make(in: directory)
        try await withRedisCluster(.init(tls: certificates.serverOptions())) { cluster in
            #expect(cluster.urlString.hasPrefix("rediss+cluster://"))
            let jobs = try Self.jobQueue(cluster)
            defer { jobs.redis.shutdown() }
            try await jobs.installLibrary()
            #expect(try await jobs.redis.clusterPrimaries()?.count == 3)
            let names = try await Self.queuesOnEveryPrimary(cluster, perPrimary: 1)
            var ids: [String] = []
            for name in names {
                ids.append(try await jobs.enqueue("echo", payload: ["n": 1], options: .init(queue: name)).id)
            }
            let worker = WorkerProcess(Self.workerArguments(cluster, queues: names))
            try await eventually(timeout: .seconds(60), "the jobs on every shard to complete over TLS") {
                var done = 0
                for id in ids where try await jobs.get(id)?.status == .completed { done += 1 }
                return done == ids.count
            }
            let stats = try await ConveyorExecutable.run(["stats", "--redis", cluster.urlString])
            #expect(stats.status == 0 && names.allSatisfy { stats.standardOutput.contains($0) }, "\(stats)")
            // No node answers in plain text.
            let plain = RedisConnection(
                configuration: .init(
                    url: RedisURL(endpoint: .tcp(host: "127.0.0.1", port: cluster.nodes[0].port)),
                    connectTimeout: .milliseconds(500),
                    commandTimeout: .milliseconds(500),
                    followsClusterRedirects: false
                )
            )
            defer { plain.close() }
            #expect((try? await plain.send("PING")) != .status("PONG"))
            try await worker.signal(SIGTERM)
            #expect(try await worker.exit().status == 0)
        }
    }
}
