import ArgumentParser
import Conveyor
import Foundation

/// `conveyor doctor`: checks a deployment and says what to fix.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check a deployment (Redis settings, the library, clocks, permissions) and say what to fix.",
        discussion: """
            One line per check: PASS, WARN or FAIL, what was found, and for the others what to do. Checks the \
            round trip, the Redis version, maxmemory-policy, persistence (AOF, appendfsync), replication, on a \
            cluster every primary and the cluster state, the function library against this build, this machine's \
            and the live workers' clocks against Redis TIME, and whether the credential may do what --role needs \
            (harmless probes: reads, and writes that change nothing). Exits 1 when a check fails.

            Examples:
              conveyor doctor
              conveyor doctor --role producer --redis redis://conveyor-producer:secret@10.0.0.5:6379 --json
            """
    )

    @OptionGroup var store: JobStoreOptions

    @Option(help: "What the credential is for: producer, worker, reader or admin.")
    var role: String = "worker"

    func validate() throws {
        guard DoctorRole(rawValue: role) != nil else {
            throw ValidationError("--role must be producer, worker, reader or admin, not '\(role)'")
        }
    }

    func run() async throws {
        let role = DoctorRole(rawValue: role) ?? .worker
        let checks = try await store.withJobs { jobs in await jobs.doctor(role: role) }
        if store.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(checks), as: UTF8.self))
        } else {
            for check in checks {
                let mark = check.status.rawValue.uppercased().padding(toLength: 4, withPad: " ", startingAt: 0)
                print("\(mark)  \(check.name): \(check.detail)" + (check.fix.map { " — fix: \($0)" } ?? ""))
            }
        }
        if checks.contains(where: { $0.status == .fail }) {
            throw ExitCode.failure
        }
    }
}
