import ArgumentParser
import Conveyor
import Foundation
import Logging
import RedisClient
import ServiceLifecycle

/// `conveyor-bench dashboard`: the overview page of `conveyor serve` over many queues and finished jobs, and its live
/// stream (`/api/events`) under a steady rate of transitions.
///
/// The data is what Conveyor itself writes: every job is enqueued with ``JobQueue/enqueueMany(_:)`` and run by a real
/// ``Worker`` (a no-op handler, and one that fails for good for a share of them), so the job hashes, the finished
/// indexes, the counters, the throughput history and the event streams are exactly those of production. Retention is
/// set to keep every finished job. Then a few jobs per queue are left pending.
struct DashboardBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Overview page time and the live stream of conveyor serve over seeded queues.",
        discussion: """
            Seeds a private redis-server (or --redis) with --queues queues and --jobs finished jobs (enqueued, then \
            run by a real worker), starts the `conveyor` binary next to this one (`conveyor serve --port 0`), loads \
            / --loads times after --warmups, --page-runs times, then reads /api/events while enqueues come at --rate \
            per second for --seconds.
            """
    )

    @OptionGroup var server: ServerOptions
    @Option(help: "Queues to seed.") var queues = 100
    @Option(help: "Finished jobs to seed, spread evenly over the queues.") var jobs = 1_000_000
    @Option(help: "Percent of the finished jobs that fail (for good).") var failedPercent = 5
    @Option(help: "Pending jobs left in each queue.") var pending = 10
    @Option(help: "Page loads measured per run.") var loads = 30
    @Option(help: "Page loads before measuring.") var warmups = 3
    @Option(help: "Runs of the page loads; 0 skips them.") var pageRuns = 3
    @Option(help: "Transitions (enqueues) per second during the stream test; 0 skips it.") var rate = 5_000
    @Option(help: "Seconds of the stream test.") var seconds = 30
    @Option(help: "Extra /api/events clients that never read during the stream test (the server must not buffer).")
    var stalledClients = 1
    @Option(help: "Worker concurrency while seeding.") var concurrency = 200
    @Option(help: "The conveyor binary (default: the one next to conveyor-bench).") var conveyor: String?

    func run() async throws {
        let executable =
            conveyor
            ?? (Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0]))
            .deletingLastPathComponent().appendingPathComponent("conveyor").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ValidationError("no conveyor binary at \(executable): swift build -c release --product conveyor")
        }
        try await server.withServer { url in
            let redis = RedisClient(configuration: .init(url: url, maximumConnections: 32))
            defer { redis.shutdown() }
            let store = JobQueue(redis: redis, configuration: .init(installsLibrary: true))
            try await store.installLibrary()
            let names = (0..<queues).map { String(format: "q%03d", $0) }
            var figures: [String: any Sendable] = [
                "benchmark": "dashboard", "queues": queues, "jobs": jobs / max(1, queues) * queues,
            ]
            let seeded = try await seed(store, names)
            figures.merge(seeded) { $1 }
            let serve = try ServeProcess(executable: executable, url: url)
            do {
                if pageRuns > 0 { figures.merge(try await pageLoads(url, serve)) { $1 } }
                if rate > 0 { figures.merge(try await stream(store, names, serve)) { $1 } }
                serve.stop()
            } catch {
                serve.stop()
                throw error
            }
            try printJSON(figures)
        }
    }

    // MARK: - Seeding

    /// Enqueues the jobs, runs them with a real worker until every one finished, then leaves some pending.
    func seed(_ store: JobQueue, _ names: [String]) async throws -> [String: any Sendable] {
        let clock = ContinuousClock()
        let started = clock.now
        for name in names {
            try await store.setRetention(queue: name, status: .completed, maxAge: nil, maxCount: nil)
            try await store.setRetention(queue: name, status: .failed, maxAge: nil, maxCount: nil)
        }
        let perQueue = jobs / max(1, names.count)
        let total = perQueue * names.count
        let failEvery = failedPercent > 0 ? max(1, 100 / failedPercent) : Int.max
        var handlers = JobHandlers()
        handlers.registerJSON("ok") { _ in nil }
        handlers.registerJSON("bad") { _ in throw JobFailure.permanent("the benchmark fails this one") }
        var logger = Logger(label: "bench")
        logger.logLevel = .warning
        let worker = Worker(
            queue: store,
            handlers: handlers,
            configuration: .init(
                queues: names,
                order: .strict,
                concurrency: concurrency,
                gracePeriod: .seconds(1),
                runsScheduler: false
            ),
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [worker], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // Enqueue from four tasks, 1 000 jobs (one call) at a time; the worker drains meanwhile.
            try await withThrowingTaskGroup(of: Void.self) { producers in
                for part in 0..<4 {
                    producers.addTask {
                        for (index, name) in names.enumerated() where index % 4 == part {
                            var done = 0
                            while done < perQueue {
                                let count = min(1000, perQueue - done)
                                let batch = (done..<(done + count)).map { number in
                                    NewJob(
                                        number % failEvery == failEvery - 1 ? "bad" : "ok",
                                        json: "{\"n\":\(number)}",
                                        options: JobOptions(queue: name)
                                    )
                                }
                                _ = try await store.enqueueMany(batch)
                                done += count
                            }
                        }
                    }
                }
                try await producers.waitForAll()
            }
            let enqueued = clock.now
            print(String(format: "seed: enqueued %d jobs in %.1f s", total, (enqueued - started).seconds))
            var finished = 0
            var lastPrint = clock.now
            while finished < total {
                try await Task.sleep(for: .milliseconds(500))
                finished = try await finishedCount(store, names)
                if clock.now - lastPrint > .seconds(10) {
                    print(
                        String(
                            format: "seed: %d of %d finished (%.0f s)",
                            finished,
                            total,
                            (clock.now - started).seconds
                        )
                    )
                    lastPrint = clock.now
                }
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let drained = clock.now
        for name in names where pending > 0 {
            _ = try await store.enqueueMany(
                (0..<pending).map { NewJob("ok", json: "{\"n\":\($0)}", options: JobOptions(queue: name)) }
            )
        }
        let seconds = (drained - started).seconds
        let memory = try await usedMemory(store)
        print(
            String(
                format: "seed: %d jobs finished (%d%% failed) over %d queues in %.1f s (%.0f jobs/s), %d pending; "
                    + "Redis used_memory %.0f MiB",
                total,
                failedPercent,
                names.count,
                seconds,
                Double(total) / seconds,
                pending * names.count,
                Double(memory) / 1_048_576
            )
        )
        return [
            "seed_seconds": rounded(seconds), "pending": pending * names.count,
            "redis_used_memory_bytes": memory,
        ]
    }

    func finishedCount(_ store: JobQueue, _ names: [String]) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for name in names {
                group.addTask {
                    let counts = try await store.counts(queue: name)
                    return (counts[.completed] ?? 0) + (counts[.failed] ?? 0) + (counts[.cancelled] ?? 0)
                }
            }
            return try await group.reduce(0, +)
        }
    }

    func usedMemory(_ store: JobQueue) async throws -> Int {
        let info = try await store.redis.send(RedisCommand("INFO", "memory")).string ?? ""
        for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("used_memory:") {
            return Int(line.dropFirst("used_memory:".count)) ?? 0
        }
        return 0
    }

    // MARK: - Page loads

    func pageLoads(_ url: RedisURL, _ serve: ServeProcess) async throws -> [String: any Sendable] {
        let cost = try RedisCost(url: url)
        do {
            let figures = try await measurePages(cost, serve)
            await cost.stop()
            return figures
        } catch {
            await cost.stop()
            throw error
        }
    }

    func measurePages(_ cost: RedisCost, _ serve: ServeProcess) async throws -> [String: any Sendable] {
        var medians: [Double] = []
        var p95s: [Double] = []
        var cpuPerLoad: [Double] = []
        var bytes = 0
        var commands: [(String, Double)] = []
        for run in 1...pageRuns {
            for _ in 0..<warmups { bytes = try serve.get("/").bytes }
            let before = try await cost.snapshot()
            var times: [Duration] = []
            for _ in 0..<loads {
                let clock = ContinuousClock()
                let started = clock.now
                let answer = try serve.get("/")
                times.append(clock.now - started)
                guard answer.status == 200 else { throw ValidationError("GET / answered HTTP \(answer.status)") }
                bytes = answer.bytes
            }
            let after = try await cost.snapshot()
            let delta = cost.delta(before, after)
            let perLoad = delta.perJob(loads)
            medians.append(percentile(times, 0.5))
            p95s.append(percentile(times, 0.95))
            cpuPerLoad.append(perLoad.redisCPUMicroseconds / 1000)
            commands = perLoad.topCommands
            print(
                String(
                    format: "overview run %d: %d loads, median %.1f ms, p95 %.1f ms, max %.1f ms; Redis CPU %.2f ms "
                        + "and %.0f commands per load; page %d bytes",
                    run,
                    loads,
                    percentile(times, 0.5),
                    percentile(times, 0.95),
                    percentile(times, 1),
                    perLoad.redisCPUMicroseconds / 1000,
                    perLoad.commands,
                    bytes
                )
            )
        }
        print(
            "overview: Redis commands per load: "
                + commands.map { "\($0.0) \(String(format: "%.0f", $0.1))" }.joined(separator: ", ")
        )
        return [
            "page_median_ms": medians.map(rounded), "page_p95_ms": p95s.map(rounded),
            "page_redis_cpu_ms": cpuPerLoad.map(rounded), "page_bytes": bytes,
            "page_commands": Dictionary(uniqueKeysWithValues: commands.map { ($0.0, rounded($0.1)) }),
        ]
    }

    // MARK: - Live stream

    func stream(_ store: JobQueue, _ names: [String], _ serve: ServeProcess) async throws -> [String: any Sendable] {
        let probe = try StreamProbe(port: serve.port, token: serve.token)
        defer { probe.stop() }
        // Clients that connect and then never read: what the server holds for them must stay bounded.
        let stalled = try (0..<stalledClients).map { _ in
            let socket = try PlainSocket(port: serve.port, receiveBuffer: 4096)
            try socket.send(
                "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(serve.token)\r\n\r\n"
            )
            return socket
        }
        defer { for socket in stalled { socket.close() } }
        try await Task.sleep(for: .seconds(2))  // the stream reads its cursors first
        let clock = ContinuousClock()
        let start = clock.now
        let startRSS = serve.residentKilobytes()
        probe.reset(origin: Date())
        var rss: [(Double, Int)] = [(0, startRSS)]
        let sampler = Task {
            var samples: [(Double, Int)] = []
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                samples.append(((clock.now - start).seconds, serve.residentKilobytes()))
            }
            return samples
        }
        let producers = 16
        let rate = self.rate
        let end = start + .seconds(seconds)
        let produced = try await withThrowingTaskGroup(of: Int.self) { group in
            for part in 0..<producers {
                group.addTask {
                    let interval = Duration.seconds(Double(producers) / Double(rate))
                    var next = start + interval * part / producers
                    var count = 0
                    var index = part
                    while next < end {
                        try await Task.sleep(until: next)
                        _ = try await store.enqueue(
                            "ok",
                            json: "{}",
                            options: JobOptions(queue: names[index % names.count])
                        )
                        count += 1
                        index += producers
                        next += interval
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
        let producing = (clock.now - start).seconds
        // Let the stream catch up: at most 10 s.
        let deadline = clock.now + .seconds(10)
        while probe.received < produced && clock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        try await Task.sleep(for: .seconds(1))
        sampler.cancel()
        rss += await sampler.value
        let endRSS = serve.residentKilobytes()
        rss.append(((clock.now - start).seconds, endRSS))
        let received = probe.received
        let windows = probe.windows(seconds: 5)
        print(
            String(
                format: "stream: %d transitions produced in %.1f s (%.0f/s), %d received over /api/events (%d batches)",
                produced,
                producing,
                Double(produced) / producing,
                received,
                probe.batches
            )
        )
        for window in windows {
            print(
                String(
                    format: "stream lag %3.0f-%3.0f s: %6d events, p50 %.1f ms, p99 %.1f ms, max %.1f ms",
                    window.from,
                    window.from + 5,
                    window.count,
                    window.p50,
                    window.p99,
                    window.max
                )
            )
        }
        let peak = rss.map(\.1).max() ?? 0
        print("stream: \(stalledClients) more client(s) connected to /api/events and never read")
        print(
            "serve RSS: start \(startRSS / 1024) MiB, peak \(peak / 1024) MiB, end \(endRSS / 1024) MiB "
                + "(samples each second: \(rss.map { String($0.1 / 1024) }.joined(separator: " ")))"
        )
        let all = probe.allLags()
        return [
            "stream_rate": rate, "stream_seconds": seconds, "stream_produced": produced, "stream_received": received,
            "stream_lag_p50_ms": rounded(all.p50), "stream_lag_p99_ms": rounded(all.p99),
            "stream_lag_max_ms": rounded(all.max),
            "stream_windows": windows.map {
                [
                    "from_s": $0.from, "events": $0.count, "p50_ms": rounded($0.p50), "p99_ms": rounded($0.p99),
                    "max_ms": rounded($0.max),
                ] as [String: any Sendable]
            },
            "stream_stalled_clients": stalledClients, "serve_rss_kib_start": startRSS, "serve_rss_kib_peak": peak,
            "serve_rss_kib_end": endRSS,
        ]
    }
}

/// A `conveyor serve` process on a free port, with a token.
final class ServeProcess: @unchecked Sendable {
    let process: Process
    let port: Int
    let token: String

    init(executable: String, url: RedisURL) throws {
        let token = UUID().uuidString
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [
            "serve", "--redis", url.descriptionWithPassword, "--host", "127.0.0.1", "--port", "0", "--log-level",
            "warning",
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["CONVEYOR_SERVE_TOKEN"] = token
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let handle = output.fileHandleForReading
        var text = ""
        var found: Int?
        while found == nil {
            let data = handle.availableData
            if data.isEmpty {
                _ = kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                throw ValidationError("conveyor serve ended before listening: \(text)")
            }
            text += String(decoding: data, as: UTF8.self)
            if let range = text.range(of: "listening on http://127.0.0.1:") {
                let digits = text[range.upperBound...].prefix { $0.isNumber }
                if text[range.upperBound...].dropFirst(digits.count).first != nil { found = Int(digits) }
            }
        }
        // Keep reading what it prints, so that it never blocks on a full pipe.
        Thread.detachNewThread {
            while !handle.availableData.isEmpty {}
        }
        self.process = process
        self.port = found ?? 0
        self.token = token
    }

    /// `GET path` on a connection of its own, read to the end.
    func get(_ path: String) throws -> (status: Int, bytes: Int) {
        let socket = try PlainSocket(port: port)
        defer { socket.close() }
        try socket.send(
            "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n"
        )
        var response: [UInt8] = []
        while let chunk = try socket.receive() { response += chunk }
        let head = String(decoding: response.prefix(16), as: UTF8.self)
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, response.count)
    }

    /// VmRSS from `/proc/<pid>/status`, in KiB.
    func residentKilobytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
        else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return 0
    }

    func stop() {
        // SIGKILL: a child started from here may inherit a signal mask that blocks SIGTERM.
        _ = kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A blocking TCP connection to 127.0.0.1.
struct PlainSocket: Sendable {
    let descriptor: Int32

    init(port: Int, receiveBuffer: Int32? = nil) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ValidationError("socket: errno \(errno)") }
        if var size = receiveBuffer {
            setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            Glibc.close(descriptor)
            throw ValidationError("connect to port \(port): errno \(errno)")
        }
        var one: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, 0) }
            guard written > 0 else { throw ValidationError("send: errno \(errno)") }
            sent += written
        }
    }

    /// The next bytes, or `nil` at the end of the stream.
    func receive() throws -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        if count < 0 { throw ValidationError("recv: errno \(errno)") }
        return count == 0 ? nil : Array(buffer[0..<count])
    }

    func shutdown() { _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR)) }
    func close() { Glibc.close(descriptor) }
}

