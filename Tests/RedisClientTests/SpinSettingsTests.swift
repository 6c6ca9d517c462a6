import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

/// `RUSAGE_THREAD` (Linux), which Glibc does not import.
let rusageThread: Int32 = 1

/// CPU time (user + system) used so far by the calling thread.
func threadCPUTime() -> Duration {
    var usage = rusage()
    getrusage(rusageThread, &usage)
    let micros =
        Int64(usage.ru_utime.tv_sec) * 1_000_000 + Int64(usage.ru_utime.tv_usec) + Int64(usage.ru_stime.tv_sec)
        * 1_000_000 + Int64(usage.ru_stime.tv_usec)
    return .microseconds(micros)
}

/// CPU time (user + system) used so far by the whole process.
func processCPUTime() -> Duration {
    var usage = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
    let micros =
        Int64(usage.ru_utime.tv_sec) * 1_000_000 + Int64(usage.ru_utime.tv_usec) + Int64(usage.ru_stime.tv_sec)
        * 1_000_000 + Int64(usage.ru_stime.tv_usec)
    return .microseconds(micros)
}

@Suite("The connection threads' spin settings (idleSpin, replySpin)", .timeLimit(.minutes(1)))
struct SpinSettingsTests {
    /// Commands, a pipeline, back-to-back sends, pinned sends and blocking commands, all checked.
    func exercise(_ redis: RedisClient) async throws {
        #expect(try await redis.send("SET", "k", "v") == .status("OK"))
        #expect(try await redis.send("GET", "k").string == "v")
        let replies = try await redis.pipeline((0..<100).map { _ in RedisCommand("INCR", "n") })
        #expect(replies.last == .integer(100))
        for expected in 101...300 { #expect(try await redis.send("INCR", "n") == .integer(expected)) }
        let pinned = try await redis.withPinnedConnection {
            var replies: [RedisReply] = []
            for _ in 301...400 { replies.append(try await redis.send("INCR", "n")) }
            return replies
        }
        #expect(pinned == (301...400).map { .integer($0) })
        let waiter = redis.makeDedicatedConnection()
        async let popped = waiter.send(RedisCommand("BLPOP", "jobs", 10), blockingFor: .seconds(10))
        try await eventually("BLPOP to block") { try await blockedClients(redis) == 1 }
        _ = try await redis.send("LPUSH", "jobs", "job-1")
        #expect(try await popped == .array([.bulkString(Array("jobs".utf8)), .bulkString(Array("job-1".utf8))]))
        #expect(try await waiter.send(RedisCommand("BLPOP", "empty", "0.1"), blockingFor: .milliseconds(100)) == .null)
        #expect(try await waiter.send("PING") == .status("PONG"))
    }

    @Test func zeroSpinTurnsSpinningOffAndEverythingStillWorks() async throws {
        try await withRedisServer { server in
            let configuration = RedisClient.Configuration(url: server.url, idleSpin: .zero, replySpin: .zero)
            #expect(configuration.idleSpin == .zero && configuration.replySpin == .zero)
            let redis = RedisClient(configuration: configuration)
            defer { redis.shutdown() }
            try await exercise(redis)
            // Negative spins mean no spinning, not a crash or a wait.
            let negative = RedisClient.Configuration(url: server.url, idleSpin: .seconds(-1), replySpin: .seconds(-1))
            #expect(negative.idleSpin == .zero && negative.replySpin == .zero)
        }
    }

    @Test func anIdleClientWithSpinningOnDoesNotBurnCPU() async throws {
        try await withRedisServer { server in
            // Spin windows far larger than the defaults, so that spinning that does not stop would show.
            let configuration = RedisClient.Configuration(
                url: server.url,
                idleSpin: .milliseconds(20),
                replySpin: .milliseconds(20)
            )
            let redis = RedisClient(configuration: configuration)
            defer { redis.shutdown() }
            try await exercise(redis)
            // Connections whose callers were quick (back to back), so their threads learnt to spin.
            let connections = (0..<3).map { _ in RedisConnection(configuration: configuration) }
            for connection in connections {
                for _ in 0..<200 { _ = try await connection.send("INCR", "quick") }
            }
            // Each connection thread's own CPU time, read on that thread, over one idle second. The process total
            // is reported too, but not checked: other tests of this process may run meanwhile.
            var before: [Duration] = []
            for connection in connections { before.append(try await connection.withPinnedTask { threadCPUTime() }) }
            let processBefore = processCPUTime()
            try await Task.sleep(for: .seconds(1))
            let processUsed = processCPUTime() - processBefore
            var used: Duration = .zero
            for (connection, start) in zip(connections, before) {
                used += try await connection.withPinnedTask { threadCPUTime() } - start
            }
            print("idle second with spinning on: connection threads \(used), whole process \(processUsed)")
            #expect(used < .milliseconds(500), "the idle connection threads used \(used) of CPU in one second")
        }
    }
}
