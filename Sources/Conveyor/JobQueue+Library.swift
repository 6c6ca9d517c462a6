import Foundation
import Logging
import RedisClient
import Synchronization

/// What ``JobQueue/installLibrary()`` did.
public enum LibraryInstallation: Sendable, Hashable {
    /// The server had no Conveyor library; it has this client's now.
    case installed(version: String)
    /// The server held another version, now replaced by this client's.
    case replaced(previous: String, version: String)
    /// The server already held this client's version; nothing was written.
    case current(version: String)
}

extension JobQueue {
    /// The version of the function library this build embeds: what `FCALL conveyor_version 0` answers once it is
    /// installed.
    public static var libraryVersion: String { ConveyorLibrary.version }

    /// Installs Conveyor's function library on the server, or replaces another version of it (`conveyor install`).
    ///
    /// Needs `FUNCTION LOAD`: run it with an admin credential, once per release, before producers and workers
    /// start. Other clients only check the version (see ``Configuration/installsLibrary``). Waits while the server
    /// is still loading its dataset.
    ///
    /// - Returns: What was done.
    /// - Throws: ``ConveyorError`` when the server refuses (the message says why and what to do).
    @discardableResult
    public func installLibrary() async throws -> LibraryInstallation {
        // On a Redis Cluster every primary runs the functions of its slots, so every primary needs the library.
        var previous: String?
        var wrote = false
        for node in try await libraryNodes() {
            let found = try await installedLibraryVersion(on: node)
            if found == ConveyorLibrary.version { continue }
            if let found {
                previous = previous ?? found
                // The previous protocol's library (`conveyor`) defines the same function names: Redis would refuse
                // to load this one beside it. (An older client that tries to load its own over this one is refused
                // the same way, so a mixed fleet cannot swap the libraries back and forth.)
                let libraries = try await command(
                    JobQueue.routed(RedisCommand("FUNCTION", "LIST", "LIBRARYNAME", "conveyor"), to: node)
                )
                let names = (libraries.array ?? []).compactMap { entry -> String? in
                    let fields = entry.array ?? []
                    guard let index = fields.firstIndex(where: { $0.string == "library_name" }),
                        index + 1 < fields.count
                    else { return nil }
                    return fields[index + 1].string
                }
                if names.contains("conveyor") {
                    _ = try await command(JobQueue.routed(RedisCommand("FUNCTION", "DELETE", "conveyor"), to: node))
                }
            }
            let load = JobQueue.routed(
                RedisCommand("FUNCTION", "LOAD", "REPLACE", ConveyorLibrary.library.source),
                to: node
            )
            let reply = try await whileLoading("loading Conveyor's function library") {
                try await redis.send(load)
            }
            let server = node.map { "the cluster node \($0)" } ?? "Redis"
            if let message = reply.errorMessage {
                if message.hasPrefix("NOPERM") {
                    throw ConveyorError(
                        .redis,
                        "the Redis user of \(redis.configuration.url) may not load functions on \(server) "
                            + "(\(message)): run conveyor install with an admin credential (see the README's ACL "
                            + "section)"
                    )
                }
                throw ConveyorError(.redis, "\(server) refused Conveyor's function library: \(message)")
            }
            wrote = true
            logger.debug(
                "installed the conveyor function library",
                metadata: [
                    "conveyor.redis": "\(redis.configuration.url)", "conveyor.version": "\(ConveyorLibrary.version)",
                    "conveyor.node": "\(node.map(\.description) ?? "")",
                ]
            )
        }
        state.withLock { $0.libraryChecked = true }
        if !wrote { return .current(version: ConveyorLibrary.version) }
        if let previous {
            try await keepTypeIndexes()
            return .replaced(previous: previous, version: ConveyorLibrary.version)
        }
        return .installed(version: ConveyorLibrary.version)
    }

    /// The servers that must hold the library: every primary of a Redis Cluster, or the one server (`nil`).
    func libraryNodes() async throws -> [RedisURL.Address?] {
        do {
            if let primaries = try await redis.clusterPrimaries(), !primaries.isEmpty { return primaries }
        } catch let error as RedisClientError {
            throw ConveyorError(.redis, error.message)
        }
        return [nil]
    }

    /// `command` sent to `node` of a cluster, or unchanged for the one server.
    static func routed(_ command: RedisCommand, to node: RedisURL.Address?) -> RedisCommand {
        node.map { command.routed(toNode: $0) } ?? command
    }

    /// After an upgrade from a version that always kept the pending index by type, a queue that has one keeps it
    /// on (the meta field `type_index`, unless already set), so its `pending(type:)` stays indexed.
    private func keepTypeIndexes() async throws {
        for queue in try await queues() {
            var cursor = "0"
            repeat {
                let reply = try await command(
                    RedisCommand("SCAN", cursor, "MATCH", "\(keys.prefix(queue)):pending:type:*", "COUNT", 1000)
                        .routed(bySlotOf: keys.prefix(queue))
                )
                cursor = reply.array?.first?.string ?? "0"
                if reply.array?.last?.array?.isEmpty == false {
                    _ = try await command(RedisCommand("HSETNX", keys.meta(queue), "type_index", "1"))
                    break
                }
            } while cursor != "0"
        }
    }

    /// The version of the Conveyor library the server holds, or `nil` when it holds none. On a Redis Cluster: the
    /// version every primary holds, `nil` when one holds none, or a version other than this build's that one holds.
    ///
    /// - Throws: ``ConveyorError`` when Redis fails.
    public func installedLibraryVersion() async throws -> String? {
        let versions = try await installedLibraryVersions().map(\.version)
        if versions.contains(where: { $0 == nil }) { return nil }
        return versions.first { $0 != ConveyorLibrary.version } ?? versions.first ?? nil
    }

