/// One reply from Redis, copied out of hiredis into Swift values (RESP2).
///
/// Error replies are values, not thrown errors: a script that answers `-ERR …` is a reply like any other.
public enum RedisReply: Sendable, Hashable {
    /// A simple string such as `OK` or `PONG`.
    case status(String)
    /// An error reply such as `ERR unknown command`, without the leading `-`.
    case error(String)
    /// An integer reply.
    case integer(Int)
    /// A bulk string: arbitrary bytes, not necessarily UTF-8.
    case bulkString([UInt8])
    /// The null bulk string or null array (`$-1`, `*-1`).
    case null
    /// An array of replies, possibly nested.
    case array([RedisReply])

    /// The reply as text: a status, or a bulk string decoded as UTF-8 (invalid bytes repaired); `nil` otherwise.
    public var string: String? {
        switch self {
        case .status(let text): text
        case .bulkString(let bytes): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The raw bytes of a bulk string or status; `nil` otherwise.
    public var bytes: [UInt8]? {
        switch self {
        case .bulkString(let bytes): bytes
        case .status(let text): Array(text.utf8)
        default: nil
        }
    }

    /// The reply as an integer: an integer reply, or a bulk string or status holding a decimal integer.
    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .bulkString, .status: string.flatMap { Int($0) }
        default: nil
        }
    }

    /// The elements of an array reply; `nil` otherwise.
    public var array: [RedisReply]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// The message of an error reply; `nil` otherwise.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// Whether this is the null reply.
    public var isNull: Bool { self == .null }
}

extension RedisReply: CustomStringConvertible {
    /// A short, `redis-cli`-like rendering, for logs and the CLI.
    public var description: String {
        switch self {
        case .status(let text): text
        case .error(let message): "(error) \(message)"
        case .integer(let value): "(integer) \(value)"
        case .bulkString: "\"\(string ?? "")\""
        case .null: "(nil)"
        case .array(let elements): "[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}