/// Reads `/api/events` on a thread of its own and records each event's lag: the time it was received minus its `at`
/// (the Redis time of the transition, on the same machine).
final class StreamProbe: @unchecked Sendable {
    private let lock = NSLock()
    private let socket: PlainSocket
    private var origin = Date()
    private var lags: [(at: Double, lag: Double)] = []
    private var count = 0
    private var batchCount = 0
    private var stopped = false

    init(port: Int, token: String) throws {
        socket = try PlainSocket(port: port)
        try socket.send(
            "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\nAccept: text/event-stream"
                + "\r\n\r\n"
        )
        let thread = Thread { [self] in read() }
        thread.start()
    }

    var received: Int { lock.withLock { count } }
    var batches: Int { lock.withLock { batchCount } }

    /// Forgets what was received so far and measures times from `origin`.
    func reset(origin: Date) {
        lock.withLock {
            self.origin = origin
            lags = []
            count = 0
            batchCount = 0
        }
    }

    func stop() {
        lock.withLock { stopped = true }
        socket.shutdown()
    }

    struct Window {
        var from: Double
        var count: Int
        var p50: Double
        var p99: Double
        var max: Double
    }

    func windows(seconds: Double) -> [Window] {
        let lags = lock.withLock { self.lags }
        let grouped = Dictionary(grouping: lags) { Int($0.at / seconds) }
        return grouped.keys.sorted().map { key in
            let values = grouped[key]!.map(\.lag).sorted()
            return Window(
                from: Double(key) * seconds,
                count: values.count,
                p50: Self.quantile(values, 0.5),
                p99: Self.quantile(values, 0.99),
                max: values.last ?? 0
            )
        }
    }

