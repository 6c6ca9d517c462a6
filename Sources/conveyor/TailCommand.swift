import ArgumentParser
import Conveyor
import Foundation

/// `conveyor tail`: prints job events as they happen.
struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print every job transition as it happens, until Ctrl-C.",
        discussion: """
            Without --queue, follows every queue of the namespace, including queues that appear later. Each line: \
            local time, job id, type, old → new status, and the error when there is one. With --json, one JSON \
            object per line.

            Examples:
              conveyor tail
              conveyor tail --queue emails --from-beginning
              conveyor tail --json | jq 'select(.to == "failed")'
            """
    )

    @OptionGroup var store: JobStoreOptions
    @Option(name: .customLong("queue"), help: "A queue to follow (repeatable; default: all).") var queues: [String] = []
    @Flag(help: "Start with the events still kept (the last 10 000 per queue by default).") var fromBeginning = false

    func run() async throws {
        let json = store.json
        let start: EventStart = fromBeginning ? .beginning : .now
        try await store.withJobs { jobs in
            for name in queues { try await JobStoreOptions.requireKnown(name, in: jobs) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                var watched: Set<String> = []
                func follow(_ name: String, from: EventStart, in group: inout ThrowingTaskGroup<Void, any Error>) {
                    watched.insert(name)
                    group.addTask {
                        for try await event in try await jobs.events(queues: [name], from: from) {
                            Terminal.printNow(json ? try Self.json(event) : Self.line(event))
                        }
                    }
                }
                if !queues.isEmpty {
                    for name in queues { follow(name, from: start, in: &group) }
                    try await group.next()
                    return
                }
                for name in try await jobs.queues() { follow(name, from: start, in: &group) }
                if Terminal.interactiveErrors {
                    let names = watched.isEmpty ? "no queues yet" : watched.sorted().joined(separator: ", ")
                    FileHandle.standardError.write(Data("following \(names) (Ctrl-C to stop)\n".utf8))
                }
                // Queues created later are followed from their first event.
                while true {
                    try await Task.sleep(for: .seconds(1))
                    for name in try await jobs.queues() where !watched.contains(name) {
                        follow(name, from: .beginning, in: &group)
                    }
                }
            }
        }
    }

    /// "07:15:02.123  emails/0193…  send_email  pending → processing  error".
    static func line(_ event: JobEvent) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "HH:mm:ss.SSS"
        formatter.timeZone = .current
        let from = event.from?.rawValue ?? "new"
        let to = event.to?.rawValue ?? "removed"
        var line =
            Terminal.dim(formatter.string(from: event.at)) + "  \(event.jobID)  \(event.type)  "
            + Terminal.dim("\(from) →") + " " + Terminal.paint(to, event.to)
        if let error = event.error, !error.isEmpty { line += "  " + error.replacingOccurrences(of: "\n", with: " ") }
        return line
    }

    static func json(_ event: JobEvent) throws -> String {
        try JobOutput.json([
            "stream_id": event.streamID, "queue": event.queue, "id": event.jobID, "type": event.type,
            "from": event.from?.rawValue ?? NSNull(), "to": event.to?.rawValue ?? "removed",
            "at": Int(event.at.timeIntervalSince1970 * 1000), "error": event.error.map { $0 as Any } ?? NSNull(),
        ])
    }
}
