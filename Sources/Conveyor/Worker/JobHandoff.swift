import Synchronization

/// Hands claimed jobs from a worker's dispatcher to its idle slots: each idle slot waits in ``next()``, and the
/// dispatcher claims as many jobs as slots wait (``waiting``) and gives them out with ``deliver(_:)``.
final class JobHandoff: Sendable {
    private struct State {
        var waiters: [CheckedContinuation<ClaimedJob?, Never>] = []
        var closed = false
    }

    private let state = Mutex(State())
    /// Rung once a slot waits, so the dispatcher counts it (ringing before waiting could be missed).
    private let bell: Doorbell

    init(bell: Doorbell) {
        self.bell = bell
    }

    /// Waits for a job; `nil` once the handoff is closed (the worker shuts down) or the waiting task is cancelled.
    func next() async -> ClaimedJob? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let closed = state.withLock { state in
                    if state.closed || Task.isCancelled { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if closed { continuation.resume(returning: nil) } else { bell.ring() }
            }
        } onCancel: {
            close()
        }
    }

    /// How many slots wait for a job now.
    var waiting: Int { state.withLock { $0.waiters.count } }

    /// Gives each job to a waiting slot; returns the jobs no slot took (the handoff closed meanwhile, or fewer
    /// slots waited), which the caller gives back to Redis.
    func deliver(_ jobs: [ClaimedJob]) -> [ClaimedJob] {
        var leftovers: [ClaimedJob] = []
        var handed: [(CheckedContinuation<ClaimedJob?, Never>, ClaimedJob)] = []
        state.withLock { state in
            for job in jobs {
                if state.closed || state.waiters.isEmpty {
                    leftovers.append(job)
                } else {
                    handed.append((state.waiters.removeFirst(), job))
                }
            }
        }
        for (waiter, job) in handed { waiter.resume(returning: job) }
        return leftovers
    }

    /// Ends every wait with `nil`, and makes later waits return `nil` at once.
    func close() {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}
