/// A value that can be sent to Redis as one argument of a command.
///
/// Strings are sent as their UTF-8 bytes, integers and doubles in decimal, byte arrays unchanged (binary safe).
public protocol RedisArgumentConvertible: Sendable {
    /// The bytes sent to Redis for this argument.
    var redisArgument: [UInt8] { get }
}

extension String: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(utf8) }
}

extension Substring: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(utf8) }
}

extension Array: RedisArgumentConvertible where Element == UInt8 {
    public var redisArgument: [UInt8] { self }
}

extension Int: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}

extension Double: RedisArgumentConvertible {
    public var redisArgument: [UInt8] { Array(String(self).utf8) }
}

/// One Redis command: its name and arguments, as bytes.
public struct RedisCommand: Sendable, Hashable {
    /// The command name followed by its arguments, each as raw bytes.
    public var arguments: [[UInt8]]

    /// Creates a command from raw byte arguments, the first being the command name.
    ///
    /// - Parameter arguments: The command name and its arguments.
    public init(arguments: [[UInt8]]) {
        self.arguments = arguments
    }

    /// Creates a command from a name and arguments.
    ///
    /// - Parameters:
    ///   - name: The command name, for example `"SET"`.
    ///   - arguments: The arguments, each a string, bytes or number.
    public init(_ name: String, _ arguments: any RedisArgumentConvertible...) {
        self.init(name, arguments)
    }

    /// Creates a command from a name and an array of arguments.
    ///
    /// - Parameters:
    ///   - name: The command name, for example `"RPUSH"`.
    ///   - arguments: The arguments, each a string, bytes or number.
    public init(_ name: String, _ arguments: [any RedisArgumentConvertible]) {
        var all: [[UInt8]] = [Array(name.utf8)]
        all.reserveCapacity(arguments.count + 1)
        for argument in arguments { all.append(argument.redisArgument) }
        self.arguments = all
    }

    /// The command name, upper-cased, for logs and errors.
    public var name: String { String(decoding: arguments.first ?? [], as: UTF8.self).uppercased() }

    /// Appends this command in RESP wire format (`*N`, then `$len` and the bytes of each argument).
    func encode(into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "*"))
        Self.appendDecimal(arguments.count, to: &buffer)
        buffer.append(contentsOf: [13, 10])
        for argument in arguments {
            buffer.append(UInt8(ascii: "$"))
            Self.appendDecimal(argument.count, to: &buffer)
            buffer.append(contentsOf: [13, 10])
            buffer.append(contentsOf: argument)
            buffer.append(contentsOf: [13, 10])
        }
    }

    private static func appendDecimal(_ value: Int, to buffer: inout [UInt8]) {
        if value < 10 {
            buffer.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: [UInt8] = []
        var rest = value
        while rest > 0 {
            digits.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        }
        buffer.append(contentsOf: digits.reversed())
    }
}
