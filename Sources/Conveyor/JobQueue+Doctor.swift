import Foundation
import RedisClient

/// One finding of ``JobQueue/doctor(role:)``: what was checked, how it stands, and what to do about it.
public struct DoctorCheck: Sendable, Hashable, Codable {
    /// How a check came out.
    public enum Status: String, Sendable, Hashable, Codable {
        /// Nothing to do.
        case pass
        /// Works, but risks jobs or speed; the fix says how to do better.
        case warn
        /// Must be fixed: jobs can be lost, or Conveyor cannot run.
        case fail
    }

    /// A short name, e.g. `maxmemory-policy`.
    public var name: String
    /// How it came out.
    public var status: Status
    /// What was found.
    public var detail: String
    /// What to do, when the status is not `pass`.
    public var fix: String?

    /// Creates a finding.
    public init(_ name: String, _ status: Status, _ detail: String, fix: String? = nil) {
        self.name = name
        self.status = status
        self.detail = detail
        self.fix = fix
    }
}

/// The part a credential plays, for ``JobQueue/doctor(role:)``'s permission check (the users of
/// `deploy/redis/users.acl`).
public enum DoctorRole: String, Sendable, CaseIterable {
    /// Enqueues and reads jobs.
    case producer
    /// Runs jobs, registers itself, may lead the scheduler.
    case worker
    /// Reads only (dashboards, `stats`, `tail`).
    case reader
    /// Installs the library and operates.
    case admin
}

