import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Testing

@testable import Conveyor

@Suite("Recurring jobs across worker processes", .timeLimit(.minutes(3)))
struct SchedulerProcessTests {
    /// The pid of the scheduler leader, from its lease record.
    func leaderPID(_ jobs: JobQueue) async throws -> Int32 {
        var pid: Int32 = 0
        try await eventually(timeout: .seconds(30), "a leader") {
            pid = Int32(try await jobs.leader()?.info["pid"] ?? "") ?? 0
            return pid > 0
        }
        return pid
    }

    @Test func killingTheLeaderRepeatedlyNeitherDuplicatesNorLosesAFireTime() async throws {
        try await withJobQueue { jobs, server in
            let arguments = [
                "--redis", "redis://127.0.0.1:\(server.port)", "--exec", "tick=true", "--scheduler-lease", "2s",
                "--lease", "3s", "--log-level", "warning",
            ]
            var workers = (0..<3).map { _ in WorkerProcess(arguments) }
            let windowStart = Date().addingTimeInterval(2).timeIntervalSince1970.rounded(.up)
            // The times due while no leader ran are missed: only .runEach makes every one of them up.
            try await jobs.upsert(
                try Schedule(
                    name: "tick",
                    type: "tick",
                    rule: .every(.seconds(1)),
                    start: Date(timeIntervalSince1970: windowStart),
                    misfire: .runEach(max: 100)
                )
            )
            var kills: [Date] = []
            // About a minute: the leader is killed every ~10 s and restarted.
            for _ in 0..<5 {
                try await Task.sleep(for: .seconds(10))
                let pid = try await leaderPID(jobs)
                guard let index = try await indexOf(pid, in: workers) else { continue }
                _ = kill(pid, SIGKILL)
                kills.append(Date())
                _ = try await workers[index].exit()
                workers[index] = WorkerProcess(arguments)
            }
            try await Task.sleep(for: .seconds(6))
            let windowEnd = Date().addingTimeInterval(-3).timeIntervalSince1970.rounded(.down)
            for worker in workers { try await worker.signal(SIGTERM) }
            for worker in workers { _ = try await worker.exit() }

            var fires: [Int] = []
            for status in [JobStatus.completed, .pending, .processing, .failed, .retrying] {
                for job in try await jobs.list(status: status, limit: 10_000) where job.type == "tick" {
                    fires.append(Int(job.id.split(separator: "@").last ?? "") ?? 0)
                }
            }
            #expect(fires.count == Set(fires).count, "duplicated fire times")
            let expected = Array(stride(from: Int(windowStart) * 1000, through: Int(windowEnd) * 1000, by: 1000))
            let missing = Set(expected).subtracting(fires)
            #expect(missing.isEmpty, "fire times without a job: \(missing.sorted())")
            // Each kill's gap: the first fire after the kill ran within lease (2 s) + 1 s of its time.
            for kill in kills {
                let killMs = Int(kill.timeIntervalSince1970 * 1000)
                let after = try await jobs.list(status: .completed, limit: 10_000).filter {
                    (Int($0.id.split(separator: "@").last ?? "") ?? 0) > killMs
                }
                let firstRun = after.compactMap(\.startedAt).min()
                if let firstRun {
                    #expect(
                        firstRun.timeIntervalSince(kill) < 3 + 1.5,
                        "the schedule paused \(firstRun.timeIntervalSince(kill)) s after a kill"
                    )
                }
            }
        }
    }

    func indexOf(_ pid: Int32, in workers: [WorkerProcess]) async throws -> Int? {
        for (index, worker) in workers.enumerated() where try await worker.pid() == pid { return index }
        return nil
    }

    @Test func aFrozenLeaderThatWakesUpDoesNotFireTwice() async throws {
        try await withJobQueue { jobs, server in
            let arguments = [
                "--redis", "redis://127.0.0.1:\(server.port)", "--exec", "tick=true", "--scheduler-lease", "1s",
                "--log-level", "warning",
            ]
            let workers = (0..<2).map { _ in WorkerProcess(arguments) }
            try await jobs.upsert(try Schedule(name: "split", type: "tick", rule: .every(.seconds(1))))
            let frozen = try await leaderPID(jobs)
            try await Task.sleep(for: .seconds(2))
            // Freeze the leader past its lease: the other node takes over; then wake it up — for a moment both
            // believe they lead.
            _ = kill(frozen, SIGSTOP)
            try await Task.sleep(for: .seconds(3))
            #expect(try await leaderPID(jobs) != frozen)
            _ = kill(frozen, SIGCONT)
            try await Task.sleep(for: .seconds(3))
            for worker in workers { try await worker.signal(SIGTERM) }
            for worker in workers { _ = try await worker.exit() }
            var fires: [String] = []
            for status in [JobStatus.completed, .pending, .processing, .failed, .retrying] {
                fires += try await jobs.list(status: status, limit: 10_000).map(\.id)
            }
            #expect(fires.count >= 6)
            #expect(fires.count == Set(fires).count, "a fire time ran twice")
        }
    }
}
