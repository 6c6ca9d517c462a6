import Foundation
public import RedisClient
import Synchronization

/// A private `redis-server` process on a free loopback port, with a directory of its own.
///
/// Used by the tests (one server per test), by `conveyor-bench`, and by the `conveyor` commands that start a
/// throw-away Redis when no URL is given. It never uses port 6379 and never touches a server it did not start.
public final class LocalRedisServer: Sendable {
    /// How to start the server.
    public struct Options: Sendable {
        /// The `redis-server` executable: a path, or a name looked up in `PATH`.
        public var executable: String
        /// The port; `nil` picks a free one (never 6379).
        public var port: Int?
        /// The data directory; `nil` makes a temporary one, removed by ``stop()``.
        public var directory: String?
        /// Extra configuration as `redis-server` command-line options, for example `["--maxmemory", "64mb"]`.
        public var arguments: [String]
        /// Also listen on a Unix socket in the data directory.
        public var unixSocket: Bool
        /// How long to wait for the server to answer `PING` after starting it.
        public var startTimeout: Duration
        /// The text of a configuration file, written to the data directory as `redis.conf` and given to
        /// `redis-server` before the other options; `nil` for none. A Sentinel needs one (it rewrites it).
        public var configurationFile: String?
        /// Listen with TLS: ``LocalRedisServer/port`` is then the `tls-port` and ``LocalRedisServer/url`` a
        /// `rediss://` URL; `nil` for plain TCP.
        public var tls: TLSOptions?
        /// Keep the persistence settings of ``configurationFile`` (and ``arguments``); by default the server is
        /// started with `--save ""` and `--appendonly no`, as a test's scratch server needs no disk.
        public var keepsConfiguredPersistence = false

        /// Creates options.
        ///
        /// - Parameters:
        ///   - executable: `redis-server` by default.
        ///   - port: A fixed port, or `nil` for a free one.
        ///   - directory: A data directory, or `nil` for a temporary one.
        ///   - arguments: Extra `redis-server` options.
        ///   - unixSocket: Whether to listen on a Unix socket too.
        ///   - startTimeout: How long starting may take (10 s by default).
        ///   - configurationFile: The text of a configuration file, or `nil`.
        ///   - tls: TLS settings, or `nil` for plain TCP.
        public init(
            executable: String = "redis-server",
            port: Int? = nil,
            directory: String? = nil,
            arguments: [String] = [],
            unixSocket: Bool = false,
            startTimeout: Duration = .seconds(10),
            configurationFile: String? = nil,
            tls: TLSOptions? = nil
        ) {
            self.executable = executable
            self.port = port
            self.directory = directory
            self.arguments = arguments
            self.unixSocket = unixSocket
            self.startTimeout = startTimeout
            self.configurationFile = configurationFile
            self.tls = tls
        }
    }

    /// The loopback port the server listens on (its `tls-port` when it listens with TLS).
    public let port: Int
    /// With ``Options/tls`` and ``TLSOptions/plainPort``, the plain TCP port it listens on too; else `nil`.
    public let plainPort: Int?
    /// The server's data directory (log file `redis.log`, socket `redis.sock`).
    public let directory: String
    private let options: Options
    private let ownsDirectory: Bool
    private let process = Mutex<pid_t>(0)

    /// The URL to reach the server over TCP: `redis://127.0.0.1:<port>`, or with TLS
    /// `rediss://127.0.0.1:<port>?ca_file=…` (and the client certificate of ``Options/tls``).
    public var url: RedisURL {
        RedisURL(endpoint: .tcp(host: "127.0.0.1", port: port), tls: options.tls?.clientSettings)
    }
    /// The Unix socket path (only listened on when ``Options/unixSocket`` is set).
    public var socketPath: String { directory + "/redis.sock" }
    /// The process id of the running server, or 0 when it is stopped.
    public var pid: Int32 { process.withLock { $0 } }

    private init(port: Int, plainPort: Int?, directory: String, ownsDirectory: Bool, options: Options) {
        self.port = port
        self.plainPort = plainPort
        self.directory = directory
        self.ownsDirectory = ownsDirectory
        self.options = options
    }

    /// Starts a server and waits until it answers `PING`.
    ///
    /// - Parameter options: Executable, port, directory and extra configuration.
    /// - Returns: The running server; call ``stop()`` when done.
    /// - Throws: ``LocalRedisServerError`` when `redis-server` is missing or does not come up (with its log).
    public static func start(_ options: Options = Options()) async throws -> LocalRedisServer {
        var lastError: (any Error)?
        // A free port found by binding port 0 can be taken by someone else before redis-server binds it: retry.
        for _ in 0..<(options.port == nil ? 5 : 1) {
            let directory: String
            let ownsDirectory: Bool
            if let given = options.directory {
                directory = given
                ownsDirectory = false
                try FileManager.default.createDirectory(atPath: given, withIntermediateDirectories: true)
            } else {
                directory = try makeTemporaryDirectory()
                ownsDirectory = true
            }
            let server = LocalRedisServer(
                port: try options.port ?? freeLoopbackPort(),
                plainPort: options.tls?.plainPort == true ? try freeLoopbackPort() : nil,
                directory: directory,
                ownsDirectory: ownsDirectory,
                options: options
            )
            do {
                try await server.launch()
                return server
            } catch {
                lastError = error
                await server.stop()
            }
        }
        throw lastError ?? LocalRedisServerError(message: "redis-server did not start")
    }

    /// Stops the server and starts it again on the same port and directory (data is not kept: persistence is off
    /// unless enabled with ``Options/arguments``).
    ///
    /// - Throws: ``LocalRedisServerError`` when it does not come back.
    public func restart() async throws {
        await kill()
        try await launch()
    }

