import Synchronization

/// Why a running handler is being stopped from outside.
enum StopReason: Sendable, Equatable {
    /// The job ran longer than its timeout.
    case timedOut(Duration)
    /// `JobQueue.cancel` was called on the running job.
    case cancelRequested
    /// The worker lost the job's lease (another worker or a reclaim took it).
    case leaseLost
    /// The worker is shutting down and the grace period is over.
    case shutdown
}

/// A one-shot signal that stops one running handler, with the reason.
final class StopSignal: Sendable {
    private struct State {
        var reason: StopReason?
        var waiter: CheckedContinuation<StopReason?, Never>?
    }

    private let state = Mutex(State())

    /// The reason, once stopped.
    var reason: StopReason? { state.withLock { $0.reason } }

    /// Stops the handler (the first reason wins).
    func fire(_ reason: StopReason) {
        let waiter: CheckedContinuation<StopReason?, Never>? = state.withLock { state in
            guard state.reason == nil else { return nil }
            state.reason = reason
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: reason)
    }

    /// Waits until the signal fires or `timeout` passes (then it fires with ``StopReason/timedOut(_:)``); returns
    /// `nil` when the waiting task is cancelled (the handler finished first).
    func wait(timeout: Duration?) async -> StopReason? {
        // Without a time limit, no task group: one task fewer per job.
        guard let timeout else { return await waitForFire() }
        return await withTaskGroup(of: StopReason?.self) { group in
            group.addTask { await self.waitForFire() }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return nil
                }
                self.fire(.timedOut(timeout))
                return .timedOut(timeout)
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? self.reason
        }
    }

    /// Waits until the signal fires; `nil` when the waiting task is cancelled first.
    private func waitForFire() async -> StopReason? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let early: StopReason?? = self.state.withLock { state in
                    if let reason = state.reason { return .some(reason) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiter = continuation
                    return .none
                }
                if let early { continuation.resume(returning: early) }
            }
        } onCancel: {
            let waiter = self.state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: nil)
        }
    }
}
