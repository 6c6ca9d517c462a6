import ConveyorTesting
import LocalRedis
import Synchronization
import Testing

@testable import RedisClient

/// RedisClient against a real Redis Cluster (3 primaries, 3 replicas, from `withRedisCluster`): routing by slot,
/// pipelines split by node, `MOVED` and `ASK` during resharding, refusals waited through, and a shard failover.
///
/// Nodes are checked by hand with plain connections that send only keyless commands, after `CLUSTER MYID` (see
/// ``onNode(_:_:_:)``): a keyed command could get `MOVED`, which switches a `redis://` URL to routing by slot.
@Suite("Redis Cluster: routing, resharding and failover", .serialized, .timeLimit(.minutes(3)))
struct ClusterRoutingTests {
    // MARK: - Commands, pipelines, routes, blocking calls

    @Test func commandsPipelinesRoutesAndBlockingCallsReachTheNodeOfTheirSlot() async throws {
        try await withRedisCluster { cluster in
            let redis = RedisClient(configuration: .init(url: try RedisURL(cluster.urlString)))
            defer { redis.shutdown() }
            let primaries = Array(cluster.nodes.prefix(3))

            // One key on each primary: SET and GET.
            let single = (0..<3).map { keys("single:", onPrimary: $0, count: 1)[0] }
            for key in single {
                #expect(try await redis.send("SET", key, "value of \(key)") == .status("OK"))
            }
            for key in single {
                #expect(try await redis.send("GET", key) == bulk("value of \(key)"))
            }
            #expect(try await redis.send("MGET", "{multi}a", "{multi}b") == .array([.null, .null]))

            // ~300 commands, keys of every primary interleaved, keyless WAIT and TIME mixed in, each key
            // incremented three times: every reply comes back in request order. A keyless CLUSTER MYID shows where
            // keyless commands went: with the keyed command before them (at the start: after them).
            let counters = (0..<3).map { keys("pipe:", onPrimary: $0, count: 30) }
            let shardOrder = [2, 0, 1]
            let interleaved = (0..<30).flatMap { index in shardOrder.map { counters[$0][index] } }
            let ids = try primaries.map { try #require(cluster.nodeID(of: $0)) }
            var commands = [RedisCommand("CLUSTER", "MYID"), RedisCommand("TIME")]
            var expected: [Expected] = [.bulk(ids[shardOrder[0]]), .time]
            var sums: [String: Int] = [:]
            for round in 1...3 {
                for (index, key) in interleaved.enumerated() {
                    let amount = round * 1000 + index
                    sums[key, default: 0] += amount
                    commands.append(RedisCommand("INCRBY", key, amount))
                    expected.append(.integer(sums[key] ?? 0))
                    if index % 10 == 4 {
                        commands.append(RedisCommand("WAIT", 0, 0))
                        expected.append(.wait)
                    }
                    if index % 10 == 9 {
                        commands.append(RedisCommand("TIME"))
                        expected.append(.time)
                    }
                    if index % 10 == 6 {
                        commands.append(RedisCommand("CLUSTER", "MYID"))
                        expected.append(.bulk(ids[shardOrder[index % 3]]))
                    }
                }
            }
            #expect(commands.count > 300)
            let replies = try await redis.pipeline(commands)
            try #require(replies.count == commands.count)
            var mismatches: [String] = []
            for (index, (reply, want)) in zip(replies, expected).enumerated() where !want.matches(reply) {
                mismatches.append("#\(index) \(commands[index].name): \(reply), expected \(want)")
            }
            #expect(mismatches.isEmpty, "\(mismatches.count) replies out of place: \(mismatches.prefix(5))")
            let totals = try await redis.pipeline(interleaved.map { RedisCommand("GET", $0) })
            #expect(totals == interleaved.map { bulk(String(sums[$0] ?? 0)) })

            // By hand, on each primary: it holds exactly the keys of its slots.
            for (index, node) in primaries.enumerated() {
                let held = try await keysOnNode(cluster, node, matching: "pipe:*")
                #expect(held == Set(counters[index]), "127.0.0.1:\(node.port) holds \(held.count) pipe: keys")
                let singles = try await keysOnNode(cluster, node, matching: "single:*")
                #expect(singles == [single[index]])
            }

            // routed(toNode:): to each primary from clusterPrimaries(), and to a replica, in one pipeline too.
            let addresses = try #require(try await redis.clusterPrimaries())
            #expect(Set(addresses) == Set(primaries.map(address)))
            for node in primaries {
                let id = try #require(cluster.nodeID(of: node))
                #expect(try await redis.send(RedisCommand("CLUSTER", "MYID").routed(toNode: address(node))) == bulk(id))
            }
            let replica = cluster.nodes[4]
            let order = [primaries[2], primaries[0], replica, primaries[1], primaries[0]]
            let routed = try await redis.pipeline(
                order.map { RedisCommand("CLUSTER", "MYID").routed(toNode: address($0)) }
                    + [RedisCommand("INFO", "replication").routed(toNode: address(replica))]
            )
            #expect(Array(routed.prefix(order.count)) == order.map { bulk(cluster.nodeID(of: $0) ?? "?") })
            #expect(
                routed.last?.string?.contains("role:slave") == true,
                "INFO went to a primary: \(routed.last ?? .null)"
            )

            // routed(bySlotOf:): SCAN on the node of a tag's slot finds that tag's keys, and only those.
            let tags = (0..<3).map { tag("scan", onPrimary: $0) }
            let scanKeys = tags.map { tag in (0..<40).map { "scan:\(tag):\($0)" } }
            let written = try await redis.pipeline(scanKeys.joined().map { RedisCommand("SET", $0, "x") })
            #expect(written.allSatisfy { $0 == .status("OK") })
            for (tag, keys) in zip(tags, scanKeys) {
                #expect(try await scan(redis, matching: "scan:\(tag)*", bySlotOf: tag) == Set(keys))
                #expect(try await scan(redis, matching: "scan:*", bySlotOf: tag) == Set(keys), "ran on another node")
            }

            // A blocking command on a dedicated connection, for a key of the second primary (not the first seed).
            let list = keys("blocking:", onPrimary: 1, count: 1)[0]
            let waiter = redis.makeDedicatedConnection()
            defer { waiter.close() }
            async let popped = waiter.send(RedisCommand("BLPOP", list, 10), blockingFor: .seconds(10))
            try await eventually("the BLPOP to block on 127.0.0.1:\(primaries[1].port)") {
                try await blockedClients(cluster, primaries[1]) == 1
            }
            #expect(try await redis.send("RPUSH", list, "pushed by another client") == .integer(1))
            #expect(try await popped == .array([bulk(list), bulk("pushed by another client")]))
            // Keys of two slots in one blocking command: Redis refuses it (callers must not do this).
            let otherList = keys("blocking:", onPrimary: 2, count: 1)[0]
            let crossed = try await waiter.send(RedisCommand("BLPOP", list, otherList, 1), blockingFor: .seconds(1))
            #expect(crossed.errorMessage?.hasPrefix("CROSSSLOT") == true, "BLPOP over two slots: \(crossed)")
        }
    }

