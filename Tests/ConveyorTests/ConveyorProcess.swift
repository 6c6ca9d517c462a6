import ConveyorTesting
import Foundation
import Testing

@testable import Conveyor

/// A long-running `conveyor` command (`tail`, `dev`, `demo`) in the background, its output going to a file the test
/// reads while it runs. Killed (with its process group) when dropped, so a failing test leaves nothing behind.
final class ConveyorProcess: Sendable {
    let child = ChildProcess()
    let task: Task<ChildProcess.Termination, any Error>
    let outputPath: String

    init(_ arguments: [String], environment: [String: String] = [:], executable: String = ConveyorExecutable.path) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent(
            "conveyor-output-\(UUID().uuidString)"
        ).path
        self.outputPath = outputPath
        var merged = ProcessInfo.processInfo.environment
        merged["REDIS_URL"] = nil
        for (key, value) in environment { merged[key] = value }
        let child = self.child
        task = Task {
            // sh replaces itself with conveyor (exec), so the pid and the signals are conveyor's.
            try await child.run(
                ["/bin/sh", "-c", #"exec "$0" "$@" >"$CONVEYOR_TEST_OUTPUT" 2>&1"#, executable]
                    + arguments,
                input: [],
                environment: merged.merging(["CONVEYOR_TEST_OUTPUT": outputPath]) { $1 }
            )
        }
    }

    deinit {
        child.kill()
        try? FileManager.default.removeItem(atPath: outputPath)
    }

    /// Everything printed so far (standard output and standard error).
    var output: String {
        (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    /// Waits until the output contains `text`.
    func waitFor(_ text: String, timeout: Duration = .seconds(30)) async throws {
        do {
            try await eventually(timeout: timeout, "the output to contain '\(text)'") { output.contains(text) }
        } catch {
            Issue.record("the output so far:\n\(output)")
            throw error
        }
    }

    func signal(_ signal: Int32) async throws {
        try await eventually("the process to start") { child.pid > 0 }
        _ = kill(child.pid, signal)
    }

    /// Waits for the process to exit and returns its exit status.
    func exit() async throws -> Int32 {
        try await task.value.status
    }
}
