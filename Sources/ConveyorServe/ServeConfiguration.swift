/// How `conveyor serve` listens and who may use it.
public struct ServeConfiguration: Sendable {
    /// Who may use the dashboard and the API.
    public enum Access: Sendable, Hashable {
        /// Anyone who reaches the port: allowed only on a loopback address, and only when asked for explicitly.
        case open
        /// A bearer token (`Authorization: Bearer <token>`, or the dashboard's sign-in page).
        case token(String)
        /// A user and password (`Authorization: Basic …`, or the dashboard's sign-in page).
        case user(name: String, password: String)
    }

    /// The address to bind (127.0.0.1 unless told otherwise).
    public var host: String
    /// The port (0: any free port).
    public var port: Int
    /// Who may use it.
    public var access: Access
    /// When true, every request that would change something is refused with 403 `readOnly`, and the dashboard
    /// shows no actions.
    public var readOnly: Bool
    /// The largest request body accepted (bulk enqueue), in bytes.
    public var maximumBodyBytes: Int

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - host: The address to bind.
    ///   - port: The port (0: any free port).
    ///   - access: Who may use it.
    ///   - readOnly: Refuse every change.
    ///   - maximumBodyBytes: The largest request body, 8 MiB by default.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        access: Access,
        readOnly: Bool = false,
        maximumBodyBytes: Int = 8 << 20
    ) {
        self.host = host
        self.port = port
        self.access = access
        self.readOnly = readOnly
        self.maximumBodyBytes = maximumBodyBytes
    }

    /// Whether `host` is a loopback address (127.0.0.0/8, ::1 or localhost), the only place where open access is
    /// allowed.
    public var bindsLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
