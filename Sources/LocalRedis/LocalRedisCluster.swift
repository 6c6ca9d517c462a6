import Foundation
import RedisClient
import Synchronization

/// A private Redis Cluster on loopback: primaries and their replicas, each a ``LocalRedisServer`` on a free port with
/// cluster mode on, formed by hand (slots split evenly, replica *k* following primary *k*). For tests and for trying
/// resharding and failovers by hand.
///
/// ```swift
/// let cluster = try await LocalRedisCluster.start()
/// let owner = try await cluster.owner(ofSlot: LocalRedisCluster.slot(of: "{user42}:profile"))
/// …
/// await cluster.stop()
/// ```
///
/// Tests use `withRedisCluster` (in `ConveyorTesting`), which always stops the cluster.
///
/// Commands go to one node at a time over plain `redis://` connections: this type speaks the cluster protocol
/// itself (`CLUSTER MEET`, `SETSLOT`, `MIGRATE`) and needs no cluster-aware client.
public final class LocalRedisCluster: Sendable {
    /// How to start the cluster.
    public struct Options: Sendable {
        /// How many primaries to start; the 16384 slots are split evenly over them, in order. A failover needs a
        /// majority of primaries to agree, so it needs at least 3.
        public var primaries: Int
        /// How many replicas to start for each primary.
        public var replicasPerPrimary: Int
        /// How long a node must be unreachable before the others hold it failed (`cluster-node-timeout`): a failover
        /// takes a little more than this.
        public var nodeTimeout: Duration
        /// Extra `redis-server` options for every node, for example `["--maxmemory", "64mb"]`.
        public var serverArguments: [String]
        /// Every node listens with TLS only, and the cluster bus and replication run over TLS too (`tls-cluster`,
        /// `tls-replication`); ``LocalRedisCluster/urlString`` is then a `rediss+cluster://` URL. `nil` for plain TCP.
        public var tls: LocalRedisServer.TLSOptions?

        /// Creates options.
        ///
        /// - Parameters:
        ///   - primaries: Primaries to start (3 by default).
        ///   - replicasPerPrimary: Replicas of each primary (1 by default).
        ///   - nodeTimeout: `cluster-node-timeout` (2 s by default).
        ///   - serverArguments: Extra `redis-server` options for every node.
        ///   - tls: TLS for every node, the bus and replication, or `nil`.
        public init(
            primaries: Int = 3,
            replicasPerPrimary: Int = 1,
            nodeTimeout: Duration = .seconds(2),
            serverArguments: [String] = [],
            tls: LocalRedisServer.TLSOptions? = nil
        ) {
            self.tls = tls
            self.primaries = primaries
            self.replicasPerPrimary = replicasPerPrimary
            self.nodeTimeout = nodeTimeout
            self.serverArguments = serverArguments
        }
    }

    /// The options the cluster was started with.
    public let options: Options
    /// Every node: the ``Options/primaries`` primaries at start (primary *k* owning the *k*-th share of the slots),
    /// then the replicas, node `primaries + j` following primary `j % primaries`. Which are primaries now,
    /// ``primaries()`` tells.
    public let nodes: [LocalRedisServer]
    /// The directory holding one data directory per node (`node-1`, `node-2`, …, each with `nodes.conf` and
    /// `redis.log`); removed by ``stop()``.
    public let directory: String
    private let nodeIDs: [String]
    /// What the cluster knew of each primary killed with ``kill(_:)`` just before: its slots and its replicas.
    private let killed = Mutex<[String: PrimaryRecord]>([:])

    /// The address of every node, `127.0.0.1:<port>`, in the order of ``nodes``: seeds for a cluster client.
    public var seedAddresses: [String] { nodes.map { "127.0.0.1:\($0.port)" } }

    /// The cluster's URL naming every node: `redis+cluster://127.0.0.1:<port>,127.0.0.1:<port>,…`, or with TLS
    /// `rediss+cluster://…?ca_file=…` (and the client certificate of ``Options/tls``).
    public var urlString: String {
        guard let tls = options.tls else { return "redis+cluster://" + seedAddresses.joined(separator: ",") }
        var query = ["ca_file=\(tls.caFile)"]
        if let certificate = tls.clientCertificateFile, let key = tls.clientKeyFile {
            query += ["cert_file=\(certificate)", "key_file=\(key)"]
        }
        return "rediss+cluster://" + seedAddresses.joined(separator: ",") + "?" + query.joined(separator: "&")
    }

