import Foundation
import RedisClient

/// One reading of a Redis server's own counters (`INFO`), taken by ``RedisCost``.
struct RedisSnapshot: Sendable {
    /// The server's process id (`INFO server` `process_id`).
    var pid: Int
    /// The server's own CPU time, user plus system (`used_cpu_user` + `used_cpu_sys`, µs resolution).
    var cpuMicroseconds: Int
    /// The server's CPU time from `/proc/<pid>/stat` (utime + stime), in µs; `nil` when it runs on another machine.
    var procCPUMicroseconds: Int?
    /// `total_commands_processed`: in Redis 7 this counts the commands run inside functions and scripts too.
    var commandsProcessed: Int
    /// `INFO commandstats` calls by command (`set`, `fcall`, `client|setname`, …).
    var commandCalls: [String: Int]
    /// `used_memory`, in bytes.
    var usedMemory: Int
    /// The sampler's own commands sent before this reading (its INFO of this reading excluded).
    var ownCommands: Int
    /// Client commands seen by `MONITOR` before this reading's mark, when monitoring.
    var monitoredClientCommands: Int?
    /// Commands seen by `MONITOR` as run inside functions and scripts (`[0 lua]`), when monitoring.
    var monitoredInnerCommands: Int?
    /// When the reading was taken.
    var at: ContinuousClock.Instant
}

/// What happened on the server between two snapshots, the sampler's own commands taken out.
struct RedisCostDelta: Sendable {
    var seconds: Double
    var cpuMicroseconds: Int
    var procCPUMicroseconds: Int?
    /// `total_commands_processed` delta: client commands and the commands run inside functions.
    var commands: Int
    /// Sum of all `cmdstat_*` calls (equal to `commands` for Redis 7, which counts both the same way).
    var commandstatsCalls: Int
    /// `cmdstat_fcall` + `cmdstat_fcall_ro` calls.
    var fcalls: Int
    /// Commands sent by clients (from `MONITOR`), when monitoring; `nil` otherwise.
    var clientCommands: Int?
    /// The busiest commands, by calls.
    var topCommands: [(name: String, calls: Int)]
    var memoryBytes: Int

    /// Per-job figures over `jobs` jobs.
    func perJob(_ jobs: Int) -> RedisCostPerJob {
        let count = Double(max(1, jobs))
        return RedisCostPerJob(
            jobs: jobs,
            seconds: seconds,
            redisCPUMicroseconds: Double(cpuMicroseconds) / count,
            redisProcCPUMicroseconds: procCPUMicroseconds.map { Double($0) / count },
            commands: Double(commands) / count,
            commandstatsCalls: Double(commandstatsCalls) / count,
            fcalls: Double(fcalls) / count,
            clientCommands: clientCommands.map { Double($0) / count },
            topCommands: topCommands.prefix(8).map { ($0.name, Double($0.calls) / count) }
        )
    }
}

/// Figures per job, for printing.
struct RedisCostPerJob: Sendable {
    var jobs: Int
    var seconds: Double
    var redisCPUMicroseconds: Double
    var redisProcCPUMicroseconds: Double?
    var commands: Double
    var commandstatsCalls: Double
    var fcalls: Double
    var clientCommands: Double?
    var topCommands: [(String, Double)]

    var jobsPerSecond: Double { seconds > 0 ? Double(jobs) / seconds : 0 }

    /// Human-readable lines, each starting with `label`.
    func lines(_ label: String) -> [String] {
        let proc = redisProcCPUMicroseconds.map { String(format: ", %.1f µs/job (/proc ticks)", $0) } ?? ""
        let client = clientCommands.map { String(format: ", client commands %.2f/job (MONITOR)", $0) } ?? ""
        var lines = [
            "\(label): \(jobs) jobs in \(String(format: "%.2f", seconds)) s, \(formatRate(jobsPerSecond)) jobs/s",
            "\(label): Redis CPU \(String(format: "%.1f", redisCPUMicroseconds)) µs/job (INFO used_cpu_*)\(proc)",
            "\(label): commands \(String(format: "%.2f", commands))/job incl. inside functions (commandstats "
                + "\(String(format: "%.2f", commandstatsCalls))), FCALL \(String(format: "%.2f", fcalls))/job\(client)",
        ]
        if !topCommands.isEmpty {
            let top = topCommands.map { "\($0.0) \(String(format: "%.2f", $0.1))" }.joined(separator: ", ")
            lines.append("\(label): per job by command: \(top)")
        }
        return lines
    }

