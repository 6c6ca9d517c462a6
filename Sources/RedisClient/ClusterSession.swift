import Foundation

/// The cluster side of one connection: a hiredis session per node it has talked to, and the routing of each command
/// to the primary of its key's slot.
///
/// Confined to the connection's thread, like ``HiredisSession``. A request (one command or a pipeline) is cut into
/// units, each a keyed command with the keyless commands that follow it (`WAIT` after a write stays with the write);
/// units are grouped by node, each group is one round trip, and the replies are put back in request order. A unit
/// refused by its node is sent again, alone, and only it:
/// - `MOVED`: the slot is served elsewhere now; the map is corrected and the unit goes there at once.
/// - `ASK` during a slot migration: a plain command is sent once to the importing node after `ASKING`. A function or
///   script call (`FCALL`, `EVAL`) is **not**: it reads and writes keys it derives from its one declared key, and on
///   a half-moved slot it would see half the queue. It waits, and is sent again, until the migration ends (`MOVED`).
/// - `TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, … (``FailoverCondition``), or a node that cannot be reached (a primary
///   that died, before its replica is promoted): the map is refreshed and the unit sent again with backoff, for up
///   to ``RedisClient/Configuration/failoverTimeout``.
/// A command whose connection broke after it was sent is never sent again (it may have run): that fails the call.
final class ClusterSession {
    private let configuration: RedisClient.Configuration
    private let topology: ClusterTopology
    private let publishSocket: (Int32) -> Void
    private var sessions: [RedisURL.Address: HiredisSession] = [:]
    /// When a node last could not be reached: it is asked for the map last.
    private var unreachableSince: [RedisURL.Address: ContinuousClock.Instant] = [:]

    init(
        configuration: RedisClient.Configuration,
        topology: ClusterTopology,
        adopting existing: (RedisURL.Address, HiredisSession)? = nil,
        publishSocket: @escaping (Int32) -> Void
    ) {
        self.configuration = configuration
        self.topology = topology
        self.publishSocket = publishSocket
        if let (address, session) = existing { sessions[address] = session }
    }

    func disconnect() {
        for session in sessions.values { session.disconnect() }
    }

    /// A keyed command and the keyless commands around it, sent together to one node.
    fileprivate struct Unit {
        var indices: Range<Int>
        var target: ClusterSlot.Target
        /// The command whose reply tells whether the node took the unit (the keyed one).
        var leader: Int
        /// Whether the unit calls a function or script (which must not follow `ASK`).
        var callsCode: Bool
    }

    private enum Verdict {
        case taken
        case moved(slot: Int, to: RedisURL.Address)
        case ask(RedisURL.Address)
        case refused(FailoverCondition)
    }

