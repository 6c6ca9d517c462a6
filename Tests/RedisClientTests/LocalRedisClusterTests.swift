import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

/// A real Redis Cluster on loopback: formed deterministically, resharded with the real protocol, failed over by
/// killing a primary, and always stopped.
@Suite("LocalRedisCluster: a real Redis Cluster on loopback", .serialized, .timeLimit(.minutes(3)))
struct LocalRedisClusterTests {
    @Test func formsWithThreePrimariesAndThreeReplicasAndStopsEveryNode() async throws {
        var pids: [Int32] = []
        var directory = ""
        try await withRedisCluster { cluster in
            pids = cluster.nodes.map(\.pid)
            directory = cluster.directory
            #expect(cluster.nodes.count == 6)
            #expect(pids.allSatisfy { $0 > 0 })
            #expect(cluster.seedAddresses == cluster.nodes.map { "127.0.0.1:\($0.port)" })
            #expect(cluster.urlString == "redis+cluster://" + cluster.seedAddresses.joined(separator: ","))
            #expect(try await cluster.primaries().map(\.port) == cluster.nodes.prefix(3).map(\.port))
            var slotTables: [[[Int]]] = []
            for (index, node) in cluster.nodes.enumerated() {
                let info = try await send(node, "CLUSTER", "INFO").string ?? ""
                #expect(info.contains("cluster_state:ok"), "\(node.port): \(info)")
                #expect(info.contains("cluster_slots_ok:16384"))
                #expect(info.contains("cluster_known_nodes:6"))
                if index >= 3 {
                    // Replica k follows primary k, and its link is up.
                    let replication = try await send(node, "INFO", "replication").string ?? ""
                    #expect(replication.contains("master_port:\(cluster.nodes[index - 3].port)\r\n"))
                    #expect(replication.contains("master_link_status:up"))
                }
                slotTables.append(try await slotTable(node))
            }
            // Every node names the same owners: primary k owns the k-th third of the slots.
            #expect(Set(slotTables.map { $0.description }).count == 1)
            #expect(slotTables[0].map { $0[2] } == cluster.nodes.prefix(3).map(\.port))
            #expect(slotTables[0].map { $0[0] } == [0, 5461, 10922])
            #expect(slotTables[0].last?[1] == 16383)
            #expect(try await cluster.owner(ofSlot: 0) === cluster.nodes[0])
            #expect(try await cluster.owner(ofSlot: 8000) === cluster.nodes[1])
            #expect(try await cluster.owner(ofSlot: 16383) === cluster.nodes[2])
            let id = try #require(cluster.nodeID(of: cluster.nodes[1]))
            #expect(try await send(cluster.nodes[1], "CLUSTER", "MYID").string == id)
        }
        for pid in pids {
            #expect(kill(pid, 0) == -1 && errno == ESRCH, "redis-server \(pid) is still running")
        }
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test func slotOfAgreesWithClusterKeyslot() async throws {
        var keys = [
            "", "{", "}", "{}", "{}a", "a{}b", "{a}", "a{b}c", "a{b", "a{", "{{a}}", "a}b{c}", "}{", "}{a}",
            "{user1000}.following", "{user1000}.followers", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}",
            "ключ{тег}", "{тег}другой", "😀{😀}", "123456789", "{conveyor}:jobs",
        ]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("ab{}:-_xyz019é")
        for _ in 0..<400 {
            let length = Int.random(in: 0...16, using: &generator)
            keys.append(String((0..<length).map { _ in alphabet.randomElement(using: &generator)! }))
        }
        // A lone cluster-enabled server answers CLUSTER KEYSLOT without forming a cluster.
        let busPort = try LocalRedisServer.freeLoopbackPort()
        try await withRedisServer(.init(arguments: ["--cluster-enabled", "yes", "--cluster-port", String(busPort)])) {
            server in
            let connection = RedisConnection(configuration: .init(url: server.url, followsClusterRedirects: false))
            defer { connection.close() }
            let replies = try await connection.pipeline(keys.map { RedisCommand("CLUSTER", "KEYSLOT", $0) })
            for (key, reply) in zip(keys, replies) {
                #expect(LocalRedisCluster.slot(of: key) == reply.int, "CLUSTER KEYSLOT \(key) is \(reply)")
            }
        }
        // The check value of the cluster specification.
        #expect(LocalRedisCluster.slot(of: "123456789") == 0x31C3)
        #expect(LocalRedisCluster.slot(of: "{123456789}abc") == LocalRedisCluster.slot(of: "123456789"))
    }