    /// JSON fields, each name prefixed with `prefix` (e.g. `fill_`), or unprefixed with "".
    func json(_ prefix: String = "") -> [String: any Sendable] {
        var figures: [String: any Sendable] = [
            "\(prefix)jobs": jobs,
            "\(prefix)jobs_per_second": Int(jobsPerSecond.rounded()),
            "\(prefix)redis_cpu_us_per_job": rounded(redisCPUMicroseconds),
            "\(prefix)commands_per_job": rounded(commands),
            "\(prefix)commandstats_calls_per_job": rounded(commandstatsCalls),
            "\(prefix)fcalls_per_job": rounded(fcalls),
            "\(prefix)client_commands_per_job": clientCommands.map { rounded($0) as any Sendable } ?? NSNull(),
        ]
        if let redisProcCPUMicroseconds {
            figures["\(prefix)redis_proc_cpu_us_per_job"] = rounded(redisProcCPUMicroseconds)
        }
        return figures
    }
}

/// Reads a Redis server's own cost (CPU, commands, memory) over a connection of its own.
///
/// Every snapshot is one `INFO server cpu stats memory commandstats`, which the next snapshot sees as one command;
/// the sampler counts its own commands and takes them out of every delta. With `monitor`, a `redis-cli monitor`
/// writes every command to a file, and each snapshot first sends `ECHO <mark>` so that the commands clients sent
/// (not run inside functions, which `MONITOR` shows as `[0 lua]`) can be counted between two snapshots. `MONITOR`
/// costs the server CPU of its own: with it, the CPU figures are too high.
actor RedisCost {
    private let connection: RedisConnection
    private var ownCommands = 0
    private var marks = 0
    private let monitor: MonitorLog?
    private let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    init(url: RedisURL, monitor: Bool = false) throws {
        connection = RedisConnection(configuration: .init(url: url))
        self.monitor = monitor ? try MonitorLog(url: url) : nil
    }

    /// Stops the monitor (when there is one) and closes the connection.
    func stop() {
        monitor?.stop()
        connection.close()
    }

    /// Reads the server's counters now.
    func snapshot() async throws -> RedisSnapshot {
        var monitored: (client: Int, inner: Int)?
        if let monitor {
            marks += 1
            let mark = "conveyor-cost-mark-\(marks)"
            _ = try await connection.send("ECHO", mark)
            ownCommands += 1
            monitored = try monitor.counts(before: mark)
        }
        let own = ownCommands
        let info = try await connection.send("INFO", "server", "cpu", "stats", "memory", "commandstats").string ?? ""
        ownCommands += 1
        let at = ContinuousClock.now
        var fields: [Substring: Substring] = [:]
        var calls: [String: Int] = [:]
        for line in info.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = line[..<colon]
            let value = line[line.index(after: colon)...]
            if name.hasPrefix("cmdstat_") {
                // cmdstat_set:calls=5,usec=49,…
                let callsField = value.split(separator: ",").first { $0.hasPrefix("calls=") }
                calls[String(name.dropFirst("cmdstat_".count))] = Int(callsField?.dropFirst("calls=".count) ?? "")
            } else {
                fields[name] = value
            }
        }
        let microseconds = { (name: Substring) in Int(((Double(fields[name] ?? "") ?? 0) * 1e6).rounded()) }
        let pid = Int(fields["process_id"] ?? "") ?? 0
        return RedisSnapshot(
            pid: pid,
            cpuMicroseconds: microseconds("used_cpu_user") + microseconds("used_cpu_sys"),
            procCPUMicroseconds: Self.redisProcessTicks(pid).map { Int(Double($0) / ticksPerSecond * 1e6) },
            commandsProcessed: Int(fields["total_commands_processed"] ?? "") ?? 0,
            commandCalls: calls,
            usedMemory: Int(fields["used_memory"] ?? "") ?? 0,
            ownCommands: own,
            monitoredClientCommands: monitored?.client,
            monitoredInnerCommands: monitored?.inner,
            at: at
        )
    }

    /// A command sent for the benchmark itself (e.g. polling for completion), taken out of the deltas.
    func send(_ name: String, _ arguments: any RedisArgumentConvertible...) async throws -> RedisReply {
        ownCommands += 1
        return try await connection.send(RedisCommand(name, arguments))
    }

    /// How many jobs of a queue have completed: its `completed` counter (`<namespace>:{<queue>}:stats`, never
    /// trimmed by retention), one HGET on the sampler's connection.
    func completed(namespace: String, queue: String = "default") async throws -> Int {
        Int(try await send("HGET", "\(namespace):{\(queue)}:stats", "completed").string ?? "") ?? 0
    }

    /// Waits until `count` jobs of a queue have completed, polling every 10 ms.
    func waitForCompleted(
        namespace: String,
        queue: String = "default",
        _ count: Int,
        timeout: Duration = .seconds(600)
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await completed(namespace: namespace, queue: queue) < count {
            guard ContinuousClock.now < deadline else {
                throw RedisCostError("jobs did not complete within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The change from `start` to `end`, without the sampler's own commands.
    nonisolated func delta(_ start: RedisSnapshot, _ end: RedisSnapshot) -> RedisCostDelta {
        let own = end.ownCommands - start.ownCommands
        var changed: [(name: String, calls: Int)] = end.commandCalls.compactMap { name, calls in
            let change = calls - (start.commandCalls[name] ?? 0)
            return change > 0 ? (name, change) : nil
        }
        changed.sort { $0.calls > $1.calls }
        let fcalls = changed.filter { $0.name == "fcall" || $0.name == "fcall_ro" }.reduce(0) { $0 + $1.calls }
        return RedisCostDelta(
            seconds: (end.at - start.at).seconds,
            cpuMicroseconds: end.cpuMicroseconds - start.cpuMicroseconds,
            procCPUMicroseconds: end.procCPUMicroseconds.flatMap { e in start.procCPUMicroseconds.map { e - $0 } },
            commands: end.commandsProcessed - start.commandsProcessed - own,
            commandstatsCalls: changed.reduce(0) { $0 + $1.calls } - own,
            fcalls: fcalls,
            clientCommands: end.monitoredClientCommands.flatMap { e in
                start.monitoredClientCommands.map { e - $0 - own }
            },
            topCommands: changed,
            memoryBytes: end.usedMemory - start.usedMemory
        )
    }

    /// utime + stime of the Redis server's process, in clock ticks, when it runs on this machine.
    private static func redisProcessTicks(_ pid: Int) -> Int? {
        guard pid > 0,
            let name = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8),
            name.hasPrefix("redis")
        else { return nil }
        return processTicks(Int32(pid))
    }
}

/// utime + stime (fields 14 and 15 of `/proc/<pid>/stat`) of a process, in clock ticks.
func processTicks(_ pid: Int32) -> Int? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
    else { return nil }
    // Fields after "(comm)" start at field 3, so utime (14) and stime (15) are the 12th and 13th of the rest.
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
    return user + system
}

/// The CPU time (user + system) a process has used so far, in seconds, from `/proc/<pid>/stat`.
func processCPUSeconds(_ pid: Int32) -> Double? {
    processTicks(pid).map { Double($0) / Double(sysconf(Int32(_SC_CLK_TCK))) }
}

struct RedisCostError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A `redis-cli monitor` process writing every command the server runs to a temporary file.
final class MonitorLog {
    private let process: Process
    private let path: String

    init(url: RedisURL) throws {
        guard case .tcp(let host, let port) = url.endpoint else {
            throw RedisCostError("--monitor needs a TCP Redis URL")
        }
        var arguments = ["redis-cli", "-h", host, "-p", String(port)]
        if let password = url.password { arguments += ["-a", password, "--no-auth-warning"] }
        if let username = url.username { arguments += ["--user", username] }
        arguments.append("monitor")
        path = NSTemporaryDirectory() + "conveyor-cost-monitor-\(getpid())-\(UUID().uuidString.prefix(8)).log"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle(forWritingAtPath: path)
        try process.run()
        self.process = process
        Thread.sleep(forTimeInterval: 0.3)
    }

    /// Client commands and commands run inside functions (`[0 lua]`) logged before the line that echoes `mark`.
    func counts(before mark: String) throws -> (client: Int, inner: Int) {
        let needle = "\"ECHO\" \"\(mark)\""
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let text = String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data(), as: UTF8.self)
            var client = 0
            var inner = 0
            for line in text.split(separator: "\n") {
                if line.hasSuffix(needle) { return (client, inner) }
                guard let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]") else { continue }
                if line[open..<close].hasSuffix(" lua") { inner += 1 } else { client += 1 }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw RedisCostError("MONITOR did not log \(mark)")
    }

    func stop() {
        // SIGKILL: a child started from here may inherit a signal mask that blocks SIGTERM.
        _ = kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: path)
    }
}
