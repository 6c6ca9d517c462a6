import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Synchronization
import Testing

@testable import Conveyor

// Network namespaces for the partition tests (PartitionTests): each node is a namespace of its own, joined to the
// root namespace by a veth pair with a /30 of its own; a private redis-server in the root namespace listens on
// loopback and on the root end of every pair. A node's link can be cut (nftables drops every packet both ways on
// its veth: the TCP connections stay half-alive, as in a real partition), made lossy (nftables numgen drops a share
// of the packets) and slow (iptables' NFQUEUE target, as this kernel has neither netem nor nft's queue expression,
// hands every packet to Tests/Partitions/nfq_delay.c, which holds it before accepting it). Every rule lives inside
// the node's namespace, so nothing in the root namespace's firewall changes. Whatever happens in the test, the
// lab's processes are killed and its namespaces, veth pairs, rule tables and files removed.

/// Why the lab could not be set up.
struct NetworkLabError: Error, CustomStringConvertible {
    var description: String
}

/// Runs a tool (`ip`, `nft`, `iptables`, `cc`) to the end and returns its standard output; throws when it fails.
@discardableResult
func runTool(_ arguments: [String], input: String = "") async throws -> String {
    let ended = try await ChildProcess().run(
        arguments,
        input: Array(input.utf8),
        environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
    )
    guard ended.status == 0 else {
        throw NetworkLabError(
            description: "`\(arguments.joined(separator: " "))` exited with status \(ended.status): "
                + String(decoding: ended.errorTail, as: UTF8.self)
        )
    }
    return String(decoding: ended.output, as: UTF8.self)
}

/// A node: a network namespace and the veth pair that joins it to the root namespace.
struct LabNode: Sendable, CustomStringConvertible {
    /// The namespace's name (`ip netns`).
    let namespace: String
    /// The veth end in the root namespace, and its address.
    let rootInterface: String
    let rootAddress: String
    /// The veth end in the node's namespace, and its address.
    let nodeInterface: String
    let nodeAddress: String

    var description: String { "\(namespace) (\(nodeAddress))" }
}

/// A process the lab started, in a node's namespace or the root one, its output going to a file.
final class LabProcess: Sendable {
    let child = ChildProcess()
    let task: Task<ChildProcess.Termination, any Error>
    let outputPath: String
    let name: String

