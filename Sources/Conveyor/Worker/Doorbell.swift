import Synchronization

/// A wake-up for one waiting task (the dispatcher): ``ring()`` ends the current or the next ``wait()``.
final class Doorbell: Sendable {
    private struct State {
        var waiter: CheckedContinuation<Void, Never>?
        var rung = false
    }

    private let state = Mutex(State())

    /// Rings: wakes the waiter, or makes the next wait return at once.
    func ring() {
        let waiter = state.withLock { state in
            defer { state.waiter = nil }
            if state.waiter == nil { state.rung = true }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Waits for a ring (returns at once when one came since the last wait).
    func wait() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state in
                if state.rung {
                    state.rung = false
                    return true
                }
                state.waiter = continuation
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Waits for a ring or until `timeout` passes; in a cancelled task, for a ring only (a sleep would end at once).
    func wait(timeout: Duration) async {
        if Task.isCancelled { return await wait() }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait() }
            group.addTask {
                do {
                    try await Task.sleep(for: timeout)
                } catch {
                    return
                }
                self.ring()
            }
            await group.next()
            group.cancelAll()
        }
    }
}
