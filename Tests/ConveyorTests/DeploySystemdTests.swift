import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import Conveyor

/// Issue 15: the systemd units of `deploy/systemd/` pass `systemd-analyze verify` and `security`, and a worker
/// started exactly as `conveyor-worker@.service` says and stopped as systemd stops it exits 0 within its grace.
@Suite("deploy/systemd: the units", .timeLimit(.minutes(3)))
struct DeploySystemdTests {
    static let folder = repositoryRoot.appendingPathComponent("deploy/systemd")
    static let units = ["conveyor-worker@.service", "conveyor-scheduler.service", "conveyor-serve.service"]

    /// The units in a scratch folder, with the built `conveyor` where they name /usr/local/bin/conveyor (verify
    /// checks that the program exists); `edit` may change a unit's text further.
    static func scratchUnits(edit: (String, String) -> String = { $1 }) throws -> URL {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("units-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        for unit in units {
            let text = try String(contentsOf: folder.appendingPathComponent(unit), encoding: .utf8)
            #expect(text.contains("ExecStart=/usr/local/bin/conveyor "), "\(unit)")
            let local = text.replacingOccurrences(of: "/usr/local/bin/conveyor", with: ConveyorExecutable.path)
            try Data(edit(unit, local).utf8).write(to: scratch.appendingPathComponent(unit))
        }
        return scratch
    }

    /// `systemd-analyze verify` on every unit (the worker as an instance); what it prints (warnings included).
    static func verify(_ scratch: URL) async throws -> (status: Int32, output: String) {
        let paths = units.map {
            scratch.appendingPathComponent($0.replacingOccurrences(of: "@.", with: "@emails.")).path
        }
        let ended = try await ChildProcess().run(
            ["/usr/bin/systemd-analyze", "verify"] + paths,
            input: [],
            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        )
        return (ended.status, String(decoding: ended.output + ended.errorTail, as: UTF8.self))
    }

    @Test func everyUnitPassesSystemdAnalyzeVerifyWithNoWarningAndASecurityExposureBelow2() async throws {
        let scratch = try Self.scratchUnits()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let verified = try await Self.verify(scratch)
        #expect(verified.status == 0 && verified.output.isEmpty, "\(verified.output)")
        for unit in Self.units {
            let path = scratch.appendingPathComponent(unit.replacingOccurrences(of: "@.", with: "@emails.")).path
            let security = try await runTool([
                "/usr/bin/systemd-analyze", "security", "--offline=yes", "--threshold=20", "--no-pager", path,
            ])
            let score = security.firstMatch(of: #/Overall exposure level for \S+: ([0-9.]+)/#).map {
                Double($0.output.1)
            }
            #expect(score.flatMap { $0 }.map { $0 < 2 } == true, "\(unit): \(security.suffix(300))")
        }

        // The check can fail: a misspelt key is a warning that verify prints.
        let broken = try Self.scratchUnits { unit, text in
            unit == "conveyor-worker@.service" ? text.replacingOccurrences(of: "KillMode=", with: "KilMode=") : text
        }
        defer { try? FileManager.default.removeItem(at: broken) }
        let refused = try await Self.verify(broken)
        #expect(refused.output.contains("Unknown key 'KilMode'"), "\(refused.output)")
    }

    /// The value of `key=` in a unit (the first one), and every value when it repeats.
    static func values(_ key: String, in unit: String) -> [String] {
        unit.split(separator: "\n").compactMap { line in
            line.hasPrefix(key + "=") ? String(line.dropFirst(key.count + 1)) : nil
        }
    }