extension JobQueue {
    /// Checks a deployment and says what to fix: the server's version, `maxmemory-policy`, persistence, replication
    /// and cluster health, the function library on every primary, the clock skew of this machine and of the live
    /// workers, the credential's permissions for `role`, and the round-trip time. Never throws: a check that cannot
    /// be made is a finding too.
    ///
    /// - Parameter role: What the credential in the URL is for.
    /// - Returns: One finding per check, in a fixed order.
    public func doctor(role: DoctorRole = .worker) async -> [DoctorCheck] {
        var checks: [DoctorCheck] = []
        // Reachability and the round trip.
        let clock = ContinuousClock()
        var trips: [Duration] = []
        for _ in 0..<5 {
            let started = clock.now
            do {
                _ = try await redis.send("PING")
            } catch let error as RedisClientError {
                return [DoctorCheck("connection", .fail, error.message, fix: "check the URL and that Redis runs")]
            } catch {
                return [DoctorCheck("connection", .fail, "\(error)", fix: "check the URL and that Redis runs")]
            }
            trips.append(clock.now - started)
        }
        let median = trips.sorted()[trips.count / 2]
        let milliseconds = Double(median.components.attoseconds) / 1e15 + Double(median.components.seconds) * 1000
        checks.append(
            milliseconds < 5
                ? DoctorCheck("round trip", .pass, String(format: "%.2f ms (median of 5 PINGs)", milliseconds))
                : DoctorCheck(
                    "round trip",
                    .warn,
                    String(format: "%.1f ms (median of 5 PINGs)", milliseconds),
                    fix: "every job costs a few round trips: run workers close to Redis, or check its load (SLOWLOG, "
                        + "INFO cpu)"
                )
        )
        let nodes: [RedisURL.Address?]
        do {
            nodes = try await libraryNodes()
        } catch {
            nodes = [nil]
        }
        let isCluster = nodes.contains { $0 != nil }
        for node in nodes {
            let on = node.map { " on \($0)" } ?? ""
            let info = (try? await redis.send(JobQueue.routed(RedisCommand("INFO", "everything"), to: node)))
            let values = Self.infoFields(info?.string ?? "")
            // Version.
            if let version = values["redis_version"] {
                let major = Int(version.prefix { $0 != "." }) ?? 0
                checks.append(
                    major >= 7
                        ? DoctorCheck("redis version\(on)", .pass, version)
                        : DoctorCheck(
                            "redis version\(on)",
                            .fail,
                            version,
                            fix: "Conveyor needs Redis 7 or newer (functions): upgrade redis-server"
                        )
                )
            } else {
                checks.append(
                    DoctorCheck(
                        "server info\(on)",
                        .warn,
                        info?.errorMessage ?? "INFO gave nothing",
                        fix: "grant +info to read the server's settings (see deploy/redis/users.acl)"
                    )
                )
            }
            // Eviction.
            if let policy = values["maxmemory_policy"] {
                checks.append(
                    policy == "noeviction"
                        ? DoctorCheck("maxmemory-policy\(on)", .pass, policy)
                        : DoctorCheck(
                            "maxmemory-policy\(on)",
                            .fail,
                            "\(policy): under memory pressure Redis deletes keys, and with them acknowledged jobs",
                            fix: "CONFIG SET maxmemory-policy noeviction, and set it in redis.conf"
                        )
                )
            }
            // Persistence.
            let aof = values["aof_enabled"] == "1"
            let fsync =
                (try? await redis.send(JobQueue.routed(RedisCommand("CONFIG", "GET", "appendfsync"), to: node)))?
                .array?.last?.string
            let save = (try? await redis.send(JobQueue.routed(RedisCommand("CONFIG", "GET", "save"), to: node)))?
                .array?.last?.string
            if aof {
                switch fsync {
                case "always", "everysec":
                    checks.append(DoctorCheck("persistence\(on)", .pass, "AOF on, appendfsync \(fsync ?? "")"))
                case "no":
                    checks.append(
                        DoctorCheck(
                            "persistence\(on)",
                            .warn,
                            "AOF on, appendfsync no: the OS decides when writes reach the disk (up to ~30 s lost)",
                            fix: "CONFIG SET appendfsync everysec (at most a second lost on a crash)"
                        )
                    )
                default:
                    checks.append(DoctorCheck("persistence\(on)", .pass, "AOF on (appendfsync not readable)"))
                }
            } else if let save, !save.isEmpty {
                checks.append(
                    DoctorCheck(
                        "persistence\(on)",
                        .warn,
                        "RDB snapshots only (save \(save)): a crash loses every job since the last snapshot",
                        fix: "CONFIG SET appendonly yes and appendfsync everysec"
                    )
                )
            } else if save == nil {
                checks.append(
                    DoctorCheck(
                        "persistence\(on)",
                        .warn,
                        "AOF off; the snapshot settings are not readable with this credential",
                        fix: "check appendonly and save in redis.conf (appendonly yes is what jobs need)"
                    )
                )
            } else {
                checks.append(
                    DoctorCheck(
                        "persistence\(on)",
                        .fail,
                        "none (appendonly no, save \"\"): a restart of Redis loses every job",
                        fix: "CONFIG SET appendonly yes and appendfsync everysec, and set them in redis.conf"
                    )
                )
            }
            // Replication.
            if values["role"] == "slave" {
                checks.append(
                    DoctorCheck(
                        "replication\(on)",
                        .fail,
                        "the server is a replica (read-only)",
                        fix: "point the URL at the primary, or use redis+sentinel:// so Conveyor follows failovers"
                    )
                )
            } else if let replicas = values["connected_slaves"].flatMap(Int.init) {
                checks.append(
                    replicas > 0
                        ? DoctorCheck("replication\(on)", .pass, "primary with \(replicas) replica(s)")
                        : DoctorCheck(
                            "replication\(on)",
                            .warn,
                            "primary without replicas: the loss of its host loses the jobs",
                            fix: "add a replica (and Sentinel, or a cluster replica) for failover"
                        )
                )
            }
            // The library.
            let reply = try? await libraryVersionReply(on: node)
            if let version = reply?.string, version == ConveyorLibrary.version {
                checks.append(DoctorCheck("function library\(on)", .pass, "version \(version), as this build needs"))
            } else {
                let found =
                    reply?.string.map { "version \($0), but this build needs \(ConveyorLibrary.version)" }
                    ?? (reply?.errorMessage.map { Self.isMissingFunction($0) ? "not installed" : $0 } ?? "unreadable")
                checks.append(
                    DoctorCheck(
                        "function library\(on)",
                        .fail,
                        found,
                        fix: "run 'conveyor install' with an admin credential (every client must run the same release)"
                    )
                )
            }
        }
        if isCluster {
            let info = (try? await redis.send(RedisCommand("CLUSTER", "INFO")))?.string ?? ""
            let values = Self.infoFields(info)
            let state = values["cluster_state"] ?? "unknown"
            let slots = values["cluster_slots_ok"] ?? "?"
            checks.append(
                state == "ok" && slots == "16384"
                    ? DoctorCheck("cluster", .pass, "state ok, \(nodes.count) primaries, 16384 slots served")
                    : DoctorCheck(
                        "cluster",
                        .fail,
                        "state \(state), \(slots) slots served",
                        fix: "check CLUSTER NODES; redis-cli --cluster check and --cluster fix"
                    )
            )
        }
        checks += await clockChecks()
        checks += await permissionChecks(role)
        return checks
    }

