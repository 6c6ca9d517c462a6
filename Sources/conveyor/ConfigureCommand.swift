import ArgumentParser
import Conveyor

/// `conveyor configure QUEUE`: shows a queue's per-queue settings, or changes what its event stream records and
/// whether it keeps the pending index by type.
struct ConfigureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "configure",
        abstract: "Show or change a queue's settings: what its event stream records, and its pending index by type.",
        discussion: """
            Without options it prints the settings. --events all (the default) records every transition, finished \
            only those to completed, failed and cancelled (enough for wait), none nothing. --type-index on keeps the \
            pending jobs of each type listed (list --status pending --type reads only those; about 40 bytes per \
            job), off drops it (such listings scan the pending jobs). The queue must exist.

            Examples:
              conveyor configure emails
              conveyor configure emails --events finished --type-index on
            """
    )
    @OptionGroup var store: JobStoreOptions
    @Argument(help: "The queue.") var queue: String
    @Option(help: "What the event stream records: all, finished or none.") var events: String?
    @Option(name: .customLong("type-index"), help: "Keep the pending index by type: on or off.") var typeIndex: String?

    func validate() throws {
        if let events, EventRecording(rawValue: events) == nil {
            throw ValidationError("--events must be all, finished or none, not \"\(events)\"")
        }
        if let typeIndex, typeIndex != "on", typeIndex != "off" {
            throw ValidationError("--type-index must be on or off, not \"\(typeIndex)\"")
        }
    }

    func run() async throws {
        let (recording, indexed) = try await store.withJobs { jobs in
            try await JobStoreOptions.requireKnown(queue, in: jobs)
            if let events, let recording = EventRecording(rawValue: events) {
                try await jobs.setEventRecording(recording, queue: queue)
            }
            if let typeIndex { try await jobs.setTypeIndex(typeIndex == "on", queue: queue) }
            return (try await jobs.eventRecording(queue: queue), try await jobs.indexesTypes(queue: queue))
        }
        try printOutcome(
            store,
            "\(queue): events \(recording.rawValue), type index \(indexed ? "on" : "off")",
            ["queue": queue, "events": recording.rawValue, "type_index": indexed]
        )
    }
}
