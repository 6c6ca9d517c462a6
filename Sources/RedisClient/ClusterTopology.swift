import Synchronization

/// What this process knows of a Redis Cluster: which primary serves each slot. Shared by every connection made with
/// the same URL (one map per cluster and process), updated from `CLUSTER SLOTS` and from each `MOVED` reply.
///
/// For a `redis://` URL the map starts empty and unused: the server is taken to be a single server until it answers a
/// command with `MOVED` (or ``RedisClient/clusterPrimaries()`` finds it is a cluster node); from then on every
/// connection of the URL routes by slot.
final class ClusterTopology: Sendable {
    private struct State {
        /// Index into `nodes` per slot, or -1 when no node is known to serve it.
        var owners = [Int16](repeating: -1, count: ClusterSlot.count)
        var nodes: [RedisURL.Address] = []
        /// The nodes that serve at least one slot, kept in step with `owners`.
        var primaries: [RedisURL.Address] = []
        var lastRefresh: ContinuousClock.Instant?
        var changes = 0
    }

    /// The nodes to ask first (the URL's seeds).
    let seeds: [RedisURL.Address]
    private let state = Mutex(State())
    private let clusterMode: Atomic<Bool>

    private init(seeds: [RedisURL.Address], isCluster: Bool) {
        self.seeds = seeds
        clusterMode = Atomic(isCluster)
    }

    /// Whether the URL's server is (known to be) a cluster.
    var isCluster: Bool { clusterMode.load(ordering: .relaxed) }

    /// Marks the server as a cluster node: from now on commands are routed by slot.
    func markCluster() { clusterMode.store(true, ordering: .relaxed) }

    /// How many times the map changed (a `MOVED`, a refresh with a different owner): for tests and logs.
    var changes: Int { state.withLock { $0.changes } }

    /// The primary serving `slot`, or `nil` when none is known.
    func owner(ofSlot slot: Int) -> RedisURL.Address? {
        state.withLock { state in
            let index = Int(state.owners[slot])
            return index >= 0 ? state.nodes[index] : nil
        }
    }

    /// The primaries that serve at least one slot, in the order the map lists them.
    var primaries: [RedisURL.Address] { state.withLock { $0.primaries } }

    private static func primaries(_ state: State) -> [RedisURL.Address] {
        var used = [Bool](repeating: false, count: state.nodes.count)
        for owner in state.owners where owner >= 0 { used[Int(owner)] = true }
        return state.nodes.indices.filter { used[$0] }.map { state.nodes[$0] }
    }

    /// The nodes to ask for the map: the known primaries, then the seeds.
    var nodesToAsk: [RedisURL.Address] {
        let known = primaries
        return known + seeds.filter { !known.contains($0) }
    }

    /// Whether the map was refreshed less than `interval` ago.
    func refreshed(within interval: Duration) -> Bool {
        state.withLock { state in state.lastRefresh.map { ContinuousClock.now - $0 < interval } ?? false }
    }

    /// Records a `MOVED <slot> <address>` reply: the slot is served there now.
    func moved(slot: Int, to address: RedisURL.Address) {
        state.withLock { state in
            let index = Self.index(of: address, in: &state.nodes)
            guard state.owners[slot] != index else { return }
            state.changes += 1
            state.owners[slot] = index
            state.primaries = Self.primaries(state)
        }
    }

    /// Replaces the map with a `CLUSTER SLOTS` reply got from `via` (which stands for nodes announced without an
    /// address). Returns `false` when the reply is not a slot map.
    @discardableResult
    func update(slots reply: RedisReply, via: RedisURL.Address) -> Bool {
        guard let ranges = reply.array else { return false }
        var assignments: [(ClosedRange<Int>, RedisURL.Address)] = []
        for range in ranges {
            guard let fields = range.array, fields.count >= 3, let start = fields[0].int, let end = fields[1].int,
                start >= 0, end < ClusterSlot.count, start <= end,
                let primary = fields[2].array, primary.count >= 2, let port = primary[1].int
            else { return false }
            let announced = primary[0].string ?? ""
            let host = announced.isEmpty || announced == "?" ? via.host : announced
            assignments.append((start...end, RedisURL.Address(host: host, port: port)))
        }
        state.withLock { state in
            var owners = [Int16](repeating: -1, count: ClusterSlot.count)
            for (range, address) in assignments {
                let index = Self.index(of: address, in: &state.nodes)
                for slot in range { owners[slot] = index }
            }
            if owners != state.owners { state.changes += 1 }
            state.owners = owners
            state.primaries = Self.primaries(state)
            state.lastRefresh = .now
        }
        return true
    }

    private static func index(of address: RedisURL.Address, in nodes: inout [RedisURL.Address]) -> Int16 {
        if let index = nodes.firstIndex(of: address) { return Int16(index) }
        nodes.append(address)
        return Int16(nodes.count - 1)
    }

    // MARK: - One map per URL

    private static let registry = Mutex<[RedisURL: ClusterTopology]>([:])

    /// The map shared by every connection of `url`; `nil` for URLs that can never reach a cluster (Unix sockets,
    /// Sentinel).
    static func shared(for url: RedisURL) -> ClusterTopology? {
        let seeds: [RedisURL.Address]
        let isCluster: Bool
        switch url.endpoint {
        case .tcp(let host, let port):
            seeds = [RedisURL.Address(host: host, port: port)]
            isCluster = false
        case .cluster(let cluster):
            seeds = cluster.seeds
            isCluster = true
        case .unix, .sentinel:
            return nil
        }
        return registry.withLock { registry in
            if let known = registry[url] { return known }
            let topology = ClusterTopology(seeds: seeds, isCluster: isCluster)
            registry[url] = topology
            return topology
        }
    }
}
