import Dispatch
import Foundation
import Synchronization

/// A child process run through `/bin/sh -c` (or any executable), fed on standard input and read on standard output
/// and error, on a thread of its own.
///
/// Spawned with `posix_spawn` in a process group of its own, with the signal mask emptied and SIGPIPE, SIGTERM and
/// SIGINT set to their defaults: a child started from a Swift concurrency thread would otherwise inherit a blocked
/// SIGTERM and could not be stopped. Stopping sends SIGTERM to the whole group, then SIGKILL after a grace period.
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

    private let state = Mutex<(pid: pid_t, exited: Bool)>((0, false))

    package init() {}

    /// The child's process id, once started (0 before).
    package var pid: Int32 { state.withLock { $0.pid } }

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
        let pid = state.withLock { $0.exited ? 0 : $0.pid }
        if pid > 0 { _ = Foundation.kill(-pid, SIGKILL) }
    }

    /// Sends SIGTERM to the child's process group, and SIGKILL after `killGrace` if it is still there.
    package func stop(killGrace: Duration) {
        let pid = state.withLock { $0.exited ? 0 : $0.pid }
        guard pid > 0 else { return }
        _ = Foundation.kill(-pid, SIGTERM)
        let nanoseconds =
            UInt64(killGrace.components.seconds) * 1_000_000_000
            + UInt64(killGrace.components.attoseconds / 1_000_000_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [self] in
            let pid = state.withLock { $0.exited ? 0 : $0.pid }
            if pid > 0 { _ = Foundation.kill(-pid, SIGKILL) }
        }
    }

    private func runBlocking(
        _ arguments: [String],
        _ input: [UInt8],
        _ environment: [String: String],
        _ outputLimit: Int,
        _ errorLimit: Int
    ) throws -> Termination {
        var stdinPipe: [Int32] = [0, 0]
        var stdoutPipe: [Int32] = [0, 0]
        var stderrPipe: [Int32] = [0, 0]
        guard pipe(&stdinPipe) == 0, pipe(&stdoutPipe) == 0, pipe(&stderrPipe) == 0 else {
            throw ConveyorError(.redis, "cannot create pipes for a command: \(String(cString: strerror(errno)))")
        }
        // Close-on-exec, so other children started meanwhile do not keep these pipes open.
        for descriptor in stdinPipe + stdoutPipe + stderrPipe {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP)
        )
        let argv = arguments.map { strdup($0) }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") }
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv + [nil], envp + [nil])
        close(stdinPipe[0])
        close(stdoutPipe[1])
        close(stderrPipe[1])
        guard spawned == 0 else {
            close(stdinPipe[1])
            close(stdoutPipe[0])
            close(stderrPipe[0])
            throw ConveyorError(.invalidArgument, "cannot start \(arguments[0]): \(String(cString: strerror(spawned)))")
        }
        state.withLock { $0.pid = pid }

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
}