    // MARK: - Telling a cluster from a single server

    @Test func clusterPrimariesAndIsClusterTellAClusterFromASingleServer() async throws {
        try await withRedisCluster { cluster in
            let redis = RedisClient(configuration: .init(url: try RedisURL(cluster.urlString)))
            defer { redis.shutdown() }
            #expect(redis.isCluster)
            let primaries = try #require(try await redis.clusterPrimaries())
            #expect(primaries.count == 3)
            #expect(Set(primaries) == Set(cluster.nodes.prefix(3).map(address)))

            let own = keys("detect:", onPrimary: 0, count: 1)[0]
            let elsewhere = keys("detect:", onPrimary: 1, count: 1)[0]
            #expect(try await redis.send("SET", own, "on the first primary") == .status("OK"))
            #expect(try await redis.send("SET", elsewhere, "on the second primary") == .status("OK"))

            // redis:// to one node: a single server until it answers MOVED.
            let plain = RedisClient(configuration: .init(url: cluster.nodes[0].url))
            defer { plain.shutdown() }
            #expect(!plain.isCluster)
            #expect(try await plain.send("GET", own) == bulk("on the first primary"))
            #expect(!plain.isCluster, "a key the node serves needs no redirect")
            #expect(try await plain.send("GET", elsewhere) == bulk("on the second primary"))
            #expect(plain.isCluster, "the MOVED reply showed the server is a cluster node")
            #expect(try await plain.send("SET", elsewhere, "written through redis://") == .status("OK"))
            #expect(try await redis.send("GET", elsewhere) == bulk("written through redis://"))

            // A first request that is a pipeline: what the node took keeps its reply, the rest follows MOVED, and
            // every command runs once.
            let counters = (0..<3).map { keys("first:", onPrimary: $0, count: 1)[0] }
            let second = RedisClient(configuration: .init(url: cluster.nodes[1].url))
            defer { second.shutdown() }
            #expect(!second.isCluster)
            let replies = try await second.pipeline([
                RedisCommand("INCR", counters[0]), RedisCommand("INCR", counters[1]), RedisCommand("INCR", counters[2]),
                RedisCommand("TIME"), RedisCommand("INCR", counters[1]), RedisCommand("GET", counters[0]),
                RedisCommand("INCRBY", counters[2], 10),
            ])
            #expect(replies.count == 7)
            #expect(Array(replies.prefix(3)) == [.integer(1), .integer(1), .integer(1)])
            #expect(Expected.time.matches(replies[3]), "TIME: \(replies[3])")
            #expect(Array(replies.suffix(3)) == [.integer(2), bulk("1"), .integer(11)])
            #expect(second.isCluster)
            #expect(try await redis.pipeline(counters.map { RedisCommand("GET", $0) }) == ["1", "2", "11"].map(bulk))
        }

        try await withRedisServer { server in
            let single = server.makeClient()
            defer { single.shutdown() }
            #expect(!single.isCluster)
            #expect(try await single.clusterPrimaries() == nil)
            #expect(!single.isCluster)
            #expect(try await single.send("SET", "key", "value") == .status("OK"))

            let wrong = RedisClient(configuration: .init(url: try RedisURL("redis+cluster://127.0.0.1:\(server.port)")))
            defer { wrong.shutdown() }
            let refusal = await #expect(throws: RedisClientError.self) {
                _ = try await wrong.clusterPrimaries()
            }
            #expect(refusal?.code == .connectionFailed)
            let message = refusal?.message ?? ""
            #expect(message.contains("is not a Redis Cluster node") && message.contains("cluster support disabled"))
            #expect(message.contains("use a redis:// URL for a single server"), "\(message)")
        }
    }

    // MARK: - MOVED

    @Test func anOldSlotMapFollowsMovedAfterASlotMigration() async throws {
        try await withRedisCluster { cluster in
            let url = try RedisURL(cluster.urlString)
            let redis = RedisClient(configuration: .init(url: url, failoverTimeout: .seconds(5)))
            defer { redis.shutdown() }
            let topology = try #require(ClusterTopology.shared(for: url))
            let source = cluster.nodes[0]
            let target = cluster.nodes[1]
            let readKey = "\(tag("moved-get", onPrimary: 0)):key"
            let writeKey = "\(tag("moved-set", onPrimary: 0)):key"
            let pipeTag = tag("moved-pipe", onPrimary: 0)
            let movedCounters = (0..<20).map { "\(pipeTag):\($0)" }
            let stayingCounters = keys("moved-stays:", onPrimary: 2, count: 20)
            let slots = [readKey, writeKey, pipeTag].map(LocalRedisCluster.slot(of:))
            #expect(Set(slots).count == 3)

            // Warm the map.
            #expect(try await redis.send("SET", readKey, "written before the move") == .status("OK"))
            #expect(try await redis.send("SET", writeKey, "old") == .status("OK"))
            let setUp = try await redis.pipeline((movedCounters + stayingCounters).map { RedisCommand("SET", $0, 0) })
            #expect(setUp.allSatisfy { $0 == .status("OK") })
            for slot in slots {
                #expect(topology.owner(ofSlot: slot) == address(source))
            }
            for slot in slots {
                try await cluster.migrateSlot(slot, to: target)
            }
            for slot in slots {
                #expect(try await cluster.owner(ofSlot: slot) === target)
            }
            // Nothing told the client: its map still names the source.
            let changes = topology.changes
            #expect(slots.allSatisfy { topology.owner(ofSlot: $0) == address(source) })

            #expect(try await redis.send("GET", readKey) == bulk("written before the move"))
            #expect(topology.owner(ofSlot: slots[0]) == address(target), "MOVED corrected the map")
            #expect(topology.owner(ofSlot: slots[1]) == address(source), "only the slot that moved")
            #expect(topology.changes == changes + 1)

            #expect(try await redis.send("SET", writeKey, "written after the move") == .status("OK"))
            #expect(topology.owner(ofSlot: slots[1]) == address(target))
            let onTarget = try await onNode(
                cluster,
                target,
                [RedisCommand("CLUSTER", "GETKEYSINSLOT", slots[1], 10)]
            )
            #expect(onTarget[0] == .array([bulk(writeKey)]))
            let onSource = try await onNode(cluster, source, [RedisCommand("CLUSTER", "COUNTKEYSINSLOT", slots[1])])
            #expect(onSource[0] == .integer(0))
            #expect(try await redis.send("GET", writeKey) == bulk("written after the move"))

            // A pipeline of keys of the moved slot and of a slot that stayed, interleaved, with WAIT: in order. The
            // keyless commands after a redirected command go with it (CLUSTER MYID names the node).
            let targetID = try #require(cluster.nodeID(of: target))
            let stayingID = try #require(cluster.nodeID(of: cluster.nodes[2]))
            var commands: [RedisCommand] = []
            var expected: [Expected] = []
            for index in 0..<20 {
                commands.append(RedisCommand("INCRBY", movedCounters[index], index + 100))
                expected.append(.integer(index + 100))
                if index % 5 == 2 {
                    commands.append(RedisCommand("CLUSTER", "MYID"))
                    expected.append(.bulk(targetID))
                }
                commands.append(RedisCommand("INCRBY", stayingCounters[index], index + 200))
                expected.append(.integer(index + 200))
                if index % 5 == 0 {
                    commands.append(RedisCommand("WAIT", 0, 0))
                    expected.append(.wait)
                }
                if index % 5 == 3 {
                    commands.append(RedisCommand("CLUSTER", "MYID"))
                    expected.append(.bulk(stayingID))
                }
            }
            let replies = try await redis.pipeline(commands)
            try #require(replies.count == expected.count)
            for (index, (reply, want)) in zip(replies, expected).enumerated() {
                #expect(want.matches(reply), "#\(index) \(commands[index].name): \(reply), expected \(want)")
            }
            #expect(topology.owner(ofSlot: slots[2]) == address(target))
            let held = try await keysOnNode(cluster, target, matching: "\(pipeTag):*")
            #expect(held == Set(movedCounters))
        }
    }

    // MARK: - ASK, TRYAGAIN, CLUSTERDOWN

    @Test func askIsFollowedButFunctionCallsAndRefusalsWaitUntilTheClusterSettles() async throws {
        try await withRedisCluster { cluster in
            let url = try RedisURL(cluster.urlString)
            let quick = RedisClient(configuration: .init(url: url, failoverTimeout: .seconds(1)))
            defer { quick.shutdown() }
            let patient = RedisClient(configuration: .init(url: url, failoverTimeout: .seconds(20)))
            defer { patient.shutdown() }
            let source = cluster.nodes[0]
            let target = cluster.nodes[1]
            let other = cluster.nodes[2]
            let sourceID = try #require(cluster.nodeID(of: source))
            let targetID = try #require(cluster.nodeID(of: target))
            let askTag = tag("ask", onPrimary: 0)
            let slot = LocalRedisCluster.slot(of: askTag)
            let moved = "\(askTag):moved"
            let stays = "\(askTag):stays"
            let added = "\(askTag):added"
            let elsewhere = keys("ask-elsewhere:", onPrimary: 2, count: 1)[0]
            #expect(try await quick.send("SET", moved, "the migrated value") == .status("OK"))
            #expect(try await quick.send("SET", stays, "not moved yet") == .status("OK"))

            // Half a migration, by hand: one of the slot's two keys is on the target.
            let importing = try await onNode(cluster, target, [setSlot(slot, "IMPORTING", sourceID)])
            let migrating = try await onNode(cluster, source, [setSlot(slot, "MIGRATING", targetID)])
            #expect(importing == [.status("OK")] && migrating == [.status("OK")])
            #expect(try await onNode(cluster, source, [migrate(moved, to: target)]) == [.status("OK")])
            #expect(try await countKeys(cluster, source, slot) == 1)
            #expect(try await countKeys(cluster, target, slot) == 1)

            // Plain commands follow ASK: the moved key and the one still on the source, alone and in a pipeline
            // (a new key is written on the target, and read back from there).
            #expect(try await quick.send("GET", moved) == bulk("the migrated value"))
            #expect(try await quick.send("GET", stays) == bulk("not moved yet"))
            let replies = try await quick.pipeline([
                RedisCommand("GET", moved), RedisCommand("SET", added, "written mid-move"), RedisCommand("GET", stays),
                RedisCommand("INCR", elsewhere), RedisCommand("GET", added), RedisCommand("GET", moved),
            ])
            #expect(
                replies == [
                    bulk("the migrated value"), .status("OK"), bulk("not moved yet"), .integer(1),
                    bulk("written mid-move"), bulk("the migrated value"),
                ]
            )
            #expect(try await countKeys(cluster, target, slot) == 2)
            #expect(try await countKeys(cluster, source, slot) == 1)

            // A script on a key of the migrating slot is not sent after ASKING: it waits, and gives up after the
            // failover timeout.
            let script = RedisCommand("EVAL", "return redis.call('GET', KEYS[1])", 1, moved)
            let clock = ContinuousClock()
            let started = clock.now
            let gaveUp = await #expect(throws: RedisClientError.self) {
                _ = try await quick.send(script)
            }
            #expect(gaveUp?.code == .unavailable)
            #expect(gaveUp?.message.contains("slot \(slot) is being migrated") == true, "\(gaveUp?.message ?? "")")
            let waited = clock.now - started
            #expect(waited >= .milliseconds(900) && waited < .seconds(10), "the script call gave up after \(waited)")
            #expect(try await evalCalls(cluster, target) == 0, "the script ran on the importing node")

            // A command on two keys of the slot, one moved: TRYAGAIN, waited through, then given up.
            let tryAgain = await #expect(throws: RedisClientError.self) {
                _ = try await quick.send("MGET", moved, stays)
            }
            #expect(tryAgain?.code == .unavailable)
            #expect(tryAgain?.message.contains("TRYAGAIN") == true, "\(tryAgain?.message ?? "")")

            // With a longer timeout both wait for the migration to end, and then run on the new owner.
            let scriptDone = Flag()
            let mgetDone = Flag()
            let scriptCall = Task {
                defer { scriptDone.set() }
                return try await patient.send(script)
            }
            let mgetCall = Task {
                defer { mgetDone.set() }
                return try await patient.send("MGET", moved, stays)
            }
            try await Task.sleep(for: .milliseconds(1500))
            #expect(!scriptDone.isSet && !mgetDone.isSet, "a call did not wait for the migration")
            #expect(try await evalCalls(cluster, target) == 0, "the script ran on the importing node")
            // Finish: the rest of the keys, then the new owner on every primary, the target first.
            #expect(try await onNode(cluster, source, [migrate(stays, to: target)]) == [.status("OK")])
            for node in [target, source, other] {
                #expect(try await onNode(cluster, node, [setSlot(slot, "NODE", targetID)]) == [.status("OK")])
            }
            #expect(try await scriptCall.value == bulk("the migrated value"))
            #expect(try await mgetCall.value == .array([bulk("the migrated value"), bulk("not moved yet")]))
            #expect(try await evalCalls(cluster, target) == 1)
            #expect(try await evalCalls(cluster, source) == 0)
            #expect(try await countKeys(cluster, target, slot) == 3)
            #expect(
                try await quick.send("MGET", moved, stays, added)
                    == .array([bulk("the migrated value"), bulk("not moved yet"), bulk("written mid-move")])
            )

            // A slot no node serves: CLUSTERDOWN, waited through, then given up; served again, the call succeeds.
            #expect(try await quick.send("SET", elsewhere, "served again") == .status("OK"))
            let downSlot = LocalRedisCluster.slot(of: elsewhere)
            #expect(
                try await onNode(cluster, other, [RedisCommand("CLUSTER", "DELSLOTS", downSlot)]) == [.status("OK")]
            )
            let down = await #expect(throws: RedisClientError.self) {
                _ = try await quick.send("GET", elsewhere)
            }
            #expect(down?.code == .unavailable)
            #expect(down?.message.contains("CLUSTERDOWN") == true, "\(down?.message ?? "")")
            let readDone = Flag()
            let read = Task {
                defer { readDone.set() }
                return try await patient.send("GET", elsewhere)
            }
            try await Task.sleep(for: .milliseconds(1000))
            #expect(!readDone.isSet, "the read did not wait for the slot to be served")
            #expect(
                try await onNode(cluster, other, [RedisCommand("CLUSTER", "ADDSLOTS", downSlot)]) == [.status("OK")]
            )
            #expect(try await read.value == bulk("served again"))
        }
    }

    // MARK: - Shard failover

    @Test func aShardFailoverStallsOnlyTheKeysOfThatShard() async throws {
        let options = LocalRedisCluster.Options()
        try await withRedisCluster(options) { cluster in
            let redis = RedisClient(
                configuration: .init(url: try RedisURL(cluster.urlString), failoverTimeout: .seconds(30))
            )
            defer { redis.shutdown() }
            // The first primary: the first seed, and first in the map.
            let killedShard = 0
            let victim = cluster.nodes[killedShard]
            let callers = (0..<3).flatMap { shard in
                keys("failover:", onPrimary: shard, count: 2).map { Caller(shard: shard, key: $0) }
            }
            for caller in callers {
                #expect(
                    try await cluster.owner(ofSlot: LocalRedisCluster.slot(of: caller.key))
                        === cluster.nodes[caller.shard]
                )
            }
            let log = FailoverLog()
            let stop = Flag()
            let clock = ContinuousClock()
            let deadline = options.nodeTimeout + .seconds(10)
            var killedAt = clock.now
            var failedOverAt = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                defer { stop.set() }
                for (index, caller) in callers.enumerated() {
                    group.addTask { await hammer(redis, index, caller, log, stop) }
                }
                try await eventually("every caller to succeed a few times") {
                    callers.indices.allSatisfy { log.successes(of: $0) >= 3 }
                }
                await cluster.kill(victim)
                // Dead and reaped: a call that starts from now on cannot be served by it.
                killedAt = clock.now
                let promoted = try await cluster.waitForFailover(of: victim, timeout: deadline)
                failedOverAt = clock.now
                #expect(promoted === cluster.nodes[killedShard + 3])
                let killedCallers = callers.indices.filter { callers[$0].shard == killedShard }
                try await eventually(timeout: deadline - (failedOverAt - killedAt), "the killed shard's keys") {
                    killedCallers.allSatisfy { log.successes(of: $0, startedAfter: failedOverAt) >= 2 }
                }
                stop.set()
                try await group.waitForAll()
            }
            let events = log.snapshot
            // Only calls that started after the node was dead count.
            let duringOutage = events.successes.filter { $0.began > killedAt && $0.at < failedOverAt }
            let othersDuringOutage = duringOutage.filter { callers[$0.caller].shard != killedShard }.count
            let firstBack = events.successes.filter { callers[$0.caller].shard == killedShard && $0.began > killedAt }
                .map(\.at).min()
            print(
                "shard failover: promoted after \(failedOverAt - killedAt); \(othersDuringOutage) successes on the "
                    + "other shards meanwhile; the killed shard's keys back after "
                    + "\(firstBack.map { "\($0 - killedAt)" } ?? "never"); \(events.successes.count) successes, "
                    + "\(events.lost.count) lost in flight"
            )
            #expect(othersDuringOutage > 0, "no call on the other shards succeeded while the shard was down")
            let back = try #require(firstBack, "the killed shard's keys never worked again")
            #expect(back - killedAt < deadline)
            #expect(events.wrong.isEmpty, "wrong values: \(events.wrong.prefix(5))")
            #expect(events.failures.isEmpty, "failed calls: \(events.failures.prefix(5))")
            #expect(events.lost.count <= callers.count, "lost in flight: \(events.lost)")
            let primaries = try #require(try await redis.clusterPrimaries())
            #expect(Set(primaries) == Set([1, 2, 3].map { address(cluster.nodes[$0]) }))
        }
    }
}

