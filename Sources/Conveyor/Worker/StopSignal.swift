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
        var action: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    /// The reason, once stopped.
    var reason: StopReason? { state.withLock { $0.reason } }

    /// Stops the handler (the first reason wins): runs the action given to ``onFire(_:)``.
    func fire(_ reason: StopReason) {
        let action: (@Sendable () -> Void)? = state.withLock { state in
            guard state.reason == nil else { return nil }
            state.reason = reason
            return state.action
        }
        action?()
    }

    /// What firing does (cancel the handler's task); runs at once when the signal already fired.
    func onFire(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state in
            state.action = action
            return state.reason != nil
        }
        if now { action() }
    }
}