    private init(options: Options, nodes: [LocalRedisServer], nodeIDs: [String], directory: String) {
        self.options = options
        self.nodes = nodes
        self.nodeIDs = nodeIDs
        self.directory = directory
    }

    /// The number of hash slots of a Redis Cluster.
    public static let slotCount = 16384

    /// Starts every node, forms the cluster and waits until every node reports `cluster_state:ok` with all 16384
    /// slots served, agrees on who owns which slot and who replicates whom, and every replica's link to its primary
    /// is up.
    ///
    /// The cluster is formed deterministically: each node gets its own config epoch, primary *k* adds the *k*-th
    /// range of slots (`CLUSTER ADDSLOTSRANGE`), the first node meets the others (`CLUSTER MEET`), and once every
    /// node knows every other each replica follows its primary (`CLUSTER REPLICATE`).
    ///
    /// - Parameter options: The cluster's shape, node timeout and extra server options.
    /// - Returns: The running cluster; ``stop()`` it when done. When starting fails, every node started is stopped.
    /// - Throws: ``LocalRedisServerError`` when the options are invalid, a node does not start, or the cluster does
    ///   not form within 30 s (with each node's state and the log tails).
    public static func start(_ options: Options = Options()) async throws -> LocalRedisCluster {
        guard options.primaries >= 1, options.primaries <= slotCount, options.replicasPerPrimary >= 0 else {
            throw LocalRedisServerError(
                message: "a local Redis Cluster needs 1 to \(slotCount) primaries and 0 or more replicas per "
                    + "primary, not \(options.primaries) and \(options.replicasPerPrimary)"
            )
        }
        guard options.nodeTimeout >= .milliseconds(1) else {
            throw LocalRedisServerError(
                message: "the cluster node timeout must be at least 1 ms, not \(options.nodeTimeout)"
            )
        }
        let directory = try makeTemporaryDirectory()
        var nodes: [LocalRedisServer] = []
        do {
            var busPorts: [Int] = []
            for index in 0..<options.primaries * (1 + options.replicasPerPrimary) {
                let (node, busPort) = try await startNode(in: directory + "/node-\(index + 1)", options: options)
                nodes.append(node)
                busPorts.append(busPort)
            }
            var nodeIDs: [String] = []
            for node in nodes {
                guard let id = try await command(node, "CLUSTER", "MYID").string else {
                    throw LocalRedisServerError(message: "CLUSTER MYID on \(address(of: node)) gave no node id")
                }
                nodeIDs.append(id)
            }
            let cluster = LocalRedisCluster(options: options, nodes: nodes, nodeIDs: nodeIDs, directory: directory)
            try await cluster.form(busPorts: busPorts)
            return cluster
        } catch {
            await stop(nodes)
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Stops every node, also those killed with ``kill(_:)``, and removes ``directory``. Safe to call more than once.
    public func stop() async {
        await Self.stop(nodes)
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The cluster's node id of a node (`CLUSTER MYID`), or `nil` when it is not one of ``nodes``.
    ///
    /// - Parameter node: One of ``nodes``.
    /// - Returns: Its 40-character node id.
    public func nodeID(of node: LocalRedisServer) -> String? {
        nodes.firstIndex { $0 === node }.map { nodeIDs[$0] }
    }

    /// The primaries now, as the first running node that answers sees them (`CLUSTER NODES`), in the order of
    /// ``nodes``.
    ///
    /// - Returns: Every node flagged a primary and not failed. A primary just killed is one until the cluster marks
    ///   it failed (after ``Options/nodeTimeout`` and agreement).
    /// - Throws: ``LocalRedisServerError`` when no node answers.
    public func primaries() async throws -> [LocalRedisServer] {
        let (_, view) = try await anyView()
        let ids = Set(view.filter { $0.isPrimary && !$0.isFailed }.map(\.id))
        return nodes.indices.filter { ids.contains(nodeIDs[$0]) }.map { nodes[$0] }
    }

    /// The primary that owns a slot, as the first running node that answers sees it (`CLUSTER NODES`).
    ///
    /// - Parameter slot: A slot, 0 to 16383: ``slot(of:)`` of a key.
    /// - Returns: The node that serves the slot (during ``migrateSlot(_:to:keysPerStep:pauseBetweenSteps:)``, the
    ///   source until the move is done).
    /// - Throws: ``LocalRedisServerError`` when the slot is out of range, no node answers, or no node of this
    ///   cluster owns the slot.
    public func owner(ofSlot slot: Int) async throws -> LocalRedisServer {
        try Self.checkSlot(slot)
        let (asked, view) = try await anyView()
        guard let entry = view.first(where: { $0.isPrimary && $0.owns(slot) }) else {
            throw LocalRedisServerError(message: "slot \(slot) has no owner in the view of \(Self.address(of: asked))")
        }
        guard let node = node(withID: entry.id) else {
            throw LocalRedisServerError(
                message: "slot \(slot) is owned by node \(entry.id) at 127.0.0.1:\(entry.port), not one of this "
                    + "cluster's nodes"
            )
        }
        return node
    }

    /// The hash slot of a key, as `CLUSTER KEYSLOT` computes it: CRC16 (XMODEM) of the key modulo 16384, or of its
    /// hash tag, the text between the first `{` and the first `}` after it, when that text is not empty.
    ///
    /// - Parameter key: A key; its UTF-8 bytes are hashed.
    /// - Returns: The slot, 0 to 16383.
    public static func slot(of key: String) -> Int {
        let bytes = Array(key.utf8)
        var hashed = bytes[...]
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
            close > open + 1
        {
            hashed = bytes[(open + 1)..<close]
        }
        var crc: UInt16 = 0
        for byte in hashed {
            crc = (crc << 8) ^ crc16Table[Int(UInt8(crc >> 8) ^ byte)]
        }
        return Int(crc) % slotCount
    }

    /// Moves a slot and its keys to another primary with the resharding protocol of `redis-cli --cluster reshard`,
    /// and waits until every running node agrees on the new owner.
    ///
    /// The target is set `IMPORTING` and the source `MIGRATING`; then, step by step, up to `keysPerStep` keys of the
    /// slot (`CLUSTER GETKEYSINSLOT`) are moved with `MIGRATE … KEYS` (without `REPLACE`), pausing between steps.
    /// Meanwhile the slot is half moved, as in a real resharding: the source answers `ASK` for keys it no longer
    /// has. Last, `CLUSTER SETSLOT <slot> NODE <target>` is sent to the target, the source and every other primary.
    ///
    /// - Parameters:
    ///   - slot: The slot to move, 0 to 16383.
    ///   - target: The primary to move it to; moving a slot to its owner does nothing.
    ///   - keysPerStep: Keys moved per `MIGRATE` (100 by default).
    ///   - pauseBetweenSteps: How long to wait after each step, to let a test run commands while the slot is half
    ///     moved (none by default).
    /// - Throws: ``LocalRedisServerError`` when the target is not a running primary of this cluster, a step is
    ///   refused (`BUSYKEY`: a key of the slot exists on the target already, named in the message; then the slot is
    ///   left half moved and calling this again after removing the key finishes the move), or the nodes do not agree
    ///   within 30 s.
    public func migrateSlot(
        _ slot: Int,
        to target: LocalRedisServer,
        keysPerStep: Int = 100,
        pauseBetweenSteps: Duration = .zero
    ) async throws {
        try Self.checkSlot(slot)
        guard keysPerStep >= 1 else {
            throw LocalRedisServerError(message: "keysPerStep must be at least 1, not \(keysPerStep)")
        }
        guard let targetID = nodeID(of: target), target.pid != 0 else {
            throw LocalRedisServerError(
                message: "cannot migrate slot \(slot) to \(Self.address(of: target)): it is not a running node of "
                    + "this cluster"
            )
        }
        let (_, view) = try await anyView()
        guard view.first(where: { $0.id == targetID })?.isPrimary == true else {
            throw LocalRedisServerError(
                message: "cannot migrate slot \(slot) to \(Self.address(of: target)): it is a replica; pick one of "
                    + "primaries()"
            )
        }
        let source = try await owner(ofSlot: slot)
        guard source !== target else { return }
        guard let sourceID = nodeID(of: source), source.pid != 0 else {
            throw LocalRedisServerError(
                message: "cannot migrate slot \(slot) from \(Self.address(of: source)): its owner is not running"
            )
        }
        // The target first, as redis-cli does: the source then sends clients (ASK) to a node that accepts them.
        _ = try await Self.command(target, "CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID)
        _ = try await Self.command(source, "CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID)
        let halfMoved =
            "slot \(slot) is left half moved (MIGRATING on \(Self.address(of: source)), IMPORTING on "
            + "\(Self.address(of: target))): fix the cause and call migrateSlot again to finish the move"
        while true {
            let keys =
                (try await Self.command(source, "CLUSTER", "GETKEYSINSLOT", String(slot), String(keysPerStep)))
                .array?.compactMap(\.bytes) ?? []
            if keys.isEmpty { break }
            let head = ["MIGRATE", "127.0.0.1", String(target.port), "", "0", "10000", "KEYS"]
            let migrate = RedisCommand(arguments: head.map { Array($0.utf8) } + keys)
            let reply = try await Self.send(migrate, to: source, commandTimeout: .seconds(15))
            if let message = reply.errorMessage {
                // The target's refusal comes wrapped: "ERR Target instance replied with error: BUSYKEY …".
                if message.contains("BUSYKEY") {
                    let busy = try await busyKeys(keys, source: source, target: target)
                    throw LocalRedisServerError(
                        message: "MIGRATE of slot \(slot) from \(Self.address(of: source)) to "
                            + "\(Self.address(of: target)) was refused (\(message)): the target has "
                            + (busy.isEmpty ? "a key of the batch" : busy.joined(separator: ", "))
                            + " already, and MIGRATE does not replace keys; delete it on the target (ASKING, then "
                            + "DEL) if the source's copy is the one to keep; \(halfMoved)"
                    )
                }
                throw LocalRedisServerError(
                    message: "MIGRATE of slot \(slot) from \(Self.address(of: source)) to "
                        + "\(Self.address(of: target)) failed: \(message); \(halfMoved)"
                )
            }
            if pauseBetweenSteps > .zero { try await Task.sleep(for: pauseBetweenSteps) }
        }
        let others = try await primaries().filter { $0 !== source && $0 !== target && $0.pid != 0 }
        for node in [target, source] + others {
            _ = try await Self.command(node, "CLUSTER", "SETSLOT", String(slot), "NODE", targetID)
        }
        try await waitUntil("every node to agree that \(Self.address(of: target)) owns slot \(slot)") { views in
            views.allSatisfy { _, view in
                view.first { $0.isPrimary && $0.owns(slot) }?.id == targetID && !view.contains { $0.moving(slot) }
            }
        } describe: { node, view in
            let owner = view.first { $0.isPrimary && $0.owns(slot) }
            return "\(Self.address(of: node)) sees slot \(slot) owned by "
                + (owner.map { "127.0.0.1:\($0.port)" } ?? "no node")
                + (view.contains { $0.moving(slot) } ? " (still migrating or importing)" : "")
        }
    }

    /// Kills a node with `SIGKILL` (``LocalRedisServer/kill()``): a crash, as far as the cluster can tell. Its
    /// directory stays, so ``LocalRedisServer/restart()`` brings it back with its `nodes.conf` and it rejoins.
    ///
    /// - Parameter node: One of ``nodes``. When it is a primary, what the cluster knew of it (its slots and replicas)
    ///   is recorded first for ``waitForFailover(of:timeout:)``.
    public func kill(_ node: LocalRedisServer) async {
        if let id = nodeID(of: node), node.pid != 0, let view = try? await anyView(excluding: node).1,
            let entry = view.first(where: { $0.id == id }), entry.isPrimary
        {
            let record = PrimaryRecord(
                slots: entry.slots,
                replicaIDs: Set(view.filter { $0.primaryID == id }.map(\.id))
            )
            killed.withLock { $0[id] = record }
        }
        await node.kill()
    }

    /// Waits until one of a killed primary's replicas has taken over: every running node reports
    /// `cluster_state:ok` with all 16384 slots served, and sees that replica as a primary owning the killed
    /// primary's slots.
    ///
    /// - Parameters:
    ///   - killedPrimary: A primary stopped with ``kill(_:)`` (or otherwise unreachable).
    ///   - timeout: How long to wait (30 s by default); a failover takes a little more than
    ///     ``Options/nodeTimeout``.
    /// - Returns: The replica that became the primary of those slots.
    /// - Throws: ``LocalRedisServerError`` when the node owned no slots (no replica takes over for a primary without
    ///   slots), or on timeout (with each node's view and the log tails of the replicas).
    public func waitForFailover(
        of killedPrimary: LocalRedisServer,
        timeout: Duration = .seconds(30)
    ) async throws -> LocalRedisServer {
        guard let killedID = nodeID(of: killedPrimary) else {
            throw LocalRedisServerError(message: "\(Self.address(of: killedPrimary)) is not a node of this cluster")
        }
        var record = killed.withLock { $0[killedID] }
        if record == nil {
            let (_, view) = try await anyView(excluding: killedPrimary)
            if let entry = view.first(where: { $0.id == killedID }) {
                record = PrimaryRecord(
                    slots: entry.slots,
                    replicaIDs: Set(view.filter { $0.primaryID == killedID }.map(\.id))
                )
            }
        }
        guard let record, let first = record.slots.first?.lowerBound else {
            throw LocalRedisServerError(
                message: "\(Self.address(of: killedPrimary)) owned no slots when it went down, so no replica takes "
                    + "over: kill a primary that owns slots, with LocalRedisCluster.kill(_:) so that its slots are "
                    + "recorded"
            )
        }
        var taker: String?
        try await waitUntil(
            "a replica of \(Self.address(of: killedPrimary)) to take over its slots",
            timeout: timeout,
            logsOf: nodes.filter { nodeID(of: $0).map(record.replicaIDs.contains) ?? false }
        ) { views in
            guard let owner = views.first?.view.first(where: { $0.isPrimary && $0.owns(first) })?.id,
                owner != killedID, record.replicaIDs.isEmpty || record.replicaIDs.contains(owner)
            else { return false }
            let agreed = views.allSatisfy { _, view in
                guard view.isOK, let entry = view.first(where: { $0.id == owner }), entry.isPrimary, !entry.isFailed
                else { return false }
                return record.slots.allSatisfy { range in range.allSatisfy { entry.owns($0) } }
            }
            if agreed { taker = owner }
            return agreed
        } describe: { node, view in
            let owner = view.first { $0.isPrimary && $0.owns(first) }
            return "\(Self.address(of: node)): cluster_state:\(view.info["cluster_state"] ?? "?"), slot \(first) "
                + "owned by "
                + (owner.map { "127.0.0.1:\($0.port)" + ($0.isFailed ? " (failed)" : "") } ?? "no node")
        }
        guard let taker, let node = node(withID: taker) else {
            throw LocalRedisServerError(message: "the node that took over is not one of this cluster's nodes")
        }
        return node
    }

    // MARK: - Forming

    private static func startNode(in directory: String, options: Options) async throws -> (LocalRedisServer, Int) {
        var lastError: (any Error)?
        // The cluster bus port must be given: the default, port + 10000, is past 65535 for many free ports. Another
        // process may take it before the server binds it: retry with another.
        for _ in 0..<3 {
            let busPort = try LocalRedisServer.freeLoopbackPort()
            let arguments = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", directory + "/nodes.conf",
                "--cluster-node-timeout", String(milliseconds(options.nodeTimeout)),
                "--cluster-port", String(busPort),
                // A replica syncs at once, not after the 5 s Redis waits by default for more replicas.
                "--repl-diskless-sync-delay", "0",
            ]
            var overTLS: [String] = []
            if let tls = options.tls {
                overTLS = ["--tls-cluster", "yes", "--tls-replication", "yes"]
                if let certificate = tls.clientCertificateFile, let key = tls.clientKeyFile {
                    overTLS += ["--tls-client-cert-file", certificate, "--tls-client-key-file", key]
                }
            }
            do {
                let node = try await LocalRedisServer.start(
                    .init(
                        directory: directory,
                        arguments: arguments + overTLS + options.serverArguments,
                        tls: options.tls
                    )
                )
                return (node, busPort)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? LocalRedisServerError(message: "a cluster node did not start")
    }

    private func form(busPorts: [Int]) async throws {
        let primaryCount = options.primaries
        // Distinct config epochs up front, as redis-cli does: the nodes need not resolve a collision first.
        for (index, node) in nodes.enumerated() {
            _ = try await Self.command(node, "CLUSTER", "SET-CONFIG-EPOCH", String(index + 1))
        }
        for (index, range) in Self.slotRanges(primaries: primaryCount).enumerated() {
            _ = try await Self.command(
                nodes[index],
                "CLUSTER",
                "ADDSLOTSRANGE",
                String(range.lowerBound),
                String(range.upperBound)
            )
        }
        for index in nodes.indices.dropFirst() {
            _ = try await Self.command(
                nodes[0],
                "CLUSTER",
                "MEET",
                "127.0.0.1",
                String(nodes[index].port),
                String(busPorts[index])
            )
        }
        let known = Set(nodeIDs)
        try await waitUntil("every node to know every other") { views in
            views.allSatisfy { _, view in
                Set(view.map(\.id)) == known && !view.contains { $0.flags.contains("handshake") }
            }
        } describe: { node, view in
            "\(Self.address(of: node)) knows \(view.count) of \(known.count) nodes"
        }
        for index in nodes.indices.dropFirst(primaryCount) {
            _ = try await Self.command(nodes[index], "CLUSTER", "REPLICATE", nodeIDs[index % primaryCount])
        }
        let expectedOwners = Self.slotRanges(primaries: primaryCount).enumerated().map { index, range in
            SlotOwner(range: range, id: nodeIDs[index])
        }
        let replicaCount = nodes.count - primaryCount
        try await waitUntil(
            "the cluster to form (cluster_state:ok, every slot served, the same slot owners and replicas on every "
                + "node, every replica's link up)",
            logsOf: nodes
        ) { views in
            views.allSatisfy { node, view in
                guard view.isOK, view.owners == expectedOwners, view.allSatisfy(\.isHealthy) else { return false }
                for index in nodeIDs.indices {
                    guard let entry = view.first(where: { $0.id == nodeIDs[index] }) else { return false }
                    let isReplica = index >= primaryCount
                    if isReplica != entry.isReplica { return false }
                    if isReplica && entry.primaryID != nodeIDs[index % primaryCount] { return false }
                }
                let isReplica = (nodes.firstIndex { $0 === node } ?? 0) >= primaryCount
                return !isReplica || view.replicationLink == "up"
            }
        } describe: { node, view in
            "\(Self.address(of: node)): cluster_state:\(view.info["cluster_state"] ?? "?"), "
                + "slots ok \(view.info["cluster_slots_ok"] ?? "?"), knows \(view.count) nodes, "
                + "\(view.filter(\.isReplica).count) of \(replicaCount) replicas attached"
                + (view.replicationLink.map { ", link to its primary \($0)" } ?? "")
        }
    }

    /// The slots of each primary: 16384 split into `primaries` consecutive ranges of equal size (±1).
    private static func slotRanges(primaries: Int) -> [ClosedRange<Int>] {
        (0..<primaries).map { index in
            (index * slotCount / primaries)...((index + 1) * slotCount / primaries - 1)
        }
    }

    // MARK: - Views

    /// Polls every running node's view (`CLUSTER INFO`, `CLUSTER NODES`, and `INFO replication` on replicas) until
    /// `condition` holds for all of them, or throws with `describe` of each view and the nodes' log tails.
    private func waitUntil(
        _ what: String,
        timeout: Duration = .seconds(30),
        logsOf logged: [LocalRedisServer] = [],
        _ condition: ([(node: LocalRedisServer, view: View)]) -> Bool,
        describe: (LocalRedisServer, View) -> String
    ) async throws {
        let clock = ContinuousClock()
        let started = clock.now
        var last: [String] = []
        while clock.now - started < timeout {
            var views: [(node: LocalRedisServer, view: View)] = []
            last = []
            for node in nodes where node.pid != 0 {
                do {
                    let view = try await Self.view(of: node)
                    views.append((node, view))
                    last.append(describe(node, view))
                } catch {
                    last.append("\(Self.address(of: node)): \(error)")
                }
            }
            if views.count == last.count, !views.isEmpty, condition(views) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        let logs = logged.filter { !$0.logTail().isEmpty }.map { node in
            "log of \(Self.address(of: node)):\n\(node.logTail(lines: 15))"
        }
        throw LocalRedisServerError(
            message: "timed out after \(timeout) waiting for \(what): \(last.joined(separator: "; "))"
                + (logs.isEmpty ? "" : "\n" + logs.joined(separator: "\n"))
        )
    }

    /// The view of the first running node that answers, skipping `excluded`.
    private func anyView(excluding excluded: LocalRedisServer? = nil) async throws -> (LocalRedisServer, View) {
        var errors: [String] = []
        for node in nodes where node.pid != 0 && node !== excluded {
            do {
                return (node, try await Self.view(of: node))
            } catch {
                errors.append("\(Self.address(of: node)): \(error)")
            }
        }
        throw LocalRedisServerError(
            message: "no node of the cluster answered CLUSTER NODES"
                + (errors.isEmpty ? " (none is running)" : ": " + errors.joined(separator: "; "))
        )
    }

    private static func view(of node: LocalRedisServer) async throws -> View {
        let connection = connection(to: node)
        defer { connection.close() }
        let replies = try await connection.pipeline([
            RedisCommand("CLUSTER", "INFO"), RedisCommand("CLUSTER", "NODES"), RedisCommand("INFO", "replication"),
        ])
        for (reply, name) in zip(replies, ["CLUSTER INFO", "CLUSTER NODES", "INFO replication"]) {
            if let message = reply.errorMessage {
                throw LocalRedisServerError(message: "\(name) on \(address(of: node)) failed: \(message)")
            }
        }
        let replication = fields(replies[2].string ?? "")
        return View(
            info: fields(replies[0].string ?? ""),
            entries: (replies[1].string ?? "").split(whereSeparator: \.isNewline).compactMap(NodeEntry.init),
            replicationLink: replication["role"] == "slave" ? replication["master_link_status"] ?? "down" : nil
        )
    }

    /// The `name:value` lines of an `INFO` or `CLUSTER INFO` reply.
    private static func fields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }

    /// Which of a `MIGRATE` batch's keys exist on both the source and the target (the cause of `BUSYKEY`).
    private func busyKeys(
        _ keys: [[UInt8]],
        source: LocalRedisServer,
        target: LocalRedisServer
    ) async throws -> [String] {
        let sourceConnection = Self.connection(to: source)
        defer { sourceConnection.close() }
        let targetConnection = Self.connection(to: target)
        defer { targetConnection.close() }
        let onSource = try await sourceConnection.pipeline(keys.map { RedisCommand("EXISTS", $0) })
        // The target serves a slot it imports only after ASKING, which holds for the next command.
        let onTarget = try await targetConnection.pipeline(
            keys.flatMap { [RedisCommand("ASKING"), RedisCommand("EXISTS", $0)] }
        )
        return keys.indices.filter { onSource[$0] == .integer(1) && onTarget[2 * $0 + 1] == .integer(1) }.prefix(5)
            .map { "key '\(String(decoding: keys[$0], as: UTF8.self))'" }
    }

    private func node(withID id: String) -> LocalRedisServer? {
        nodeIDs.firstIndex(of: id).map { nodes[$0] }
    }

    // MARK: - Commands

    private static func connection(to node: LocalRedisServer, timeout: Duration = .seconds(5)) -> RedisConnection {
        // No failover timeout: a refusal such as CLUSTERDOWN is a state to report, not to wait through.
        RedisConnection(
            configuration: .init(
                url: node.url,
                connectTimeout: .seconds(1),
                commandTimeout: timeout,
                failoverTimeout: .zero,
                followsClusterRedirects: false
            )
        )
    }

    private static func send(
        _ command: RedisCommand,
        to node: LocalRedisServer,
        commandTimeout: Duration = .seconds(5)
    ) async throws -> RedisReply {
        let connection = connection(to: node, timeout: commandTimeout)
        defer { connection.close() }
        return try await connection.send(command)
    }

    /// Sends a command to one node and throws its error reply, naming the command and the node.
    private static func command(_ node: LocalRedisServer, _ arguments: String...) async throws -> RedisReply {
        let reply = try await send(RedisCommand(arguments: arguments.map { Array($0.utf8) }), to: node)
        if let message = reply.errorMessage {
            throw LocalRedisServerError(
                message: "\(arguments.joined(separator: " ")) on \(address(of: node)) failed: \(message)"
            )
        }
        return reply
    }

    private static func stop(_ nodes: [LocalRedisServer]) async {
        // Together: a primary's SHUTDOWN waits (up to the stop's timeout) for its replicas to catch up.
        await withTaskGroup(of: Void.self) { group in
            for node in nodes {
                group.addTask { await node.stop() }
            }
        }
    }

    private static func checkSlot(_ slot: Int) throws {
        guard (0..<slotCount).contains(slot) else {
            throw LocalRedisServerError(message: "slot \(slot) is out of range: slots are 0 to \(slotCount - 1)")
        }
    }

    private static func address(of node: LocalRedisServer) -> String { "127.0.0.1:\(node.port)" }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    private static func makeTemporaryDirectory() throws -> String {
        let base = NSTemporaryDirectory().hasSuffix("/") ? NSTemporaryDirectory() : NSTemporaryDirectory() + "/"
        var template = Array((base + "conveyor-cluster-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw LocalRedisServerError(
                message: "cannot create a temporary directory: \(String(cString: strerror(errno)))"
            )
        }
        return String(cString: made)
    }

    /// CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), as Redis Cluster hashes keys.
    private static let crc16Table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}

/// What the cluster knew of a primary just before it was killed.
private struct PrimaryRecord: Sendable {
    var slots: [ClosedRange<Int>]
    var replicaIDs: Set<String>
}

/// A range of slots and the node id of its owner.
private struct SlotOwner: Equatable {
    var range: ClosedRange<Int>
    var id: String
}

/// One node's view of the cluster: its `CLUSTER INFO` fields, its `CLUSTER NODES` lines, and for a replica the
/// state of its link to its primary.
private struct View: RandomAccessCollection {
    var info: [String: String]
    var entries: [NodeEntry]
    var replicationLink: String?

    var startIndex: Int { entries.startIndex }
    var endIndex: Int { entries.endIndex }
    subscript(position: Int) -> NodeEntry { entries[position] }

    /// Whether the node reports `cluster_state:ok` with every slot served.
    var isOK: Bool {
        info["cluster_state"] == "ok" && info["cluster_slots_ok"] == String(LocalRedisCluster.slotCount)
    }

    /// The slot ranges of every primary, in slot order.
    var owners: [SlotOwner] {
        entries.filter(\.isPrimary).flatMap { entry in entry.slots.map { SlotOwner(range: $0, id: entry.id) } }
            .sorted { $0.range.lowerBound < $1.range.lowerBound }
    }
}

/// One line of `CLUSTER NODES`: `<id> <ip:port@bus[,hostname]> <flags> <primary id or -> <ping sent> <pong received>
/// <config epoch> <link state> <slot ranges>…`, where the node itself also lists slots it is migrating
/// (`[slot->-id]`) or importing (`[slot-<-id]`).
private struct NodeEntry {
    var id: String
    var port: Int
    var flags: Set<String>
    var primaryID: String?
    var connected: Bool
    var slots: [ClosedRange<Int>]
    var movingSlots: Set<Int>

    init?(_ line: Substring) {
        let fields = line.split(separator: " ")
        guard fields.count >= 8 else { return nil }
        id = String(fields[0])
        let hostPort = fields[1].split(separator: "@").first ?? ""
        port = hostPort.split(separator: ":").last.flatMap { Int($0) } ?? 0
        flags = Set(fields[2].split(separator: ",").map(String.init))
        primaryID = fields[3] == "-" ? nil : String(fields[3])
        connected = fields[7] == "connected"
        slots = []
        movingSlots = []
        for field in fields.dropFirst(8) {
            if field.hasPrefix("[") {
                if let slot = Int(field.dropFirst().prefix { $0.isNumber }) { movingSlots.insert(slot) }
            } else if let dash = field.firstIndex(of: "-") {
                if let low = Int(field[..<dash]), let high = Int(field[field.index(after: dash)...]), low <= high {
                    slots.append(low...high)
                }
            } else if let slot = Int(field) {
                slots.append(slot...slot)
            }
        }
    }

    var isPrimary: Bool { flags.contains("master") }
    var isReplica: Bool { flags.contains("slave") }
    var isFailed: Bool { flags.contains("fail") || flags.contains("fail?") }
    /// Reachable, known by address and agreed on: neither failed nor in a handshake.
    var isHealthy: Bool {
        connected && !isFailed && !flags.contains("handshake") && !flags.contains("noaddr")
    }

    func owns(_ slot: Int) -> Bool { slots.contains { $0.contains(slot) } }
    func moving(_ slot: Int) -> Bool { movingSlots.contains(slot) }
}
