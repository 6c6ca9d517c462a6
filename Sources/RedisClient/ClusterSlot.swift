/// Redis Cluster's key → slot rule, and which argument of a command is its key.
///
/// A key's slot is CRC16 (XMODEM) of the key modulo 16384, or of its hash tag: the part between the first `{` and the
/// next `}` after it, when that part is not empty. So `conveyor:{emails}:pending` and `conveyor:{emails}:job:1` share
/// a slot, the one of `emails`.
package enum ClusterSlot {
    /// The number of slots.
    package static let count = 16384

    /// The slot of a key.
    package static func of<Key: Collection<UInt8>>(_ key: Key) -> Int {
        var hashed = key[...]
        if let open = key.firstIndex(of: UInt8(ascii: "{")) {
            let afterOpen = key.index(after: open)
            if let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen {
                hashed = key[afterOpen..<close]
            }
        }
        return Int(crc16(hashed) & 0x3FFF)
    }

    /// The slot of a key given as a string.
    package static func of(_ key: String) -> Int { of(Array(key.utf8)) }

    /// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection, as Redis Cluster uses.
    static func crc16<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { value in
        var crc = UInt16(value) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }

    /// Where a command goes on a cluster.
    package enum Target: Equatable {
        /// The primary of this slot.
        case slot(Int)
        /// This node.
        case node(RedisURL.Address)
        /// No key: with the command before it in a pipeline (`WAIT` after a write), else any primary.
        case anywhere
    }

    /// The target of a command: its route when the caller gave one, else the slot of its first key.
    package static func target(of command: RedisCommand) -> Target { routing(of: command).target }

    /// The target of a command, and whether it calls a function or script (which must not follow `ASK`), read from
    /// one pass over its arguments.
    static func routing(of command: RedisCommand) -> (target: Target, callsCode: Bool) {
        let arguments = command.arguments
        let name = arguments.first.map { String(decoding: $0, as: UTF8.self).uppercased() } ?? ""
        let callsCode = codeCalls.contains(name)
        switch command.route {
        case .slotOf(let key): return (.slot(of(key)), callsCode)
        case .node(let address): return (.node(address), callsCode)
        case nil: break
        }
        guard let key = firstKey(arguments, name: name) else { return (.anywhere, callsCode) }
        return (.slot(of(key)), callsCode)
    }

    /// The commands that run code on the server and take their keys after a count.
    private static let codeCalls: Set<String> = ["FCALL", "FCALL_RO", "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"]

    /// The first key of a command (`name` is its upper-cased name), or `nil` for commands without keys.
    static func firstKey(_ arguments: [ArraySlice<UInt8>], name: String) -> ArraySlice<UInt8>? {
        if keyless.contains(name) { return nil }
        if codeCalls.contains(name) {
            guard arguments.count > 3, let count = Int(String(decoding: arguments[2], as: UTF8.self)), count > 0
            else { return nil }
            return arguments[3]
        }
        switch name {
        case "XREAD", "XREADGROUP":
            guard
                let streams = arguments.firstIndex(where: {
                    String(decoding: $0, as: UTF8.self).uppercased() == "STREAMS"
                }),
                streams + 1 < arguments.count
            else { return nil }
            return arguments[streams + 1]
        case "XINFO", "OBJECT", "MEMORY", "XGROUP":
            return arguments.count > 2 ? arguments[2] : nil
        default:
            return arguments.count > 1 ? arguments[1] : nil
        }
    }

    /// Commands that take no key (or whose key is not the first argument and that Conveyor sends keyless).
    private static let keyless: Set<String> = [
        "PING", "ECHO", "TIME", "INFO", "WAIT", "FUNCTION", "CLUSTER", "CLIENT", "AUTH", "HELLO", "SELECT", "ROLE",
        "SCAN", "DBSIZE", "CONFIG", "COMMAND", "MULTI", "EXEC", "DISCARD", "SCRIPT", "ASKING", "READONLY",
        "READWRITE", "FLUSHALL", "FLUSHDB", "LASTSAVE", "SAVE", "BGSAVE", "BGREWRITEAOF", "SLOWLOG", "LATENCY", "ACL",
        "DEBUG", "MONITOR", "QUIT", "RESET", "SHUTDOWN", "REPLICAOF", "SLAVEOF", "FAILOVER", "PUBLISH", "SUBSCRIBE",
        "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "RANDOMKEY", "SWAPDB", "LOLWUT", "UNWATCH",
    ]
}
