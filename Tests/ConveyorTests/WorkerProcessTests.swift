import ConveyorTesting
import Foundation
import LocalRedis
import RedisClient
import Synchronization
import Testing

@testable import Conveyor

/// A real `conveyor worker` process, started in the background; killed when dropped, so a failing test leaves no
/// process behind.
final class WorkerProcess: Sendable {
    let child = ChildProcess()
    let task: Task<ChildProcess.Termination, any Error>

    init(_ arguments: [String]) {
        let child = self.child
        task = Task {
            try await child.run(
                [ConveyorExecutable.path, "worker"] + arguments,
                input: [],
                environment: ["PATH": "/usr/bin:/bin"]
            )
        }
    }

    deinit {
        child.kill()
    }

    /// The process id, once started.
    func pid() async throws -> Int32 {
        try await eventually("the worker process to start") { child.pid > 0 }
        return child.pid
    }

    func signal(_ signal: Int32) async throws {
        _ = kill(try await pid(), signal)
    }

    /// Waits for the process to exit and returns how it ended.
    func exit() async throws -> ChildProcess.Termination {
        try await task.value
    }
}

/// Writes an executable shell script and returns its path.
func script(_ name: String, _ body: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "conveyor-scripts-\(UUID().uuidString)"
    )
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let path = directory.appendingPathComponent(name).path
    try ("#!/bin/sh\n" + body + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    _ = chmod(path, 0o755)
    return path
}

