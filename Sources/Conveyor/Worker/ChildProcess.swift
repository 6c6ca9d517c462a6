import CConveyorSpawn
import Dispatch
import Foundation
import Synchronization

/// A child process run through `/bin/sh -c` (or any executable), fed on standard input and read on standard output
/// and error, on a thread of its own.
///
/// Started by `conveyor_spawn` (`Sources/CConveyorSpawn`) in a process group of its own, led by a small supervisor
/// that dies with this process, even by SIGKILL, and then kills the group: a handler never outlives its worker. The
/// child gets default signal dispositions and an empty mask (a child started from a Swift concurrency thread would
/// otherwise inherit a blocked SIGTERM), and no descriptor but its standard input, output and error. Stopping sends
/// SIGTERM to the whole group, then SIGKILL after a grace period; a stop that comes before the start means it never
/// starts.
package final class ChildProcess: Sendable {
    /// How a child ended.
    package struct Termination: Sendable {
        /// The exit status, or `128 + signal` when a signal killed it.
        package var status: Int32
        /// Whether a signal killed it.
        package var signaled: Bool
        /// Standard output (up to the limit given).
        package var output: [UInt8]
        /// The last part of standard error.
        package var errorTail: [UInt8]
    }

    private struct State {
        /// The command's own process.
        var pid: pid_t = 0
        /// The supervisor's pid, which is the group's id.
        var group: pid_t = 0
        var exited = false
        var stopRequested = false
        var killGrace: Duration = .seconds(5)
    }

    private let state = Mutex(State())

    package init() {}

    /// The command's process id, once started (0 before).
    package var pid: Int32 { state.withLock { $0.pid } }

    /// The id of the child's process group (its supervisor's pid), once started (0 before).
    package var group: Int32 { state.withLock { $0.group } }

    /// Runs `arguments` (the executable first) to the end: writes `input` to its standard input, collects its
    /// output. Cancelling the calling task stops the child (SIGTERM, then SIGKILL after `killGrace`).
    ///
    /// - Throws: `ConveyorError` when the process cannot be started.
    package func run(
        _ arguments: [String],
        input: [UInt8],
        environment: [String: String],
        outputLimit: Int = 16 << 20,
        errorLimit: Int = 64 << 10,
        killGrace: Duration = .seconds(5)
    ) async throws -> Termination {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Termination, any Error>) in
                let thread = Thread { [self] in
                    continuation.resume(
                        with: Result {
                            try self.runBlocking(arguments, input, environment, outputLimit, errorLimit)
                        }
                    )
                }
                thread.name = "conveyor-child"
                thread.start()
            }
        } onCancel: {
            self.stop(killGrace: killGrace)
        }
    }

    /// Kills the child's process group with SIGKILL at once, if it still runs.
    package func kill() {
        let group = state.withLock { state in
            state.stopRequested = true
            state.killGrace = .zero
            return state.exited ? 0 : state.group
        }
        if group > 0 { _ = Foundation.kill(-group, SIGKILL) }
    }

    /// Sends SIGTERM to the child's process group, and SIGKILL after `killGrace` if it is still there.
    package func stop(killGrace: Duration) {
        let group = state.withLock { state in
            // Remembered, so a stop that comes before the spawn is not lost: the command then never starts.
            state.stopRequested = true
            state.killGrace = killGrace
            return state.exited ? 0 : state.group
        }
        guard group > 0 else { return }
        signalGroup(group, killGrace: killGrace)
    }

    private func signalGroup(_ group: pid_t, killGrace: Duration) {
        _ = Foundation.kill(-group, killGrace == .zero ? SIGKILL : SIGTERM)
        let nanoseconds =
            UInt64(killGrace.components.seconds) * 1_000_000_000
            + UInt64(killGrace.components.attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [self] in
            let group = state.withLock { $0.exited ? 0 : $0.group }
            if group > 0 { _ = Foundation.kill(-group, SIGKILL) }
        }
    }

    private func runBlocking(
        _ arguments: [String],
        _ input: [UInt8],
        _ environment: [String: String],
        _ outputLimit: Int,
        _ errorLimit: Int
    ) throws -> Termination {
        if state.withLock({ $0.stopRequested }) {
            state.withLock { $0.exited = true }
            return Termination(
                status: 128 + SIGTERM,
                signaled: true,
                output: [],
                errorTail: Array("stopped before it started".utf8)
            )
        }
        var stdinPipe: [Int32] = [0, 0]
        var stdoutPipe: [Int32] = [0, 0]
        var stderrPipe: [Int32] = [0, 0]
        // Close-on-exec from the start (pipe2), so no other child started meanwhile keeps these pipes open.
        guard conveyor_pipe_cloexec(&stdinPipe) == 0 else { throw Self.failure("cannot create pipes for a command") }
        guard conveyor_pipe_cloexec(&stdoutPipe) == 0 else {
            close(stdinPipe[0])
            close(stdinPipe[1])
            throw Self.failure("cannot create pipes for a command")
        }
        guard conveyor_pipe_cloexec(&stderrPipe) == 0 else {
            for descriptor in stdinPipe + stdoutPipe { close(descriptor) }
            throw Self.failure("cannot create pipes for a command")
        }
        let argv = arguments.map { strdup($0) }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") }
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var handler: pid_t = 0
        var spawnError: Int32 = 0
        // The lock is held across the spawn, so a stop either came before (and nothing starts) or finds the group.
        let (group, stopNow, grace): (pid_t, Bool, Duration) = state.withLock { state in
            if state.stopRequested { return (-1, false, .zero) }
            let group = conveyor_spawn(
                arguments[0],
                argv + [nil],
                envp + [nil],
                stdinPipe[0],
                stdoutPipe[1],
                stderrPipe[1],
                &handler,
                &spawnError
            )
            if group > 0 {
                state.pid = handler
                state.group = group
            }
            return (group, state.stopRequested, state.killGrace)
        }
        close(stdinPipe[0])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard group > 0 else {
            close(stdinPipe[1])
            close(stdoutPipe[0])
            close(stderrPipe[0])
            state.withLock { $0.exited = true }
            if group == -1 && spawnError == 0 {
                return Termination(
                    status: 128 + SIGTERM,
                    signaled: true,
                    output: [],
                    errorTail: Array("stopped before it started".utf8)
                )
            }
            throw ConveyorError(
                .processFailed,
                "cannot start \(arguments[0]): \(String(cString: strerror(spawnError)))"
            )
        }
        if stopNow { signalGroup(group, killGrace: grace) }
        let pid = group

        // Feed stdin and drain stdout and stderr together, so a child that writes a lot before reading cannot
        // deadlock against us.
        var writeFD: Int32 = stdinPipe[1]
        _ = fcntl(writeFD, F_SETFL, fcntl(writeFD, F_GETFL) | O_NONBLOCK)
        var written = 0
        if input.isEmpty {
            close(writeFD)
            writeFD = -1
        }
        var output: [UInt8] = []
        var errorTail: [UInt8] = []
        var openReaders: Set<Int32> = [stdoutPipe[0], stderrPipe[0]]
        for descriptor in openReaders { _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var status: Int32 = 0
        var reaped = false
        var drainsAfterExit = 0
        while !openReaders.isEmpty || writeFD >= 0 {
            // A process spawned at the same moment by another thread may have inherited a copy of our pipes (the
            // close-on-exec flag is set right after pipe(2), not atomically), so end-of-file may never come: once
            // the child has exited, read what is there and stop.
            if !reaped && waitpid(pid, &status, WNOHANG) == pid {
                reaped = true
                state.withLock { $0.exited = true }
            }
            if reaped {
                drainsAfterExit += 1
                if drainsAfterExit > 3 { break }
            }
            var fds: [pollfd] = openReaders.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if writeFD >= 0 { fds.append(pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0)) }
            let ready = poll(&fds, nfds_t(fds.count), reaped ? 10 : 100)
            if ready < 0 {
                if errno == EINTR { continue }
                break
            }
            for descriptor in fds where descriptor.revents != 0 {
                if descriptor.fd == writeFD {
                    let count = input[written...].withUnsafeBytes { write(writeFD, $0.baseAddress, $0.count) }
                    if count > 0 { written += count }
                    if count < 0 && errno != EAGAIN || written >= input.count {
                        close(writeFD)
                        writeFD = -1
                    }
                    continue
                }
                let count = read(descriptor.fd, &buffer, buffer.count)
                if count <= 0 {
                    if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                    close(descriptor.fd)
                    openReaders.remove(descriptor.fd)
                } else if descriptor.fd == stdoutPipe[0] {
                    if output.count < outputLimit { output += buffer[0..<min(count, outputLimit - output.count)] }
                } else {
                    errorTail += buffer[0..<count]
                    if errorTail.count > errorLimit { errorTail.removeFirst(errorTail.count - errorLimit) }
                }
            }
        }
        for descriptor in openReaders { close(descriptor) }
        if writeFD >= 0 { close(writeFD) }
        if !reaped {
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        }
        state.withLock { $0.exited = true }
        let signaled = (status & 0x7F) != 0 && (status & 0x7F) != 0x7F
        let code = signaled ? 128 + (status & 0x7F) : (status >> 8) & 0xFF
        return Termination(status: code, signaled: signaled, output: output, errorTail: errorTail)
    }

    private static func failure(_ what: String) -> ConveyorError {
        ConveyorError(.processFailed, "\(what): \(String(cString: strerror(errno)))")
    }
}
