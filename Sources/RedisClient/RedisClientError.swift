/// A failure to talk to Redis: a bad URL, a connection that could not be made or was lost, a timeout, or a
/// client that was shut down.
///
/// Redis *error replies* (`-ERR …`) are not thrown: they come back as ``RedisReply/error(_:)`` values. Only
/// transport and usage failures throw.
public struct RedisClientError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        let name: String

        /// The Redis URL could not be parsed.
        public static let invalidURL = Code(name: "invalidURL")
        /// No connection could be made (refused, unreachable, DNS, connect timeout, TLS handshake or certificate
        /// verification failed, AUTH or SELECT refused).
        public static let connectionFailed = Code(name: "connectionFailed")
        /// An established connection broke while a command was in flight; the command may or may not have run.
        public static let connectionLost = Code(name: "connectionLost")
        /// The server did not answer within the command timeout.
        public static let timeout = Code(name: "timeout")
        /// The server sent something the client could not understand.
        public static let protocolError = Code(name: "protocolError")
        /// The connection or client was closed, or a blocking call was interrupted by ``RedisConnection/interrupt()``.
        public static let closed = Code(name: "closed")
        /// The server refused the command for a while (a read-only replica after a failover, still loading its
        /// data, busy with a script) and was still refusing it after the failover timeout. The command did not run.
        public static let unavailable = Code(name: "unavailable")
        /// A reply did not have the shape the caller expected.
        public static let unexpectedReply = Code(name: "unexpectedReply")

        public var description: String { name }
    }

    /// What kind of failure this is.
    public var code: Code
    /// What went wrong and what to do about it, naming the server with its password masked.
    public var message: String

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - code: What kind of failure this is.
    ///   - message: What went wrong and what to do about it.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