    /// Sends `commands` to the nodes that serve their slots and returns the replies in order.
    ///
    /// - Parameter earlier: Replies already got for the whole request from one node (a `redis://` URL whose server
    ///   answered `MOVED`): units it took keep their replies, the rest are routed.
    func execute(
        _ commands: [RedisCommand],
        blockingFor: Duration?,
        earlier: (RedisURL.Address, [RedisReply])? = nil,
        wasInterrupted: () -> Bool
    ) throws(RedisClientError) -> [RedisReply] {
        let units = Self.units(of: commands)
        var replies = [RedisReply?](repeating: nil, count: commands.count)
        var todo = Array(units.indices)
        var asking: [Int: RedisURL.Address] = [:]
        var mustWait = false
        var mustRefresh = false
        var problem = ""
        if let (address, got) = earlier, got.count == commands.count {
            todo = []
            for index in units.indices {
                let unit = units[index]
                for position in unit.indices { replies[position] = got[position] }
                _ = judge(
                    index,
                    unit,
                    got[unit.leader],
                    from: address,
                    &todo,
                    &asking,
                    &mustWait,
                    &mustRefresh,
                    &problem
                )
            }
        }
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.failoverTimeout
        var delay = Duration.milliseconds(10)
        var rounds = 0
        while true {
            if !todo.isEmpty && (mustWait || rounds > 0) {
                if wasInterrupted() {
                    throw RedisClientError(
                        .closed,
                        "the call to the Redis Cluster at \(configuration.url) was interrupted"
                    )
                }
                if mustRefresh || rounds > 8 { refreshMap() }
                if mustWait || rounds > 16 {
                    let now = clock.now
                    guard now < deadline else {
                        throw RedisClientError(
                            .unavailable,
                            "the Redis Cluster at \(configuration.url) did not take the command for "
                                + "\(configuration.failoverTimeout): \(problem); check CLUSTER INFO and CLUSTER NODES "
                                + "(a migration left half done is finished with redis-cli --cluster fix)"
                        )
                    }
                    HiredisSession.sleep(min(delay, deadline - now))
                    delay = min(delay * 2, .milliseconds(500))
                }
            }
            guard !todo.isEmpty else { break }
            rounds += 1
            mustWait = false
            mustRefresh = false
            if topology.primaries.isEmpty { refreshMap() }
            // Group the units by node, in request order; units redirected by ASK go alone, after ASKING.
            var groups: [(address: RedisURL.Address, units: [Int], asking: Bool)] = []
            for index in todo {
                if let address = asking[index] {
                    groups.append((address, [index], true))
                    continue
                }
                let address = self.address(for: units[index].target)
                if let at = groups.firstIndex(where: { $0.address == address && !$0.asking }) {
                    groups[at].units.append(index)
                } else {
                    groups.append((address, [index], false))
                }
            }
            asking = [:]
            todo = []
            for group in groups {
                var sent = group.units.flatMap { commands[units[$0].indices] }
                if group.asking { sent.insert(RedisCommand("ASKING"), at: 0) }
                let session = session(for: group.address)
                publishSocket(session.socket)
                let got: [RedisReply]
                do {
                    got = try session.execute(
                        sent,
                        blockingFor: blockingFor,
                        retriesRefusals: false,
                        wasInterrupted: wasInterrupted
                    )
                    unreachableSince[group.address] = nil
                } catch  where error.code == .connectionFailed {
                    // Nothing was sent: the node is down (a failover will promote its replica) or gone.
                    unreachableSince[group.address] = clock.now
                    todo += group.units
                    mustWait = true
                    mustRefresh = true
                    problem = error.message
                    continue
                }
                var offset = group.asking ? 1 : 0
                for index in group.units {
                    let unit = units[index]
                    let base = offset - unit.indices.lowerBound
                    for position in unit.indices { replies[position] = got[base + position] }
                    offset += unit.indices.count
                    _ = judge(
                        index,
                        unit,
                        got[base + unit.leader],
                        from: group.address,
                        &todo,
                        &asking,
                        &mustWait,
                        &mustRefresh,
                        &problem
                    )
                }
            }
        }
        return replies.map { $0 ?? .null }
    }

    /// Looks at a unit's reply: `true` when its node took it, else queues it again and says how.
    private func judge(
        _ index: Int,
        _ unit: Unit,
        _ reply: RedisReply,
        from address: RedisURL.Address,
        _ todo: inout [Int],
        _ asking: inout [Int: RedisURL.Address],
        _ mustWait: inout Bool,
        _ mustRefresh: inout Bool,
        _ problem: inout String
    ) -> Bool {
        switch Self.verdict(reply, from: address) {
        case .taken:
            return true
        case .moved(let slot, let target):
            topology.moved(slot: slot, to: target)
            todo.append(index)
        case .ask(let target):
            todo.append(index)
            if unit.callsCode {
                mustWait = true
                let slot = unit.slot.map { "slot \($0)" } ?? "a slot"
                problem =
                    "\(slot) is being migrated from \(address) to \(target), and a function call waits until all of its "
                    + "keys have moved"
            } else {
                asking[index] = target
            }
        case .refused(let condition):
            todo.append(index)
            mustWait = true
            if condition.leavesTheServer {
                sessions[address]?.disconnect()
                mustRefresh = true
            }
            if condition.code == "CLUSTERDOWN" { mustRefresh = true }
            problem = "\(address) \(condition.meaning): \(condition.message)"
        }
        return false
    }

