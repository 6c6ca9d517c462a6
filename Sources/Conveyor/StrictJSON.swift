import Foundation

/// A strict JSON (RFC 8259) checker that says where text stops being JSON.
///
/// Foundation's parser accepts some text Redis's `cjson` (and so the Lua functions) refuses, such as trailing commas;
/// checking with this first gives the same answer as the server, with the place it breaks.
public enum StrictJSON {
    /// Where and why text is not JSON.
    public struct Problem: Sendable, Hashable {
        /// The offset, in bytes of UTF-8, where it breaks.
        public var offset: Int
        /// What was expected there.
        public var reason: String
    }

    /// Nesting deeper than this is refused (cjson's limit is 1000).
    public static let maximumDepth = 512

    /// Checks `text`.
    ///
    /// - Parameter text: The text.
    /// - Returns: `nil` when `text` is one JSON value (with optional whitespace around it), else the problem.
    public static func problem(in text: String) -> Problem? {
        var checker = Checker(bytes: Array(text.utf8))
        do throws(Problem) {
            checker.skipSpace()
            try checker.value(depth: 0)
            checker.skipSpace()
            if checker.position < checker.bytes.count {
                throw Problem(offset: checker.position, reason: "unexpected text after the JSON value")
            }
            return nil
        } catch {
            return error
        }
    }

    /// The members of a JSON object as written: each name (decoded) with its value's exact text, so a value can be
    /// stored byte for byte (a parse and re-encode turns `1.0` into `1` and `/` into `\/`).
    ///
    /// - Parameter text: The text of one JSON object.
    /// - Returns: The members in order, or `nil` when `text` is not one JSON object.
    public static func rawMembers(of text: String) -> [(name: String, value: String)]? {
        var checker = Checker(bytes: Array(text.utf8))
        checker.recordsMembers = true
        checker.skipSpace()
        guard checker.position < checker.bytes.count, checker.bytes[checker.position] == UInt8(ascii: "{") else {
            return nil
        }
        do throws(Problem) {
            try checker.value(depth: 0)
            checker.skipSpace()
            guard checker.position == checker.bytes.count else { return nil }
        } catch {
            return nil
        }
        var members: [(name: String, value: String)] = []
        for (name, value) in checker.members {
            let quoted = Data(checker.bytes[name])
            guard let decoded = try? JSONDecoder().decode(String.self, from: quoted) else { return nil }
            members.append((decoded, String(decoding: checker.bytes[value], as: UTF8.self)))
        }
        return members
    }

    private struct Checker {
        let bytes: [UInt8]
        var position = 0
        /// When set, the byte ranges of the outermost object's member names (quoted) and values.
        var recordsMembers = false
        var members: [(name: Range<Int>, value: Range<Int>)] = []

        mutating func skipSpace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        func fail(_ reason: String) -> Problem {
            Problem(offset: position, reason: position >= bytes.count ? "the text ends too early" : reason)
        }

        mutating func value(depth: Int) throws(Problem) {
            guard position < bytes.count else { throw fail("") }
            switch bytes[position] {
            case UInt8(ascii: "{"): try object(depth: depth + 1)
            case UInt8(ascii: "["): try array(depth: depth + 1)
            case UInt8(ascii: "\""): try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
            default: throw fail("expected a value (object, array, string, number, true, false or null)")
            }
        }

        mutating func object(depth: Int) throws(Problem) {
            guard depth <= StrictJSON.maximumDepth else { throw fail("nested deeper than \(StrictJSON.maximumDepth)") }
            position += 1
            skipSpace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return
            }
            while true {
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                    throw fail("expected a member name in double quotes")
                }
                let nameStart = position
                try string()
                let name = nameStart..<position
                skipSpace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else {
                    throw fail("expected ':' after the member name")
                }
                position += 1
                skipSpace()
                let valueStart = position
                try value(depth: depth)
                if recordsMembers && depth == 1 { members.append((name, valueStart..<position)) }
                skipSpace()
                guard position < bytes.count else { throw fail("") }
                if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return
                }
                guard bytes[position] == UInt8(ascii: ",") else { throw fail("expected ',' or '}'") }
                position += 1
                skipSpace()
            }
        }

        mutating func array(depth: Int) throws(Problem) {
            guard depth <= StrictJSON.maximumDepth else { throw fail("nested deeper than \(StrictJSON.maximumDepth)") }
            position += 1
            skipSpace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return
            }
            while true {
                try value(depth: depth)
                skipSpace()
                guard position < bytes.count else { throw fail("") }
                if bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return
                }
                guard bytes[position] == UInt8(ascii: ",") else { throw fail("expected ',' or ']'") }
                position += 1
                skipSpace()
            }
        }

        mutating func string() throws(Problem) {
            position += 1
            while position < bytes.count {
                let byte = bytes[position]
                switch byte {
                case UInt8(ascii: "\""):
                    position += 1
                    return
                case UInt8(ascii: "\\"):
                    position += 1
                    guard position < bytes.count else { throw fail("") }
                    switch bytes[position] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                        UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        position += 1
                    case UInt8(ascii: "u"):
                        position += 1
                        for _ in 0..<4 {
                            guard position < bytes.count, Self.isHexDigit(bytes[position]) else {
                                throw fail("expected four hex digits after \\u")
                            }
                            position += 1
                        }
                    default: throw fail("unknown escape; use \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX")
                    }
                case 0..<0x20:
                    throw fail("a control character in a string must be escaped")
                default:
                    position += 1
                }
            }
            throw fail("")
        }

        mutating func number() throws(Problem) {
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < bytes.count, Self.isDigit(bytes[position]) else { throw fail("expected a digit") }
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
            } else {
                while position < bytes.count, Self.isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                guard position < bytes.count, Self.isDigit(bytes[position]) else {
                    throw fail("expected a digit after '.'")
                }
                while position < bytes.count, Self.isDigit(bytes[position]) { position += 1 }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-")
                {
                    position += 1
                }
                guard position < bytes.count, Self.isDigit(bytes[position]) else {
                    throw fail("expected a digit in the exponent")
                }
                while position < bytes.count, Self.isDigit(bytes[position]) { position += 1 }
            }
        }

        mutating func literal(_ word: String) throws(Problem) {
            for byte in word.utf8 {
                guard position < bytes.count, bytes[position] == byte else { throw fail("expected \(word)") }
                position += 1
            }
        }

        static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        static func isHexDigit(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
                || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "F"))
        }
    }
}

extension StrictJSON.Problem: Error {}

extension StrictJSON.Problem {
    /// "expected ',' or '}' at character 9: {"a": 1,⟨here⟩, }": the reason, the place, and up to 20 characters on
    /// each side.
    public func describe(in text: String) -> String {
        let bytes = Array(text.utf8)
        let characterOffset = String(decoding: bytes[..<min(offset, bytes.count)], as: UTF8.self).count
        let characters = Array(text)
        let before = String(characters[max(0, characterOffset - 20)..<characterOffset])
        let after = String(characters[characterOffset..<min(characters.count, characterOffset + 20)])
        return text.isEmpty ? "it is empty" : "\(reason) at character \(characterOffset + 1): \(before)⟨here⟩\(after)"
    }
}
