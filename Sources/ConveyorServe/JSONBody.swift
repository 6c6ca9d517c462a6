import Foundation

/// A JSON object from a request body, read strictly: a field of the wrong type, or one that is not known, is a
/// `400 invalidArgument` naming the field, never a guess.
struct JSONBody {
    let fields: [String: Any]
    /// Where the object is, for messages: "body", "jobs[3]".
    let place: String

    /// Parses `bytes` as one JSON object.
    init(bytes: [UInt8], place: String = "body") throws(APIError) {
        guard !bytes.isEmpty else { throw APIError.invalid("the \(place) is empty: send a JSON object") }
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        } catch {
            throw APIError.invalid("the \(place) is not valid JSON: send a JSON object (\(error.localizedDescription))")
        }
        try self.init(value: value, place: place)
    }

    /// Wraps a parsed value, which must be an object.
    init(value: Any, place: String) throws(APIError) {
        guard let fields = value as? [String: Any] else {
            throw APIError.invalid("the \(place) must be a JSON object, not \(Self.kind(of: value))")
        }
        self.fields = fields
        self.place = place
    }

    /// Refuses fields outside `known`.
    func allow(_ known: Set<String>) throws(APIError) {
        let unknown = Set(fields.keys).subtracting(known).sorted()
        guard unknown.isEmpty else {
            throw APIError.invalid(
                "\(place): unknown field\(unknown.count > 1 ? "s" : "") \(unknown.map { "'\($0)'" }.joined(separator: ", ")) "
                    + "(known: \(known.sorted().joined(separator: ", ")))"
            )
        }
    }

    func string(_ name: String) throws(APIError) -> String? {
        guard let value = present(name) else { return nil }
        guard let text = value as? String else { throw wrongType(name, "a string", value) }
        return text
    }

    func requiredString(_ name: String) throws(APIError) -> String {
        guard let text = try string(name) else { throw APIError.invalid("\(place): '\(name)' is required") }
        return text
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws(APIError) -> Int? {
        guard let value = present(name) else { return nil }
        guard let number = value as? NSNumber, !Self.isBoolean(number),
            let integer = Int(exactly: number.doubleValue), Double(integer) == number.doubleValue
        else { throw wrongType(name, "an integer", value) }
        guard range.contains(integer) else {
            throw APIError.invalid(
                "\(place): '\(name)' must be from \(range.lowerBound) to \(range.upperBound), got \(integer)"
            )
        }
        return integer
    }

    func object(_ name: String) throws(APIError) -> JSONBody? {
        guard let value = present(name) else { return nil }
        return try JSONBody(value: value, place: "\(place).\(name)")
    }

    func array(_ name: String) throws(APIError) -> [Any]? {
        guard let value = present(name) else { return nil }
        guard let items = value as? [Any] else { throw wrongType(name, "an array", value) }
        return items
    }

    /// Any JSON value, as compact JSON text.
    func json(_ name: String) throws(APIError) -> String? {
        guard let value = fields[name] else { return nil }
        do {
            let data = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed])
            return String(decoding: data, as: UTF8.self)
        } catch {
            throw APIError.invalid("\(place): '\(name)' cannot be written as JSON")
        }
    }

    private func present(_ name: String) -> Any? {
        guard let value = fields[name], !(value is NSNull) else { return nil }
        return value
    }

    private func wrongType(_ name: String, _ expected: String, _ value: Any) -> APIError {
        APIError.invalid("\(place): '\(name)' must be \(expected), not \(Self.kind(of: value))")
    }

    /// Whether JSON's `true`/`false` made this number (Foundation gives booleans the Objective-C type `c`).
    static func isBoolean(_ number: NSNumber) -> Bool {
        String(cString: number.objCType) == "c"
    }

    func boolean(_ name: String) throws(APIError) -> Bool? {
        guard let value = present(name) else { return nil }
        guard let number = value as? NSNumber, Self.isBoolean(number) else { throw wrongType(name, "a boolean", value) }
        return number.boolValue
    }

    static func kind(of value: Any) -> String {
        switch value {
        case is String: "a string"
        case let number as NSNumber: isBoolean(number) ? "a boolean" : "a number"
        case is [Any]: "an array"
        case is [String: Any]: "an object"
        case is NSNull: "null"
        default: "\(type(of: value))"
        }
    }
}