// MARK: - Keys and slots

/// The slots primary `index` serves when a local cluster starts (split evenly, in order).
private func initialSlots(ofPrimary index: Int) -> ClosedRange<Int> {
    (index * LocalRedisCluster.slotCount / 3)...((index + 1) * LocalRedisCluster.slotCount / 3 - 1)
}

/// The first `count` keys `<prefix><n>` whose slots primary `index` serves at start.
private func keys(_ prefix: String, onPrimary index: Int, count: Int) -> [String] {
    var found: [String] = []
    var number = 0
    while found.count < count {
        let key = "\(prefix)\(number)"
        if initialSlots(ofPrimary: index).contains(LocalRedisCluster.slot(of: key)) { found.append(key) }
        number += 1
    }
    return found
}

/// A hash tag, `{…}`, whose slot primary `index` serves at start.
private func tag(_ prefix: String, onPrimary index: Int) -> String {
    "{\(keys(prefix, onPrimary: index, count: 1)[0])}"
}

private func address(_ node: LocalRedisServer) -> RedisURL.Address {
    RedisURL.Address(host: "127.0.0.1", port: node.port)
}

private func bulk(_ text: String) -> RedisReply {
    .bulkString(Array(text.utf8))
}

/// What a reply of a pipeline should be.
private enum Expected: CustomStringConvertible {
    case integer(Int)
    case bulk(String)
    /// `WAIT 0 0`: the number of replicas that had the writes (0 or 1).
    case wait
    /// `TIME`: seconds and microseconds.
    case time

