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

/// One Redis command: its name and arguments, kept encoded in RESP, ready to write.
///
/// Encoding happens once, when the command is made, so a command (or a batch) built once and sent many times costs
/// only a copy.
public struct RedisCommand: Sendable, Hashable {
    /// The command in RESP wire format (`*N`, then `$len` and the bytes of each argument).
    public let encoded: [UInt8]
    /// The command name as given, for logs and errors.
    private let rawName: [UInt8]
    /// Where a cluster client sends the command when its own keys do not say (see ``routed(bySlotOf:)``).
    package private(set) var route: Route?

    /// A cluster route given by the caller.
    package enum Route: Sendable, Hashable {
        /// The node serving this key's slot.
        case slotOf([UInt8])
        /// This node.
        case node(RedisURL.Address)
    }

    /// Creates a command from raw byte arguments, the first being the command name.
    ///
    /// - Parameter arguments: The command name and its arguments.
    public init(arguments: [[UInt8]]) {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 + arguments.reduce(0) { $0 + $1.count + 16 })
        Self.appendHeader(UInt8(ascii: "*"), arguments.count, to: &buffer)
        for argument in arguments {
            Self.appendBulk(argument, to: &buffer)
        }
        encoded = buffer
        rawName = arguments.first ?? []
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
        var buffer: [UInt8] = []
        buffer.reserveCapacity(32 + arguments.count * 24)
        Self.appendHeader(UInt8(ascii: "*"), arguments.count + 1, to: &buffer)
        let nameBytes = Array(name.utf8)
        Self.appendBulk(nameBytes, to: &buffer)
        for argument in arguments {
            Self.appendBulk(argument.redisArgument, to: &buffer)
        }
        encoded = buffer
        rawName = nameBytes
    }

    /// The same command, sent on a Redis Cluster to the primary that serves `key`'s slot: for commands that have no
    /// key of their own but concern one slot (`SCAN … MATCH <prefix>*`, `WAIT` alone). Ignored by a single server.
    ///
    /// - Parameter key: A key of the slot the command is for.
    /// - Returns: The routed command.
    public func routed(bySlotOf key: String) -> RedisCommand {
        var command = self
        command.route = .slotOf(Array(key.utf8))
        return command
    }

    /// The same command, sent on a Redis Cluster to one node (``RedisClient/clusterPrimaries()`` names them): for
    /// commands about the node itself (`INFO`, `FUNCTION LOAD`, `DBSIZE`). Ignored by a single server.
    ///
    /// - Parameter node: The node's address, as the cluster announces it.
    /// - Returns: The routed command.
    public func routed(toNode node: RedisURL.Address) -> RedisCommand {
        var command = self
        command.route = .node(node)
        return command
    }

    /// The command's arguments (the name first), read back from the encoded form.
    package var arguments: [ArraySlice<UInt8>] {
        var result: [ArraySlice<UInt8>] = []
        var index = encoded.startIndex
        func number() -> Int {
            var value = 0
            index += 1
            while index < encoded.endIndex, encoded[index] != 13 {
                value = value * 10 + Int(encoded[index] - 48)
                index += 1
            }
            index += 2
            return value
        }
        let count = number()
        result.reserveCapacity(count)
        for _ in 0..<count {
            let length = number()
            result.append(encoded[index..<index + length])
            index += length + 2
        }
        return result
    }

    /// The command name, upper-cased, for logs and errors.
    public var name: String { String(decoding: rawName, as: UTF8.self).uppercased() }

    private static func appendBulk(_ bytes: [UInt8], to buffer: inout [UInt8]) {
        appendHeader(UInt8(ascii: "$"), bytes.count, to: &buffer)
        buffer.append(contentsOf: bytes)
        buffer.append(13)
        buffer.append(10)
    }

    private static func appendHeader(_ marker: UInt8, _ value: Int, to buffer: inout [UInt8]) {
        buffer.append(marker)
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            buffer.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
        buffer.append(13)
        buffer.append(10)
    }
}