    /// The version each server holds: the one server (`nil` node), or every primary of a cluster.
    private func installedLibraryVersions() async throws -> [(node: RedisURL.Address?, version: String?)] {
        var versions: [(RedisURL.Address?, String?)] = []
        for node in try await libraryNodes() { versions.append((node, try await installedLibraryVersion(on: node))) }
        return versions
    }

    /// What `conveyor_version` answers on one server (or cluster node): with `FCALL_RO` (the function is
    /// `no-writes`), so a read-only user (the dashboard's) may check the version too, and with `FCALL` when the
    /// server holds a library whose version function is not flagged so (an older or foreign one).
    func libraryVersionReply(on node: RedisURL.Address?) async throws -> RedisReply {
        let reply = try await whileLoading("checking Conveyor's function library") {
            try await redis.send(JobQueue.routed(RedisCommand("FCALL_RO", "conveyor_version", 0), to: node))
        }
        guard let message = reply.errorMessage, message.contains("write flag") else { return reply }
        return try await whileLoading("checking Conveyor's function library") {
            try await redis.send(JobQueue.routed(RedisCommand("FCALL", "conveyor_version", 0), to: node))
        }
    }

    /// The library version one server (or cluster node) holds.
    private func installedLibraryVersion(on node: RedisURL.Address?) async throws -> String? {
        let reply = try await libraryVersionReply(on: node)
        if let message = reply.errorMessage {
            if Self.isMissingFunction(message) { return nil }
            throw ConveyorError(
                .redis,
                "\(node.map { "The cluster node \($0) of " } ?? "")Redis at \(redis.configuration.url) refused FCALL_RO "
                    + "conveyor_version: \(message)"
                    + (message.hasPrefix("NOPERM") ? "; the user needs +fcall_ro (see the README's ACL section)" : "")
            )
        }
        // A library from before the version function answers with its version string only from then on.
        return reply.string ?? "unknown"
    }

    /// Checks once per instance that the server holds this build's library; installs it when
    /// ``Configuration/installsLibrary`` allows, else fails saying how to install it.
    func prepare() async throws {
        if state.withLock({ $0.libraryChecked }) { return }
        let versions = try await installedLibraryVersions()
        let wrong = versions.filter { $0.version != ConveyorLibrary.version }
        if let first = wrong.first {
            guard configuration.installsLibrary else {
                let url = redis.configuration.url
                // On a cluster, the primaries that lack it (a new shard) or hold another version.
                let nodes =
                    versions.count > 1
                    ? " (on the cluster node\(wrong.count == 1 ? "" : "s") "
                        + wrong.compactMap { $0.node?.description }.joined(separator: ", ") + ")" : ""
                let problem =
                    if let found = first.version {
                        "Redis at \(url)\(nodes) holds version \(found) of Conveyor's function library, but this "
                            + "client needs version \(ConveyorLibrary.version) (every client must run the same release)"
                    } else {
                        "Conveyor's function library is not installed on Redis at \(url)\(nodes)"
                    }
                throw ConveyorError(
                    .libraryMismatch,
                    problem + ": run 'conveyor install' once with an admin credential, or let trusted clients "
                        + "install it (--install-library, JobQueue.Configuration.installsLibrary)"
                )
            }
            try await installLibrary()
        }
        await warnAboutEviction()
        state.withLock { $0.libraryChecked = true }
    }

    /// The server's `maxmemory-policy`, from `INFO memory`; `nil` when this user may not read it.
    /// On a Redis Cluster, the first policy other than `noeviction` that a primary has, else `noeviction`.
    public func evictionPolicy() async throws -> String? {
        var policies: [String] = []
        for node in try await libraryNodes() {
            let reply: RedisReply
            do {
                reply = try await redis.send(JobQueue.routed(RedisCommand("INFO", "memory"), to: node))
            } catch let error as RedisClientError {
                throw ConveyorError(.redis, error.message)
            }
            guard let info = reply.string else { continue }
            for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("maxmemory_policy:") {
                policies.append(String(line.dropFirst("maxmemory_policy:".count)))
            }
        }
        return policies.first { $0 != "noeviction" } ?? policies.first
    }

    /// Why the server's memory policy endangers jobs, or `nil` when it does not (or cannot be read).
    public func evictionWarning() async -> String? {
        guard let policy = try? await evictionPolicy(), policy != "noeviction" else { return nil }
        return "Redis at \(redis.configuration.url) has maxmemory-policy \(policy): under memory pressure it deletes "
            + "keys, and with them acknowledged jobs; set maxmemory-policy noeviction (see the README's Redis section)"
    }

    private func warnAboutEviction() async {
        guard let warning = await evictionWarning() else { return }
        logger.warning("\(warning)", metadata: ["conveyor.redis": "\(redis.configuration.url)"])
    }

    static func isMissingFunction(_ message: String) -> Bool {
        message.contains("Function not found") || message.contains("Library not found")
    }

    /// Runs `body` again while the server answers `LOADING` (it is reading its AOF or RDB), for up to a minute.
    private func whileLoading(_ doing: String, _ body: () async throws -> RedisReply) async throws -> RedisReply {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while true {
            let reply: RedisReply
            do {
                reply = try await body()
            } catch let error as RedisClientError {
                throw ConveyorError(.redis, error.message)
            }
            guard let message = reply.errorMessage, message.hasPrefix("LOADING") else { return reply }
            guard clock.now < deadline else {
                throw ConveyorError(
                    .redis,
                    "Redis at \(redis.configuration.url) was still loading its dataset after 60 s while \(doing); "
                        + "wait until INFO persistence shows loading:0, then try again"
                )
            }
            logger.debug(
                "Redis is loading its dataset; waiting",
                metadata: ["conveyor.redis": "\(redis.configuration.url)"]
            )
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}
