import ArgumentParser
import Conveyor
import Foundation
import RedisClient

/// `conveyor install`: puts this release's function library on the server, with an admin credential.
struct InstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install (or upgrade) Conveyor's function library on Redis; needs an admin credential.",
        discussion: """
            Every Conveyor client runs the library's functions, so loading them (FUNCTION LOAD) is for an admin \
            only: run this once per release, before producers and workers of that release start. They check the \
            version and refuse to run against a missing or different library, naming this command. \
            Running it again when the server is current changes nothing.

            Examples:
              REDIS_URL=redis://admin@10.0.0.5:6379 REDISCLI_AUTH=… conveyor install
              conveyor install --redis unix:///var/run/redis/redis.sock --json
            """
    )

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() async throws {
        let redis = RedisClient(configuration: try connection.clientConfiguration())
        defer { redis.shutdown() }
        let jobs = JobQueue(redis: redis)
        let outcome: LibraryInstallation
        do {
            outcome = try await jobs.installLibrary()
        } catch let error as ConveyorError {
            throw CommandFailure(message: error.message)
        }
        let (action, version, previous): (String, String, String?) =
            switch outcome {
            case .installed(let version): ("installed", version, nil)
            case .replaced(let previous, let version): ("replaced", version, previous)
            case .current(let version): ("current", version, nil)
            }
        if json {
            var object: [String: String] = ["action": action, "version": version, "url": "\(redis.configuration.url)"]
            object["previous"] = previous
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            switch outcome {
            case .installed: print("Installed Conveyor's function library \(version) on \(redis.configuration.url)")
            case .replaced:
                print(
                    "Replaced Conveyor's function library \(previous ?? "") with \(version) on \(redis.configuration.url)"
                )
            case .current:
                print("Conveyor's function library \(version) is already installed on \(redis.configuration.url)")
            }
        }
        if let warning = await jobs.evictionWarning() {
            FileHandle.standardError.write(Data("conveyor: warning: \(warning)\n".utf8))
        }
    }
}