    init(name: String, in node: LabNode?, _ arguments: [String], environment: [String: String], directory: String) {
        self.name = name
        let outputPath = directory + "/\(name).out"
        self.outputPath = outputPath
        // `ip netns exec` and sh both exec the next program, so the pid and the signals are the program's own.
        let prefix = node.map { ["/usr/sbin/ip", "netns", "exec", $0.namespace] } ?? []
        let command = prefix + ["/bin/sh", "-c", #"exec "$0" "$@" >"$LAB_OUTPUT" 2>&1"#] + arguments
        var merged = environment
        merged["PATH"] = merged["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin"
        merged["LAB_OUTPUT"] = outputPath
        let child = self.child
        task = Task { try await child.run(command, input: [], environment: merged) }
    }

    deinit {
        child.kill()
    }

    /// Everything printed so far (standard output and standard error).
    var output: String {
        (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    /// Waits until the output contains `text`.
    func waitFor(_ text: String, timeout: Duration = .seconds(30)) async throws {
        do {
            try await eventually(timeout: timeout, "\(name)'s output to contain '\(text)'") { output.contains(text) }
        } catch {
            Issue.record("\(name)'s output so far:\n\(output)")
            throw error
        }
    }

    /// The process id, once started.
    func pid() async throws -> Int32 {
        try await eventually("\(name) to start") { child.pid > 0 }
        return child.pid
    }

    func signal(_ signal: Int32) async throws {
        _ = kill(try await pid(), signal)
    }

    /// Whether the process is still running (not exited, not a zombie).
    var isRunning: Bool {
        let pid = child.pid
        guard pid > 0, kill(pid, 0) == 0 else { return false }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        return !stat.contains(") Z ")
    }

    /// Waits for the process to exit and returns how it ended.
    func exit() async throws -> ChildProcess.Termination {
        try await task.value
    }
}

/// The namespaces, the redis-server and the processes of one test.
final class NetworkLab: Sendable {
    let nodes: [LabNode]
    let server: LocalRedisServer
    /// A folder of the lab's own (process output, the compiled delay program), removed at the end.
    let directory: String
    private let processes = Mutex<[LabProcess]>([])
    private let delayers = Mutex<[String: LabProcess]>([:])

    /// The rule table every node's namespace gets (drop and loss rules go in its chains).
    static let table = "conveyor_lab"

    private init(nodes: [LabNode], server: LocalRedisServer, directory: String) {
        self.nodes = nodes
        self.server = server
        self.directory = directory
    }

    /// The URL a process in `node` reaches Redis at (the root end of its veth pair).
    func redisURL(from node: LabNode) -> String { "redis://\(node.rootAddress):\(server.port)" }

    /// Starts `arguments` in `node`'s namespace (`nil`: the root namespace); killed at the end of the lab.
    func start(
        _ name: String,
        in node: LabNode?,
        _ arguments: [String],
        environment: [String: String] = [:]
    ) -> LabProcess {
        let process = LabProcess(name: name, in: node, arguments, environment: environment, directory: directory)
        processes.withLock { $0.append(process) }
        return process
    }

    /// Starts `conveyor ARGUMENTS` in `node`'s namespace.
    func conveyor(
        _ name: String,
        in node: LabNode?,
        _ arguments: [String],
        environment: [String: String] = [:]
    ) -> LabProcess {
        start(name, in: node, [ConveyorExecutable.path] + arguments, environment: environment)
    }

    /// Writes an executable shell script in the lab's folder (removed with it) and returns its path.
    func script(_ name: String, _ body: String) throws -> String {
        let path = directory + "/" + name
        try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        _ = chmod(path, 0o755)
        return path
    }

    // MARK: - Impairments

    /// Cuts `node` off: every packet on its link is dropped, both ways, until ``heal(_:)``.
    func cut(_ node: LabNode) async throws {
        try await nft(
            node,
            """
            add rule inet \(Self.table) input iifname "\(node.nodeInterface)" drop
            add rule inet \(Self.table) output oifname "\(node.nodeInterface)" drop

            """
        )
    }

    /// Drops `lossPercent` % of the packets on `node`'s link and holds every other one `delay` each way, until
    /// ``heal(_:)``.
    func impair(_ node: LabNode, lossPercent: Int, delay: Duration) async throws {
        if delay > .zero {
            let program = try await delayProgram()
            let milliseconds = delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000
            let delayer = start("nfq-delay-\(node.namespace)", in: node, [program, "0", String(milliseconds)])
            delayers.withLock { $0[node.namespace] = delayer }
            try await delayer.waitFor("ready", timeout: .seconds(20))
            for (chain, direction) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
                try await runTool(
                    [
                        "ip", "netns", "exec", node.namespace, "iptables", "-w", "-A", chain, direction,
                        node.nodeInterface,
                    ]
                        + ["-j", "NFQUEUE", "--queue-num", "0"]
                )
            }
        }
        if lossPercent > 0 {
            try await nft(
                node,
                """
                add rule inet \(Self.table) input iifname "\(node.nodeInterface)" numgen random mod 100 < \(lossPercent) drop
                add rule inet \(Self.table) output oifname "\(node.nodeInterface)" numgen random mod 100 < \(lossPercent) drop

                """
            )
        }
    }

    /// Ends every cut and impairment of `node`.
    func heal(_ node: LabNode) async throws {
        try await nft(node, "flush chain inet \(Self.table) input\nflush chain inet \(Self.table) output\n")
        let delayer = delayers.withLock { $0.removeValue(forKey: node.namespace) }
        if let delayer {
            // Rules first: a queue with no program behind it drops every packet.
            try await runTool(["ip", "netns", "exec", node.namespace, "iptables", "-w", "-F"])
            delayer.child.kill()
            _ = try? await delayer.exit()
        }
    }

    /// The mean round trip of `count` PINGs from `node` to Redis (one redis-cli connection; its TCP handshake
    /// counts as one more round trip).
    func roundTrip(from node: LabNode, pings count: Int = 10) async throws -> Duration {
        let clock = ContinuousClock()
        let started = clock.now
        let output = try await runTool(
            ["ip", "netns", "exec", node.namespace, "redis-cli", "-h", node.rootAddress, "-p", String(server.port)]
                + ["-r", String(count), "PING"]
        )
        let elapsed = clock.now - started
        guard output.components(separatedBy: "PONG").count - 1 == count else {
            throw NetworkLabError(description: "redis-cli from \(node) did not get \(count) PONGs: \(output)")
        }
        return elapsed / (count + 1)
    }

    private func nft(_ node: LabNode, _ script: String) async throws {
        try await runTool(["ip", "netns", "exec", node.namespace, "nft", "-f", "-"], input: script)
    }

    private func delayProgram() async throws -> String {
        let binary = directory + "/nfq_delay"
        if FileManager.default.isExecutableFile(atPath: binary) { return binary }
        let source = repositoryRoot.appendingPathComponent("Tests/Partitions/nfq_delay.c").path
        try await runTool(["cc", "-O2", "-o", binary, source, "-lnetfilter_queue", "-lnfnetlink"])
        return binary
    }

    // MARK: - Set-up and tear-down

    /// Third octets handed out in this test process (10.<b>.<c>.0/24, one per lab).
    private static let nextSubnet = Atomic<Int>(1)

    /// Makes `count` nodes and a redis-server reachable from all of them, runs `body`, and removes everything,
    /// also when `body` throws.
    static func with(
        nodes count: Int,
        _ body: (NetworkLab, JobQueue) async throws -> Void
    ) async throws {
        guard geteuid() == 0 else {
            throw NetworkLabError(description: "the partition tests make network namespaces: run them as root")
        }
        for tool in ["/usr/sbin/ip", "/usr/sbin/nft", "/usr/sbin/iptables", "/usr/bin/cc", "/usr/bin/redis-cli"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            throw NetworkLabError(description: "\(tool) is missing: run deploy/setup.sh")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "conveyor-lab-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var made: [LabNode] = []
        var server: LocalRedisServer?
        var lab: NetworkLab?
        do {
            let (second, third) = try await freeSubnet()
            for index in 0..<count {
                let node = LabNode(
                    namespace: "cvy-\(second)-\(third)-\(index)",
                    rootInterface: "cv\(second)x\(third)n\(index)r",
                    rootAddress: "10.\(second).\(third).\(index * 4 + 1)",
                    nodeInterface: "cv\(second)x\(third)n\(index)",
                    nodeAddress: "10.\(second).\(third).\(index * 4 + 2)"
                )
                try await runTool(["ip", "netns", "add", node.namespace])
                made.append(node)
                try await setUp(node)
            }
            let started = try await LocalRedisServer.start(
                .init(arguments: ["--bind", "127.0.0.1"] + made.map(\.rootAddress))
            )
            server = started
            let created = NetworkLab(nodes: made, server: started, directory: directory)
            lab = created
            let redis = started.makeClient()
            defer { redis.shutdown() }
            let jobs = JobQueue(redis: redis)
            try await jobs.installLibrary()
            try await body(created, jobs)
        } catch {
            await tearDown(lab, made, server, directory)
            throw error
        }
        await tearDown(lab, made, server, directory)
    }

    /// A /24 in 10.200.0.0-10.249.255.255 that no interface uses and no namespace of ours is named after.
    private static func freeSubnet() async throws -> (Int, Int) {
        let second = 200 + Int(getpid()) % 50
        let addresses = try await runTool(["ip", "-o", "-4", "addr", "show"])
        let namespaces = try await runTool(["ip", "netns", "list"])
        for _ in 0..<250 {
            let third = nextSubnet.wrappingAdd(1, ordering: .relaxed).oldValue % 250 + 1
            if !addresses.contains(" 10.\(second).\(third).") && !namespaces.contains("cvy-\(second)-\(third)-") {
                return (second, third)
            }
        }
        throw NetworkLabError(description: "no free 10.\(second).x.0/24 for the lab")
    }

    private static func setUp(_ node: LabNode) async throws {
        let inside = ["ip", "-n", node.namespace]
        try await runTool(["ip", "link", "add", node.rootInterface, "type", "veth", "peer", "name", node.nodeInterface])
        try await runTool(["ip", "link", "set", node.nodeInterface, "netns", node.namespace])
        try await runTool(["ip", "addr", "add", node.rootAddress + "/30", "dev", node.rootInterface])
        try await runTool(["ip", "link", "set", node.rootInterface, "up"])
        try await runTool(inside + ["addr", "add", node.nodeAddress + "/30", "dev", node.nodeInterface])
        try await runTool(inside + ["link", "set", node.nodeInterface, "up"])
        try await runTool(inside + ["link", "set", "lo", "up"])
        try await runTool(
            ["ip", "netns", "exec", node.namespace, "nft", "-f", "-"],
            input: """
                table inet \(table) {
                    chain input { type filter hook input priority 0; policy accept; }
                    chain output { type filter hook output priority 0; policy accept; }
                }

                """
        )
    }

    private static func tearDown(
        _ lab: NetworkLab?,
        _ nodes: [LabNode],
        _ server: LocalRedisServer?,
        _ directory: String
    ) async {
        // Every process first (a namespace lives on while a process is in it), the delay programs included.
        let processes = lab?.processes.withLock { $0 } ?? []
        for process in processes { process.child.kill() }
        for process in processes { _ = try? await process.exit() }
        for node in nodes {
            // Anything still inside (a handler a supervisor did not get to) is ours: the namespace is the lab's.
            let pids = (try? await runTool(["ip", "netns", "pids", node.namespace])) ?? ""
            for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) { _ = kill(pid, SIGKILL) }
            _ = try? await runTool(["ip", "netns", "exec", node.namespace, "nft", "delete", "table", "inet", table])
            _ = try? await runTool(["ip", "netns", "exec", node.namespace, "iptables", "-w", "-F"])
            // Deleting one end of a veth pair deletes the other.
            _ = try? await runTool(["ip", "link", "del", node.rootInterface])
            _ = try? await runTool(["ip", "netns", "del", node.namespace])
        }
        await server?.stop()
        try? FileManager.default.removeItem(atPath: directory)
        // Check: nothing of the lab is left.
        let links = (try? await runTool(["ip", "-o", "link", "show"])) ?? ""
        let namespaces = (try? await runTool(["ip", "netns", "list"])) ?? ""
        for node in nodes {
            if links.contains(" \(node.rootInterface)@") || links.contains(" \(node.rootInterface):") {
                Issue.record("the veth \(node.rootInterface) is left after the test")
            }
            if namespaces.contains(node.namespace) {
                Issue.record("the namespace \(node.namespace) is left after the test")
            }
        }
        for process in processes where process.isRunning {
            Issue.record("\(process.name) (pid \(process.child.pid)) is still running after the test")
        }
    }
}