    /// Stops the server (`SHUTDOWN NOSAVE`, then `SIGKILL` by pid) and removes its temporary directory.
    public func stop() async {
        if pid != 0 {
            let connection = RedisConnection(
                configuration: .init(
                    url: url,
                    connectTimeout: .milliseconds(500),
                    commandTimeout: .milliseconds(500),
                    followsClusterRedirects: false
                )
            )
            _ = try? await connection.send("SHUTDOWN", "NOSAVE")
            connection.close()
        }
        await kill()
        if ownsDirectory {
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// Kills the server with `SIGKILL` and reaps it: a crash, as far as clients can tell.
    public func kill() async {
        let pid = process.withLock { pid in
            defer { pid = 0 }
            return pid
        }
        guard pid != 0 else { return }
        _ = Foundation.kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// The last lines of the server's log, for error messages.
    public func logTail(lines: Int = 20) -> String {
        guard let text = try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8) else { return "" }
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    private func launch() async throws {
        var arguments = [options.executable]
        if let text = options.configurationFile {
            let path = directory + "/redis.conf"
            // A restart keeps the file as the server rewrote it (a Sentinel records what it learnt there).
            if !FileManager.default.fileExists(atPath: path) {
                guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8)) else {
                    throw LocalRedisServerError(message: "cannot write the configuration file \(path)")
                }
            }
            arguments.append(path)
        }
        if let tls = options.tls {
            arguments += tls.arguments(port: port, plainPort: plainPort)
        } else {
            arguments += ["--port", String(port)]
        }
        arguments += [
            "--bind", "127.0.0.1",
            "--dir", directory,
            "--logfile", directory + "/redis.log",
            "--daemonize", "no",
            "--protected-mode", "no",
        ]
        if !options.keepsConfiguredPersistence { arguments += ["--save", "", "--appendonly", "no"] }
        if options.unixSocket {
            arguments += ["--unixsocket", socketPath, "--unixsocketperm", "700"]
        }
        arguments += options.arguments
        let pid = try spawn(arguments)
        process.withLock { $0 = pid }
        let clock = ContinuousClock()
        let deadline = clock.now + options.startTimeout
        let probe = RedisConnection(
            configuration: .init(
                url: url,
                connectTimeout: .milliseconds(200),
                commandTimeout: .seconds(1),
                followsClusterRedirects: false
            )
        )
        defer { probe.close() }
        while clock.now < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                process.withLock { $0 = 0 }
                throw LocalRedisServerError(
                    message: "redis-server exited at start on port \(port) (status \(status)); log:\n\(logTail())"
                )
            }
            // The server that answers must be this one: when another test's server took the port first, ours fails
            // to bind and exits, while the other answers.
            if let reply = try? await probe.send("INFO", "server") {
                if let info = reply.string, info.contains("\r\nprocess_id:\(pid)\r\n") { return }
                if reply.errorMessage != nil {
                    // A password is set (NOAUTH): INFO cannot tell whose it is; ours is if it is still running.
                    try await Task.sleep(for: .milliseconds(50))
                    if waitpid(pid, &status, WNOHANG) == 0 { return }
                    process.withLock { $0 = 0 }
                    throw LocalRedisServerError(
                        message: "redis-server exited at start on port \(port) (status \(status)); log:\n\(logTail())"
                    )
                }
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw LocalRedisServerError(
            message: "redis-server on port \(port) did not answer within \(options.startTimeout); log:\n\(logTail())"
        )
    }

    private func spawn(_ arguments: [String]) throws -> pid_t {
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        defer { posix_spawn_file_actions_destroy(&fileActions) }
        posix_spawn_file_actions_addopen(&fileActions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fileActions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(
            &fileActions,
            2,
            directory + "/stderr.log",
            O_WRONLY | O_CREAT | O_APPEND,
            0o644
        )
        // The child must not inherit an ignored SIGPIPE or a blocked SIGTERM from the (Swift concurrency) thread
        // that starts it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        sigaddset(&defaults, SIGTERM)
        sigaddset(&defaults, SIGINT)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        // A process group of its own: Ctrl-C in a terminal interrupts `conveyor dev` or `conveyor demo`, which then
        // shut their worker down while Redis still answers, and only then stop the server.
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes,
            Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP)
        )
        let cStrings = arguments.map { strdup($0) }
        defer { for cString in cStrings { free(cString) } }
        var argv = cStrings + [nil]
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &fileActions, &attributes, &argv, environ)
        guard result == 0 else {
            throw LocalRedisServerError(
                message: "cannot start '\(arguments[0])': \(String(cString: strerror(result))); "
                    + "install it with: apt-get install -y redis-server"
            )
        }
        return pid
    }

    private static func makeTemporaryDirectory() throws -> String {
        let base = NSTemporaryDirectory().hasSuffix("/") ? NSTemporaryDirectory() : NSTemporaryDirectory() + "/"
        var template = Array((base + "conveyor-redis-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw LocalRedisServerError(
                message: "cannot create a temporary directory: \(String(cString: strerror(errno)))"
            )
        }
        return String(cString: made)
    }

    /// A loopback port that was free a moment ago (never 6379).
    public static func freeLoopbackPort() throws -> Int {
        for _ in 0..<10 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { break }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = 0
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                    bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
                }
            }
            guard bound else { continue }
            let port = Int(UInt16(bigEndian: address.sin_port))
            if port != 6379 { return port }
        }
        throw LocalRedisServerError(message: "cannot find a free loopback port: \(String(cString: strerror(errno)))")
    }
}

/// Why a private `redis-server` could not be started.
public struct LocalRedisServerError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, with the server's log where there is one.
    public var message: String

    public var description: String { message }
}