    func matches(_ reply: RedisReply) -> Bool {
        switch self {
        case .integer(let value): reply == .integer(value)
        case .bulk(let text): reply == RedisClientTests.bulk(text)
        case .wait: reply == .integer(0) || reply == .integer(1)
        case .time: reply.array.map { $0.count == 2 && $0.allSatisfy { $0.int != nil } } ?? false
        }
    }

    var description: String {
        switch self {
        case .integer(let value): "(integer) \(value)"
        case .bulk(let text): "\"\(text)\""
        case .wait: "WAIT's count"
        case .time: "TIME's pair"
        }
    }
}

// MARK: - One node, by hand

/// Sends keyless commands to one node over a plain connection, after `CLUSTER MYID` to make sure that node answered
/// (a `redis://` URL that once got `MOVED` routes by slot, and keyless commands to any primary).
private func onNode(
    _ cluster: LocalRedisCluster,
    _ node: LocalRedisServer,
    _ commands: [RedisCommand]
) async throws -> [RedisReply] {
    let connection = RedisConnection(
        configuration: .init(url: node.url, failoverTimeout: .zero, followsClusterRedirects: false)
    )
    defer { connection.close() }
    let replies = try await connection.pipeline([RedisCommand("CLUSTER", "MYID")] + commands)
    let id = try #require(cluster.nodeID(of: node))
    try #require(replies[0] == bulk(id), "127.0.0.1:\(node.port) was not the node that answered")
    return Array(replies.dropFirst())
}