    @Test func migrateSlotMovesEveryKeyStepByStepAndNamesABusyKey() async throws {
        try await withRedisCluster { cluster in
            let slot = LocalRedisCluster.slot(of: "{conveyor}")
            let source = try await cluster.owner(ofSlot: slot)
            let primaries = try await cluster.primaries()
            let target = try #require(primaries.first { $0 !== source })
            let keys = (0..<250).map { "{conveyor}:key\($0)" }
            let written = try await pipeline(source, keys.map { RedisCommand("SET", $0, "value of \($0)") })
            #expect(written.allSatisfy { $0 == .status("OK") })
            #expect(try await send(target, "GET", keys[0]) == .error("MOVED \(slot) 127.0.0.1:\(source.port)"))

            async let moved: Void = cluster.migrateSlot(
                slot,
                to: target,
                keysPerStep: 100,
                pauseBetweenSteps: .milliseconds(500)
            )
            try await eventually(timeout: .seconds(20), "the slot to be half moved") {
                let left = try await countKeys(inSlot: slot, on: source)
                let arrived = try await countKeys(inSlot: slot, on: target)
                return left > 0 && arrived > 0
            }
            // Half moved: the source still serves the keys it has and sends clients to the target for the others;
            // a new key is written on the target, after ASKING.
            let reads = try await pipeline(source, keys.map { RedisCommand("GET", $0) })
            #expect(reads.contains { $0.string?.hasPrefix("value of ") == true })
            #expect(reads.contains { $0 == .error("ASK \(slot) 127.0.0.1:\(target.port)") })
            #expect(
                try await send(source, "SET", "{conveyor}:new", "new")
                    == .error("ASK \(slot) 127.0.0.1:\(target.port)")
            )
            let asked = try await pipeline(
                target,
                [RedisCommand("ASKING"), RedisCommand("SET", "{conveyor}:new", "new")]
            )
            #expect(asked == [.status("OK"), .status("OK")])
            try await moved

            #expect(try await countKeys(inSlot: slot, on: source) == 0)
            #expect(try await countKeys(inSlot: slot, on: target) == keys.count + 1)
            let values = try await pipeline(target, keys.map { RedisCommand("GET", $0) })
            #expect(values == keys.map { .bulkString(Array("value of \($0)".utf8)) })
            #expect(try await send(source, "GET", keys[0]) == .error("MOVED \(slot) 127.0.0.1:\(target.port)"))
            for node in cluster.nodes {
                #expect(try await send(node, "CLUSTER", "KEYSLOT", keys[0]) == .integer(slot))
                let owner = try await slotTable(node).first { $0[0] <= slot && slot <= $0[1] }
                #expect(owner?[2] == target.port, "\(node.port) names \(owner?[2] ?? 0) as the owner of \(slot)")
            }
            #expect(try await cluster.owner(ofSlot: slot) === target)

            // Back to the source, which has a key of the slot already: MIGRATE does not replace it, and the error
            // names it.
            let sourceID = try #require(cluster.nodeID(of: source))
            let targetID = try #require(cluster.nodeID(of: target))
            #expect(try await send(source, "CLUSTER", "SETSLOT", slot, "IMPORTING", targetID) == .status("OK"))
            let planted = try await pipeline(source, [RedisCommand("ASKING"), RedisCommand("SET", keys[7], "other")])
            #expect(planted == [.status("OK"), .status("OK")])
            await #expect {
                try await cluster.migrateSlot(slot, to: source, keysPerStep: 1000)
            } throws: { error in
                let message = (error as? LocalRedisServerError)?.message ?? ""
                return message.contains("BUSYKEY") && message.contains("key '\(keys[7])'")
                    && message.contains("half moved")
            }
            #expect(try await cluster.owner(ofSlot: slot) === target, "a failed move leaves the owner")
            // Once the stray copy is gone, calling it again finishes the move.
            let removed = try await pipeline(source, [RedisCommand("ASKING"), RedisCommand("DEL", keys[7])])
            #expect(removed == [.status("OK"), .integer(1)])
            try await cluster.migrateSlot(slot, to: source)
            #expect(try await cluster.owner(ofSlot: slot) === source)
            #expect(try await countKeys(inSlot: slot, on: source) == keys.count + 1)
            #expect(try await send(source, "GET", keys[7]) == .bulkString(Array("value of \(keys[7])".utf8)))
            #expect(sourceID != targetID)
        }
    }

    @Test func killingAPrimaryPromotesItsReplicaWithinTheNodeTimeoutPlusTenSeconds() async throws {
        let options = LocalRedisCluster.Options()
        try await withRedisCluster(options) { cluster in
            let primary = cluster.nodes[1]
            let replica = cluster.nodes[4]
            // A key in the middle third of the slots, the second primary's.
            let key = try #require(
                (0..<1000).map { "failover\($0)" }.first { (5461...10921).contains(LocalRedisCluster.slot(of: $0)) }
            )
            let slot = LocalRedisCluster.slot(of: key)
            #expect(try await cluster.owner(ofSlot: slot) === primary)
            #expect(try await send(primary, "SET", key, "kept") == .status("OK"))
            #expect(try await send(primary, "WAIT", 1, 5000) == .integer(1))

            let clock = ContinuousClock()
            let killed = clock.now
            await cluster.kill(primary)
            #expect(primary.pid == 0)
            let promoted = try await cluster.waitForFailover(of: primary, timeout: options.nodeTimeout + .seconds(10))
            let took = clock.now - killed
            print("failover with cluster-node-timeout \(options.nodeTimeout): \(took)")
            #expect(promoted === replica)
            #expect(took < options.nodeTimeout + .seconds(10))
            #expect(try await cluster.owner(ofSlot: slot) === replica)
            #expect(try await cluster.primaries().map(\.port) == [0, 2, 4].map { cluster.nodes[$0].port })
            #expect(try await send(replica, "GET", key) == .bulkString(Array("kept".utf8)))

            // Restarted, the old primary rejoins as a replica of the one that took over.
            try await primary.restart()
            let replicaID = try #require(cluster.nodeID(of: replica))
            try await eventually(timeout: .seconds(20), "the old primary to follow the new one") {
                let nodes = try await send(primary, "CLUSTER", "NODES").string ?? ""
                return nodes.split(separator: "\n").contains { $0.contains("myself,slave \(replicaID)") }
            }
        }
    }

    @Test func aClusterThatCannotFormStopsEveryNodeItStarted() async throws {
        // The nodes start, but every cluster command is refused (NOAUTH): starting fails after all three are up.
        await #expect {
            try await LocalRedisCluster.start(
                .init(primaries: 3, replicasPerPrimary: 0, serverArguments: ["--requirepass", "secret"])
            )
        } throws: { error in
            let message = (error as? LocalRedisServerError)?.message ?? ""
            return message.contains("CLUSTER MYID on 127.0.0.1:") && message.contains("failed: NOAUTH")
        }
        #expect(orphanedClusterNodes().isEmpty, "redis-server left running: \(orphanedClusterNodes())")
    }

    @Test func refusesAClusterWithoutPrimaries() async throws {
        await #expect {
            try await LocalRedisCluster.start(.init(primaries: 0))
        } throws: { error in
            (error as? LocalRedisServerError)?.message.contains("1 to 16384 primaries") == true
        }
    }
}