    private static func verdict(_ reply: RedisReply, from address: RedisURL.Address) -> Verdict {
        guard case .error(let message) = reply else { return .taken }
        if message.hasPrefix("MOVED ") || message.hasPrefix("ASK ") {
            let parts = message.split(separator: " ")
            if parts.count == 3, let slot = Int(parts[1]), (0..<ClusterSlot.count).contains(slot),
                let target = redirectAddress(parts[2], default: address)
            {
                return message.hasPrefix("MOVED ") ? .moved(slot: slot, to: target) : .ask(target)
            }
            return .taken
        }
        if let condition = FailoverCondition(reply: reply) { return .refused(condition) }
        return .taken
    }

    /// `host:port` of a redirect (`:port` when the node does not know its own address: the host asked).
    private static func redirectAddress(_ text: Substring, default fallback: RedisURL.Address) -> RedisURL.Address? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else {
            return nil
        }
        var host = text[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        return RedisURL.Address(host: host.isEmpty ? fallback.host : String(host), port: port)
    }

    private func address(for target: ClusterSlot.Target) -> RedisURL.Address {
        switch target {
        case .node(let address): return address
        case .slot(let slot):
            if let owner = topology.owner(ofSlot: slot) { return owner }
        case .anywhere: break
        }
        // A keyless command: any primary, preferably one that answered lately.
        let now = ContinuousClock.now
        let primaries = topology.primaries
        let reachable = primaries.first { unreachableSince[$0].map { now - $0 >= .seconds(5) } ?? true }
        return reachable ?? primaries.first ?? topology.seeds[0]
    }

    private func session(for address: RedisURL.Address) -> HiredisSession {
        if let session = sessions[address] { return session }
        var nodeConfiguration = configuration
        nodeConfiguration.url = configuration.url.node(address)
        let session = HiredisSession(
            configuration: nodeConfiguration,
            retriesConnects: false,
            publishSocket: publishSocket
        )
        sessions[address] = session
        return session
    }

    /// Asks the nodes in turn for `CLUSTER SLOTS` (those that were unreachable a moment ago last), at most every
    /// 100 ms for the whole process.
    private func refreshMap() {
        if topology.refreshed(within: .milliseconds(100)) && !topology.primaries.isEmpty { return }
        let now = ContinuousClock.now
        let nodes = topology.nodesToAsk.sorted { first, second in
            let firstDown = unreachableSince[first].map { now - $0 < .seconds(5) } ?? false
            let secondDown = unreachableSince[second].map { now - $0 < .seconds(5) } ?? false
            return !firstDown && secondDown
        }
        for address in nodes {
            do {
                let reply = try session(for: address).execute(
                    [RedisCommand("CLUSTER", "SLOTS")],
                    blockingFor: nil,
                    retriesRefusals: false,
                    wasInterrupted: { false }
                )
                if topology.update(slots: reply[0], via: address) { return }
            } catch {
                unreachableSince[address] = .now
            }
        }
    }

    // MARK: - Units

    private static func units(of commands: [RedisCommand]) -> [Unit] {
        var units: [Unit] = []
        for (index, command) in commands.enumerated() {
            let (target, callsCode) = ClusterSlot.routing(of: command)
            if target == .anywhere, !units.isEmpty {
                units[units.count - 1].indices = units[units.count - 1].indices.lowerBound..<index + 1
                continue
            }
            if target != .anywhere, let last = units.last, last.target == .anywhere {
                // Keyless commands at the start go with the first keyed command.
                units[units.count - 1] = Unit(
                    indices: last.indices.lowerBound..<index + 1,
                    target: target,
                    leader: index,
                    callsCode: callsCode || last.callsCode
                )
                continue
            }
            units.append(Unit(indices: index..<index + 1, target: target, leader: index, callsCode: callsCode))
        }
        return units
    }
}

extension ClusterSession.Unit {
    fileprivate var slot: Int? {
        if case .slot(let slot) = target { return slot }
        return nil
    }
}
