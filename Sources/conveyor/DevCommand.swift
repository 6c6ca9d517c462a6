import ArgumentParser
import Conveyor
import Foundation
import LocalRedis
import Logging
import RedisClient

/// `conveyor dev`: a private redis-server, a worker and the scheduler in one process.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run a private redis-server, a worker and the scheduler in one process (for a laptop).",
        discussion: """
            Starts redis-server on a free loopback port (or --port) with its data in --data (append-only file, so \
            jobs survive a restart of `conveyor dev`), prints the URL to give other commands, and runs a worker \
            with the built-in example handlers (sleep, echo, fail) plus any --exec, and the recurring-job \
            scheduler. Ctrl-C stops the worker gracefully, then the redis-server; the data stays.

            With --sentinel it starts a master group instead: a primary, two replicas and three Sentinels on free \
            loopback ports (in memory, gone when it stops), and works through redis+sentinel://, so failovers can \
            be tried by hand (redis-cli -p <sentinel port> SENTINEL FAILOVER conveyor, or kill the primary).

            With --cluster N it starts a Redis Cluster of N primaries (3 to 10), each with a replica, on free \
            loopback ports (in memory, gone when it stops), and works through redis+cluster://, so queues spread \
            over shards, resharding and shard failovers can be tried by hand (redis-cli --cluster reshard, or kill \
            a primary).

            Examples:
              conveyor dev
              conveyor dev --data /tmp/conveyor --exec resize=./resize.sh --queue images --queue default
              conveyor dev --sentinel
              conveyor dev --cluster 3
            """
    )

    @Option(help: ArgumentHelp("The data folder of the private redis-server.", valueName: "path"))
    var data = ".conveyor-dev"

    @Option(parsing: .unconditional, help: "The loopback port, 1-65535 (default: a free one).")
    var port: Int?

    @Option(help: "The key namespace.")
    var namespace = "conveyor"

    @Flag(help: "Start a primary, two replicas and three Sentinels, and work through Sentinel.")
    var sentinel = false

    @Option(
        name: .customLong("cluster"),
        help: ArgumentHelp("Start a Redis Cluster of N primaries (3-10) with a replica each.", valueName: "n")
    )
    var clusterPrimaries: Int?

    @OptionGroup var worker: WorkerOptions

    func validate() throws {
        try JobStoreOptions.validateNamespace(namespace)
        if let port { try NumberArgument.check(port, "--port", 1...65_535) }
        if let clusterPrimaries {
            // Redis Cluster needs at least three primaries to elect a replica when one dies.
            try NumberArgument.check(clusterPrimaries, "--cluster", 3...10)
            if sentinel { throw ValidationError("--cluster and --sentinel cannot be combined: choose one topology") }
        }
    }

    func run() async throws {
        let logger = bootstrapLogging(worker.logLevel)
        if sentinel {
            try await runWithSentinel(logger: logger)
            return
        }
        if let clusterPrimaries {
            try await runWithCluster(clusterPrimaries, logger: logger)
            return
        }
        let folder = URL(fileURLWithPath: data).standardizedFileURL.path
        let pidFile = folder + "/redis-server.pid"
        // Two servers on one folder would corrupt its append-only file: refuse while one still runs there (left by
        // a `conveyor dev` that was killed with SIGKILL, or running in another terminal).
        if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 0, kill(pid, 0) == 0,
            let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
            command.contains("redis-server")
        {
            throw CommandFailure(
                message: "a redis-server (pid \(pid)) still runs on \(folder); stop it (kill \(pid)) or give "
                    + "another --data folder"
            )
        }
        let options = LocalRedisServer.Options(
            port: port,
            directory: folder,
            arguments: ["--appendonly", "yes", "--appendfsync", "everysec", "--pidfile", pidFile]
        )
        try await PrivateRedis.with(given: nil, options: options) { url, server in
            Terminal.printNow(
                """
                Conveyor dev: redis-server (pid \(server?.pid ?? 0)) at \(url), data in \(folder)
                In another terminal:
                  export REDIS_URL=\(url)
                  conveyor enqueue echo --payload '{"hello":"world"}'
                  conveyor stats; conveyor tail; redis-cli -u $REDIS_URL
                Ctrl-C stops.
                """
            )
            let (redis, jobs) = PrivateRedis.jobQueue(
                url,
                clientName: "conveyor-dev",
                namespace: namespace,
                logger: logger
            )
            defer { redis.shutdown() }
            try await worker.run(jobs: jobs, handlers: worker.handlers(examples: true), logger: logger)
        }
        Terminal.printNow("Stopped; the data stays in \(folder).")
    }

    /// `--sentinel`: the worker works through a private master group.
    private func runWithSentinel(logger: Logger) async throws {
        let group: LocalSentinelGroup
        do {
            group = try await LocalSentinelGroup.start()
        } catch {
            throw CommandFailure(
                message: "cannot start the Sentinel group: \(error) (install it with: apt-get install -y redis-server)"
            )
        }
        let servers = group.servers.map { "\($0.port) (pid \($0.pid))" }.joined(separator: ", ")
        let sentinels = group.sentinels.map { String($0.port) }.joined(separator: ", ")
        Terminal.printNow(
            """
            Conveyor dev: master group 'conveyor' at \(group.url)
              data servers (the first is the primary now): \(servers)
              Sentinels: \(sentinels)
            In another terminal:
              export REDIS_URL='\(group.url)'
              conveyor enqueue echo --payload '{"hello":"world"}'
              redis-cli -p \(group.sentinels[0].port) SENTINEL FAILOVER conveyor
              redis-cli -p \(group.sentinels[0].port) SENTINEL GET-MASTER-ADDR-BY-NAME conveyor
            Ctrl-C stops (and removes every server).
            """
        )
        try await runWorker(on: group.url, logger: logger) { await group.stop() }
        Terminal.printNow("Stopped; the master group is gone.")
    }

    /// `--cluster N`: the worker works through a private Redis Cluster.
    private func runWithCluster(_ primaries: Int, logger: Logger) async throws {
        let cluster: LocalRedisCluster
        do {
            cluster = try await LocalRedisCluster.start(.init(primaries: primaries, replicasPerPrimary: 1))
        } catch {
            throw CommandFailure(
                message: "cannot start the Redis Cluster: \(error) (install it with: apt-get install -y redis-server)"
            )
        }
        let nodes = cluster.nodes.map { "\($0.port) (pid \($0.pid))" }.joined(separator: ", ")
        Terminal.printNow(
            """
            Conveyor dev: a Redis Cluster of \(primaries) primaries and \(primaries) replicas at \(cluster.urlString)
              nodes (the first \(primaries) are the primaries now): \(nodes)
            In another terminal:
              export REDIS_URL='\(cluster.urlString)'
              conveyor enqueue echo --queue emails --payload '{"hello":"world"}'
              redis-cli -c -p \(cluster.nodes[0].port) CLUSTER KEYSLOT 'conveyor:{emails}'
              redis-cli --cluster reshard 127.0.0.1:\(cluster.nodes[0].port)
            Ctrl-C stops (and removes every node).
            """
        )
        try await runWorker(on: try RedisURL(cluster.urlString), logger: logger) { await cluster.stop() }
        Terminal.printNow("Stopped; the cluster is gone.")
    }

    /// Runs dev's worker through `url` until it stops, then `stop` (the servers), also when it fails.
    private func runWorker(on url: RedisURL, logger: Logger, then stop: () async -> Void) async throws {
        let (redis, jobs) = PrivateRedis.jobQueue(url, clientName: "conveyor-dev", namespace: namespace, logger: logger)
        do {
            try await worker.run(jobs: jobs, handlers: worker.handlers(examples: true), logger: logger)
        } catch {
            redis.shutdown()
            await stop()
            throw error
        }
        redis.shutdown()
        await stop()
    }
}