    func allLags() -> (p50: Double, p99: Double, max: Double) {
        let values = lock.withLock { lags.map(\.lag) }.sorted()
        return (Self.quantile(values, 0.5), Self.quantile(values, 0.99), values.last ?? 0)
    }

    static func quantile(_ sorted: [Double], _ quantile: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * quantile).rounded(.up)) - 1))]
    }

    private func read() {
        var raw: [UInt8] = []
        var position = 0
        var headersDone = false
        var chunked = false
        var chunkLeft = 0
        var body: [UInt8] = []
        while let bytes = try? socket.receive() {
            raw += bytes
            if !headersDone {
                guard let end = Self.find([13, 10, 13, 10], in: raw, from: 0) else { continue }
                let head = String(decoding: raw[0..<end], as: UTF8.self).lowercased()
                chunked = head.contains("transfer-encoding: chunked")
                headersDone = true
                position = end + 4
            }
            if chunked {
                while true {
                    if chunkLeft == 0 {
                        guard let lineEnd = Self.find([13, 10], in: raw, from: position) else { break }
                        let line = String(decoding: raw[position..<lineEnd], as: UTF8.self)
                        if line.isEmpty {  // the CRLF after a chunk's data
                            position = lineEnd + 2
                            continue
                        }
                        chunkLeft = Int(line.split(separator: ";")[0], radix: 16) ?? 0
                        position = lineEnd + 2
                        if chunkLeft == 0 { return }
                    }
                    let take = min(chunkLeft, raw.count - position)
                    if take == 0 { break }
                    body += raw[position..<(position + take)]
                    position += take
                    chunkLeft -= take
                }
            } else {
                body += raw[position...]
                position = raw.count
            }
            if position > 65536 {
                raw.removeFirst(position)
                position = 0
            }
            var start = 0
            while let end = Self.find([10, 10], in: body, from: start) {
                handle(body[start..<end])
                start = end + 2
            }
            if start > 0 { body.removeFirst(start) }
        }
    }

    private func handle(_ message: ArraySlice<UInt8>) {
        let text = String(decoding: message, as: UTF8.self)
        guard text.hasPrefix("event: jobs\n"), let range = text.range(of: "data: ") else { return }
        let now = Date()
        guard let events = try? JSONSerialization.jsonObject(with: Data(text[range.upperBound...].utf8)) as? [Any]
        else { return }
        lock.withLock {
            let at = now.timeIntervalSince(origin)
            let nowMilliseconds = now.timeIntervalSince1970 * 1000
            batchCount += 1
            for case let event as [String: Any] in events {
                count += 1
                let milliseconds =
                    (event["at"] as? Int).map(Double.init) ?? (event["at"] as? Double)
                    ?? (event["at"] as? NSNumber)?.doubleValue ?? nowMilliseconds
                lags.append((at, nowMilliseconds - milliseconds))
            }
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == needle[0] && haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index
            }
            index += 1
        }
        return nil
    }
}