    /// This machine's clock and each live worker's against Redis `TIME`.
    private func clockChecks() async -> [DoctorCheck] {
        guard let time = (try? await redis.send("TIME"))?.array, time.count == 2,
            let seconds = time[0].string.flatMap(Double.init), let micros = time[1].string.flatMap(Double.init)
        else { return [] }
        let redisNow = seconds + micros / 1e6
        var checks: [DoctorCheck] = []
        let local = Date().timeIntervalSince1970 - redisNow
        checks.append(
            abs(local) < 1
                ? DoctorCheck("clock", .pass, String(format: "this machine is %.3f s off Redis TIME", local))
                : DoctorCheck(
                    "clock",
                    .warn,
                    String(format: "this machine is %.1f s off Redis TIME", local),
                    fix: "run NTP (chrony, systemd-timesyncd): absolute run_at times and cleanup cutoffs use it"
                )
        )
        // A worker's record is refreshed every 2 s with its own clock: later than Redis's now means it runs ahead.
        for worker in (try? await workers()) ?? [] {
            let skew = worker.lastHeartbeat.timeIntervalSince1970 - redisNow
            if skew > 1 {
                checks.append(
                    DoctorCheck(
                        "clock of worker \(worker.id)",
                        .warn,
                        String(format: "%.1f s ahead of Redis TIME (host %@)", skew, worker.host),
                        fix: "run NTP on \(worker.host)"
                    )
                )
            }
        }
        return checks
    }

    /// Whether the credential may run what `role` needs: harmless probes (reads, and writes that change nothing).
    private func permissionChecks(_ role: DoctorRole) async -> [DoctorCheck] {
        let probeQueue = keys.prefix("__doctor__")
        var probes: [(what: String, command: RedisCommand)] = [
            ("TIME", RedisCommand("TIME")),
            ("FCALL_RO on the queues' keys", RedisCommand("FCALL_RO", "conveyor_version", 0)),
            ("reading queue keys (~\(keys.namespace):{*}:*)", RedisCommand("EXISTS", "\(probeQueue):meta")),
            ("reading \(keys.queues)", RedisCommand("SISMEMBER", keys.queues, "__doctor__")),
        ]
        if role != .reader {
            probes += [
                ("FCALL", RedisCommand("FCALL", "conveyor_version", 0)),
                ("writing queue keys (~\(keys.namespace):{*}:*)", RedisCommand("DEL", "\(probeQueue):doctor")),
                ("writing \(keys.queues)", RedisCommand("SREM", keys.queues, "__doctor__")),
            ]
        }
        if role == .worker || role == .admin {
            probes += [
                ("writing \(keys.workers)", RedisCommand("SREM", keys.workers, "__doctor__")),
                ("writing \(keys.worker("*"))", RedisCommand("DEL", keys.worker("__doctor__"))),
                ("writing \(keys.leader)", RedisCommand("HDEL", keys.leader, "__doctor__")),
                ("writing \(keys.schedules)", RedisCommand("SREM", keys.schedules, "__doctor__")),
                ("writing \(keys.scheduleChanges)", RedisCommand("XDEL", keys.scheduleChanges, "0-1")),
            ]
        }
        if role == .admin {
            probes.append(("FUNCTION LIST", RedisCommand("FUNCTION", "LIST", "LIBRARYNAME", "__doctor__")))
        }
        var refused: [String] = []
        for probe in probes {
            let reply = try? await redis.send(probe.command)
            if let message = reply?.errorMessage, message.hasPrefix("NOPERM") {
                refused.append("\(probe.what): \(message)")
            }
        }
        guard refused.isEmpty else {
            return refused.map { refusal in
                DoctorCheck(
                    "permissions (\(role.rawValue))",
                    .fail,
                    "may not run \(refusal)",
                    fix: "grant what the \(role.rawValue) user of deploy/redis/users.acl has (ACL SETUSER …)"
                )
            }
        }
        return [
            DoctorCheck("permissions (\(role.rawValue))", .pass, "every probe of the \(role.rawValue) role was allowed")
        ]
    }

    /// `field:value` lines of an `INFO` or `CLUSTER INFO` reply.
    static func infoFields(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
                .trimmingCharacters(in: .whitespaces)
        }
        return fields
    }
}