/// Sends one command to one node (no cluster redirections are followed).
private func send(
    _ node: LocalRedisServer,
    _ name: String,
    _ arguments: any RedisArgumentConvertible...
)
    async throws -> RedisReply
{
    try await pipeline(node, [RedisCommand(name, arguments)])[0]
}

private func pipeline(_ node: LocalRedisServer, _ commands: [RedisCommand]) async throws -> [RedisReply] {
    let connection = RedisConnection(
        configuration: .init(url: node.url, failoverTimeout: .zero, followsClusterRedirects: false)
    )
    defer { connection.close() }
    return try await connection.pipeline(commands)
}

private func countKeys(inSlot slot: Int, on node: LocalRedisServer) async throws -> Int {
    try await send(node, "CLUSTER", "COUNTKEYSINSLOT", slot).int ?? -1
}

/// A node's `CLUSTER SLOTS`: `[first slot, last slot, primary's port]` per range, in slot order.
private func slotTable(_ node: LocalRedisServer) async throws -> [[Int]] {
    let ranges = try await send(node, "CLUSTER", "SLOTS").array ?? []
    return ranges.compactMap { range -> [Int]? in
        guard let fields = range.array, fields.count >= 3, let first = fields[0].int, let last = fields[1].int,
            let port = fields[2].array?[1].int
        else { return nil }
        return [first, last, port]
    }.sorted { $0[0] < $1[0] }
}

/// The `redis-server` children of this process started for a cluster whose directory is gone: servers a failed
/// start or a stop left behind. (A server runs in its data directory; it rewrites its command line.)
private func orphanedClusterNodes() -> [Int32] {
    let me = getpid()
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { Int32($0) }.filter { pid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            stat.contains("(redis-server)"),
            let afterName = stat.range(of: ") ", options: .backwards),
            Int32(stat[afterName.upperBound...].split(separator: " ").dropFirst().first ?? "") == me,
            let directory = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd"),
            directory.contains("/conveyor-cluster-")
        else { return false }
        let path = directory.hasSuffix(" (deleted)") ? String(directory.dropLast(" (deleted)".count)) : directory
        return !FileManager.default.fileExists(atPath: path)
    }
}