@Suite("conveyor worker processes", .timeLimit(.minutes(3)))
struct WorkerProcessTests {
    @Test func execHandlersSucceedFailPrintGarbageAndTimeOut() async throws {
        try await withJobQueue { jobs, server in
            let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("hang-\(UUID().uuidString)")
                .path
            let ok = try script("ok.sh", #"read job; printf '{"job":%s,"attempt":"%s"}' "$job" "$CONVEYOR_ATTEMPT""#)
            let bad = try script("bad.sh", "echo 'disk full' >&2; exit 3")
            let garbage = try script("garbage.sh", "echo 'this is not json'")
            let hang = try script("hang.sh", "echo $$ > \(pidFile); exec sleep 30")
            let worker = WorkerProcess([
                "--redis", "redis://127.0.0.1:\(server.port)", "--concurrency", "4", "--kill-grace", "1s",
                // Through sh, not exec'd directly: a script file just written can be "text file busy" while a process
                // spawned at the same moment by a parallel test still holds its descriptor.
                "--exec", "ok=sh \(ok)", "--exec", "bad=sh \(bad)", "--exec", "garbage=sh \(garbage)",
                "--exec", "hang=sh \(hang)",
            ])
            let okID = try await jobs.enqueue("ok", json: #"{"n":1}"#).id
            let badID = try await jobs.enqueue("bad", json: "{}", options: JobOptions(maxRetries: 0)).id
            let garbageID = try await jobs.enqueue("garbage", json: "{}", options: JobOptions(maxRetries: 3)).id
            let hangID = try await jobs.enqueue(
                "hang",
                json: "{}",
                options: JobOptions(maxRetries: 0, timeout: .seconds(1))
            ).id

            let done = try await jobs.result(of: okID, timeout: .seconds(60))
            #expect(done.status == .completed)
            let result = try JSONSerialization.jsonObject(with: Data((done.result ?? "").utf8)) as? [String: Any]
            #expect(result?["attempt"] as? String == "1")
            #expect((result?["job"] as? [String: Any])?["id"] as? String == okID)
            #expect(((result?["job"] as? [String: Any])?["payload"] as? [String: Int]) == ["n": 1])

            let failed = try await jobs.result(of: badID, timeout: .seconds(60))
            #expect(failed.status == .failed && failed.error == "command exited with status 3: disk full")

            let notJSON = try await jobs.result(of: garbageID, timeout: .seconds(60))
            #expect(notJSON.status == .failed && notJSON.attempts == 1)
            #expect(notJSON.error?.contains("not JSON") == true)

            let hung = try await jobs.result(of: hangID, timeout: .seconds(60))
            #expect(hung.status == .failed && hung.error == "timed out after 1 s", "\(hung.error ?? "")")
            let hangPID =
                Int32(
                    try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                ) ?? 0
            #expect(hangPID > 0)
            try await eventually("the hung command to be killed") { kill(hangPID, 0) != 0 }

            try await worker.signal(SIGTERM)
            let exit = try await worker.exit()
            #expect(exit.status == 0, "\(String(decoding: exit.errorTail, as: UTF8.self))")
        }
    }

    @Test func sigtermGivesRunningJobsBackAndAnotherWorkerFinishesThem() async throws {
        try await withJobQueue { jobs, server in
            let url = "redis://127.0.0.1:\(server.port)"
            let first = WorkerProcess([
                "--redis", url, "--concurrency", "20", "--grace", "1s", "--kill-grace", "500ms", "--exec",
                "long=sleep 60",
            ])
            let ids = try await jobs.enqueueMany((0..<20).map { NewJob("long", json: #"{"n":\#($0)}"#) }).map(\.id)
            try await eventually(timeout: .seconds(60), "20 jobs in flight") {
                try await jobs.counts()[.processing] == 20
            }
            let clock = ContinuousClock()
            let signalled = clock.now
            try await first.signal(SIGTERM)
            let exit = try await first.exit()
            let took = clock.now - signalled
            #expect(exit.status == 0, "\(String(decoding: exit.errorTail, as: UTF8.self))")
            #expect(took < .seconds(6), "the worker took \(took) to stop")
            let counts = try await jobs.counts()
            #expect(counts[.pending] == 20 && counts[.processing] == 0, "\(counts)")

            let second = WorkerProcess(["--redis", url, "--concurrency", "20", "--exec", "long=true"])
            for id in ids {
                #expect(try await jobs.result(of: id, timeout: .seconds(60)).status == .completed)
            }
            try await second.signal(SIGTERM)
            #expect(try await second.exit().status == 0)
        }
    }

    @Test func aSecondSignalEndsTheGracePeriod() async throws {
        try await withJobQueue { jobs, server in
            let worker = WorkerProcess([
                "--redis", "redis://127.0.0.1:\(server.port)", "--grace", "60s", "--kill-grace", "200ms",
                "--exec", "long=sleep 60",
            ])
            _ = try await jobs.enqueue("long", json: "{}")
            try await eventually(timeout: .seconds(60), "the job to run") { try await jobs.counts()[.processing] == 1 }
            try await worker.signal(SIGTERM)
            try await Task.sleep(for: .milliseconds(300))
            let clock = ContinuousClock()
            let second = clock.now
            try await worker.signal(SIGTERM)
            let exit = try await worker.exit()
            #expect(exit.status == 0, "\(String(decoding: exit.errorTail, as: UTF8.self))")
            #expect(clock.now - second < .seconds(10))
            #expect(try await jobs.counts()[.pending] == 1)
        }
    }

    @Test func theWorkerCommandLeadsWithItsOwnEmbeddedSchedulerUnlessToldNotTo() async throws {
        try await withJobQueue { jobs, server in
            let redis = ["--redis", "redis://127.0.0.1:\(server.port)", "--exec", "tick=true"]
            let follower = WorkerProcess(redis + ["--no-scheduler"])
            try await eventually(timeout: .seconds(30), "the --no-scheduler worker to register") {
                try await jobs.workers().count == 1
            }
            let leader = WorkerProcess(redis)
            try await eventually(timeout: .seconds(30), "a leader and two workers") {
                let led = try await jobs.leader() != nil
                let registered = try await jobs.workers().count
                return led && registered == 2
            }
            // One scheduler per process, the worker's own: the leader is a registered worker, the one that runs it.
            let node = try #require(try await jobs.leader()).node
            let ids = try await jobs.workers().map(\.id)
            #expect(ids.contains(node), "leader \(node) is none of the workers \(ids)")
            #expect(try await jobs.workers().first { $0.id == node }?.pid == Int(try await leader.pid()))
            try await leader.signal(SIGTERM)
            #expect(try await leader.exit().status == 0)
            // The lease is given up at once, and the --no-scheduler worker does not take it.
            #expect(try await jobs.leader() == nil)
            try await follower.signal(SIGTERM)
            #expect(try await follower.exit().status == 0)
        }
    }

    @Test func killedWorkersLoseNoJob() async throws {
        try await withJobQueue { jobs, server in
            let url = "redis://127.0.0.1:\(server.port)"
            let arguments = [
                "--redis", url, "--example-handlers", "--concurrency", "8", "--lease", "2s", "--heartbeat", "300ms",
                "--reclaim", "500ms", "--grace", "5s", "--log-level", "warning",
            ]
            var random = SplitMix64(state: 42)
            let batch = (0..<5_000).map { _ in
                NewJob("sleep", json: #"{"ms":\#(Int.random(in: 5...50, using: &random))}"#)
            }
            _ = try await jobs.enqueueMany(batch)
            var workers = (0..<3).map { _ in WorkerProcess(arguments) }
            var kills: [(pid: Int32, at: Date)] = []
            for (round, threshold) in [1_200, 2_800].enumerated() {
                try await eventually(timeout: .seconds(120), "\(threshold) completed jobs") {
                    try await jobs.counts()[.completed] ?? 0 >= threshold
                }
                let victim = workers[round]
                let pid = try await victim.pid()
                try await victim.signal(SIGKILL)
                kills.append((pid, Date()))
                let ended = try await victim.exit()
                #expect(ended.signaled)
                workers[round] = WorkerProcess(arguments)
            }
            try await eventually(timeout: .seconds(180), "all 5000 jobs completed") {
                try await jobs.counts()[.completed] == 5_000
            }
            let counts = try await jobs.counts()
            #expect(counts[.pending] == 0 && counts[.processing] == 0 && counts[.failed] == 0 && counts[.retrying] == 0)

            // Jobs that ran twice are exactly the ones in flight at a kill, and they ran again within
            // lease + reclaim interval (plus slack for a slow machine).
            var rerun = 0
            var slowestRecovery = 0.0
            var offset = 0
            while true {
                let page = try await jobs.list(status: .completed, offset: offset, limit: 1_000)
                if page.isEmpty { break }
                offset += page.count
                for job in page where job.attempts > 1 {
                    rerun += 1
                    let kill = kills.first { job.error?.contains(":\($0.pid):") == true }
                    #expect(kill != nil, "\(job.id) ran \(job.attempts) times: \(job.error ?? "no error")")
                    #expect(job.stalls >= 1)
                    if let kill, let started = job.startedAt {
                        // Lease 2 s + reclaim interval 0.5 s, plus slack for a slow, shared machine.
                        let recovery = started.timeIntervalSince(kill.at)
                        slowestRecovery = max(slowestRecovery, recovery)
                        #expect(recovery < 5, "\(job.id) ran again \(recovery) s after the kill")
                    }
                }
            }
            #expect(offset == 5_000)
            print("crash test: \(rerun) jobs ran twice; the slowest ran again \(slowestRecovery) s after the kill")
            #expect(rerun >= 1 && rerun <= 2 * 8, "\(rerun) jobs ran twice")
            for worker in workers { try await worker.signal(SIGTERM) }
            for worker in workers { #expect(try await worker.exit().status == 0) }
        }
    }
}