/// The keys matching `pattern` on one node (`SCAN`, which sees only the node's own keys).
private func keysOnNode(
    _ cluster: LocalRedisCluster,
    _ node: LocalRedisServer,
    matching pattern: String
) async throws -> Set<String> {
    var keys: Set<String> = []
    var cursor = "0"
    repeat {
        let reply = try await onNode(cluster, node, [RedisCommand("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)])[0]
        let parts = try #require(reply.array, "SCAN: \(reply)")
        try #require(parts.count == 2)
        cursor = try #require(parts[0].string)
        keys.formUnion(try #require(parts[1].array).compactMap(\.string))
    } while cursor != "0"
    return keys
}

/// `SCAN … MATCH pattern` through the cluster client, on the node that serves `key`'s slot, until the cursor is 0.
private func scan(_ redis: RedisClient, matching pattern: String, bySlotOf key: String) async throws -> Set<String> {
    var keys: Set<String> = []
    var cursor = "0"
    repeat {
        let reply = try await redis.send(
            RedisCommand("SCAN", cursor, "MATCH", pattern, "COUNT", 1000).routed(bySlotOf: key)
        )
        let parts = try #require(reply.array, "SCAN: \(reply)")
        try #require(parts.count == 2)
        cursor = try #require(parts[0].string)
        keys.formUnion(try #require(parts[1].array).compactMap(\.string))
    } while cursor != "0"
    return keys
}

private func countKeys(_ cluster: LocalRedisCluster, _ node: LocalRedisServer, _ slot: Int) async throws -> Int {
    try await onNode(cluster, node, [RedisCommand("CLUSTER", "COUNTKEYSINSLOT", slot)])[0].int ?? -1
}

private func blockedClients(_ cluster: LocalRedisCluster, _ node: LocalRedisServer) async throws -> Int {
    let info = try await onNode(cluster, node, [RedisCommand("INFO", "clients")])[0].string ?? ""
    return info.split(separator: "\r\n").first { $0.hasPrefix("blocked_clients:") }
        .flatMap { Int($0.dropFirst("blocked_clients:".count)) } ?? -1
}

/// How many times `EVAL` ran on a node (`INFO commandstats`; refused calls are not counted).
private func evalCalls(_ cluster: LocalRedisCluster, _ node: LocalRedisServer) async throws -> Int {
    let info = try await onNode(cluster, node, [RedisCommand("INFO", "commandstats")])[0].string ?? ""
    guard let line = info.split(separator: "\r\n").first(where: { $0.hasPrefix("cmdstat_eval:") }) else { return 0 }
    let calls = line.dropFirst("cmdstat_eval:".count).split(separator: ",").first { $0.hasPrefix("calls=") }
    return calls.flatMap { Int($0.dropFirst("calls=".count)) } ?? -1
}

private func setSlot(_ slot: Int, _ state: String, _ nodeID: String) -> RedisCommand {
    RedisCommand("CLUSTER", "SETSLOT", slot, state, nodeID)
}

/// `MIGRATE` of one key from the node it is sent to, to `target`.
private func migrate(_ key: String, to target: LocalRedisServer) -> RedisCommand {
    RedisCommand("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", key)
}

// MARK: - Failover callers

private final class Flag: Sendable {
    private let value = Atomic(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}

/// A caller of the failover test: it writes and reads one key, of one shard.
private struct Caller: Sendable {
    var shard: Int
    var key: String
}

/// What the failover test's callers saw.
private final class FailoverLog: Sendable {
    struct Events: Sendable {
        /// Write-and-read rounds that succeeded: when they started and ended.
        var successes: [(caller: Int, began: ContinuousClock.Instant, at: ContinuousClock.Instant)] = []
        /// Calls that failed with connectionLost (in flight when the node died).
        var lost: [String] = []
        /// Replies that were not what was written.
        var wrong: [String] = []
        /// Calls that failed otherwise.
        var failures: [String] = []
    }

    private let events = Mutex(Events())

    var snapshot: Events { events.withLock { $0 } }

    func record(_ change: (inout Events) -> Void) { events.withLock { change(&$0) } }

    /// The caller's successful rounds (that started after `instant`).
    func successes(of caller: Int, startedAfter instant: ContinuousClock.Instant? = nil) -> Int {
        events.withLock { events in
            events.successes.count { success in
                guard success.caller == caller else { return false }
                guard let instant else { return true }
                return success.began > instant
            }
        }
    }
}

/// Writes a counter to the caller's key and reads it back until `stop`: `SET n` with `WAIT 1 50`, then `GET`, which
/// must return a value written (at least the last one a replica confirmed: a failover may lose later ones).
private func hammer(_ redis: RedisClient, _ index: Int, _ caller: Caller, _ log: FailoverLog, _ stop: Flag) async {
    var attempted = 0
    var confirmed = 0
    while !stop.isSet && !Task.isCancelled {
        attempted += 1
        let began = ContinuousClock.now
        do {
            let written = try await redis.pipeline(
                [RedisCommand("SET", caller.key, attempted), RedisCommand("WAIT", 1, 50)],
                blockingFor: .milliseconds(50)
            )
            if written[0] != .status("OK") {
                log.record { $0.wrong.append("SET \(caller.key) \(attempted): \(written[0])") }
            } else if (written[1].int ?? 0) >= 1 {
                confirmed = attempted
            }
            let read = try await redis.send("GET", caller.key)
            if let value = read.int, (confirmed...attempted).contains(value) {
                let now = ContinuousClock.now
                log.record { $0.successes.append((index, began, now)) }
            } else {
                log.record { $0.wrong.append("GET \(caller.key): \(read), written \(confirmed)...\(attempted)") }
            }
        } catch let error as RedisClientError where error.code == .connectionLost {
            log.record { $0.lost.append("\(caller.key): \(error.message)") }
        } catch {
            log.record { $0.failures.append("\(caller.key): \(error)") }
        }
        try? await Task.sleep(for: .milliseconds(5))
    }
}
