public import Conveyor
import Logging
import ServiceLifecycle

/// Runs `body` while `worker` runs in a `ServiceGroup`, then shuts the group down gracefully and waits for the
/// worker to stop, also when `body` throws.
///
/// - Parameters:
///   - worker: The worker to run.
///   - body: The test, run while the worker serves its queues.
/// - Throws: What `body` or the worker throws.
public func withWorker(_ worker: Worker, _ body: () async throws -> Void) async throws {
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(services: [worker], logger: Logger(label: "conveyor.testing"))
    )
    try await withThrowingTaskGroup(of: Void.self) { tasks in
        tasks.addTask { try await group.run() }
        do {
            try await body()
        } catch {
            await group.triggerGracefulShutdown()
            try? await tasks.waitForAll()
            throw error
        }
        await group.triggerGracefulShutdown()
        try await tasks.waitForAll()
    }
}