    /// `KEY=VALUE` lines of an environment file (comments and blank lines skipped).
    static func environmentFile(_ text: String) -> [String: String] {
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { values[parts[0]] = parts[1] }
        }
        return values
    }

    /// ExecStart's words as systemd makes them for instance `instance`: `%i` replaced, `$VAR` split on white space,
    /// `${VAR}` one word.
    static func command(_ execStart: String, instance: String, environment: [String: String]) -> [String] {
        execStart.replacingOccurrences(of: "%i", with: instance).split(separator: " ").flatMap { word -> [String] in
            if word.hasPrefix("${"), word.hasSuffix("}") {
                return [environment[String(word.dropFirst(2).dropLast())] ?? ""]
            }
            if word.hasPrefix("$") {
                return (environment[String(word.dropFirst())] ?? "").split(separator: " ").map(String.init)
            }
            return [String(word)]
        }
    }

    @Test func aWorkerStartedAsTheUnitSaysAndStoppedAsSystemdStopsItExitsZeroWithinItsGrace() async throws {
        try await withJobQueue { jobs, server in
            let unit = try String(contentsOf: Self.folder.appendingPathComponent(Self.units[0]), encoding: .utf8)
            let execStart = try #require(Self.values("ExecStart", in: unit).first)
            #expect(
                Self.values("KillSignal", in: unit) == ["SIGTERM"] && Self.values("KillMode", in: unit) == ["mixed"]
            )
            let timeoutStop = try #require(Self.values("TimeoutStopSec", in: unit).first.flatMap { Int($0) })
            // The unit's environment files, as shipped but for this test's Redis and handler.
            #expect(
                Self.values("EnvironmentFile", in: unit) == [
                    "/etc/conveyor/conveyor.env", "-/etc/conveyor/worker-%i.env",
                ]
            )
            let handlers = FileManager.default.temporaryDirectory.appendingPathComponent(
                "handlers-\(UUID().uuidString)"
            )
            try FileManager.default.createDirectory(at: handlers, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: handlers) }
            let handler = handlers.appendingPathComponent("send_email.sh")
            // Reads the job (JSON on standard input), then takes as long as its payload says.
            let script = #"""
                #!/bin/sh
                seconds=$(grep -o '"s": *[0-9]*' | grep -o '[0-9]*$')
                sleep "$seconds"
                echo '{}'

                """#
            try Data(script.utf8).write(to: handler)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: handler.path)
            var environment = Self.environmentFile(
                try String(contentsOf: Self.folder.appendingPathComponent("conveyor.env"), encoding: .utf8)
            )
            #expect(environment.keys.sorted() == ["REDIS_URL"])
            environment["REDIS_URL"] = "redis://127.0.0.1:\(server.port)"
            let perQueue = Self.environmentFile(
                try String(contentsOf: Self.folder.appendingPathComponent("worker-emails.env"), encoding: .utf8)
            )
            for (key, value) in perQueue {
                environment[key] = value.replacingOccurrences(
                    of: "/opt/conveyor/handlers/send_email.sh",
                    with: handler.path
                ).replacingOccurrences(of: "--metrics-port 9464", with: "--metrics-port 0")
            }
            let arguments = Self.command(execStart, instance: "emails", environment: environment)
            #expect(arguments.first == "/usr/local/bin/conveyor" && arguments.contains("--grace"))
            let grace = try #require(
                arguments.firstIndex(of: "--grace").flatMap { Int(arguments[$0 + 1].dropLast()) }
            )
            #expect(timeoutStop > grace + 5, "TimeoutStopSec must outlast --grace and --kill-grace")

            let worker = ConveyorProcess(Array(arguments.dropFirst()), environment: environment)
            try await worker.waitFor("/metrics")
            // Two jobs that end within the grace, two that cannot.
            var short: [String] = []
            var long: [String] = []
            for seconds in [3, 3, 600, 600] {
                let job = try await jobs.enqueue(
                    "send_email",
                    payload: ["s": seconds],
                    options: JobOptions(queue: "emails")
                )
                if seconds < 100 { short.append(job.id) } else { long.append(job.id) }
            }
            try await eventually(timeout: .seconds(30), "every job to run") {
                try await jobs.counts(queue: "emails")[.processing] == 4
            }
            // systemd: KillSignal to the main process, then SIGKILL when TimeoutStopSec ends.
            let clock = ContinuousClock()
            let stopped = clock.now
            try await worker.signal(SIGTERM)
            let exited = Task { try await worker.exit() }
            let killer = Task {
                try await Task.sleep(for: .seconds(timeoutStop))
                try await worker.signal(SIGKILL)
            }
            let status = try await exited.value
            killer.cancel()
            let took = clock.now - stopped
            #expect(status == 0, "\(worker.output.suffix(2000))")
            #expect(took < .seconds(timeoutStop), "stopped after \(took)")
            #expect(took >= .seconds(grace - 1), "the long jobs had the whole grace: \(took)")
            for id in short { #expect(try await jobs.get(id)?.status == .completed, "\(id)") }
            for id in long { #expect(try await jobs.get(id)?.status == .pending, "\(id) is given back") }
        }
    }
}
