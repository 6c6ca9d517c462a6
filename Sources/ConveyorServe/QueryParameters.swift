import Hummingbird

/// The query string of a request, read strictly: a bad value is a `400 invalidArgument` naming the parameter.
struct QueryParameters {
    let request: Request

    func string(_ name: String) -> String? {
        request.uri.queryParameters[Substring(name)].map(String.init)
    }

    func strings(_ name: String) -> [String] {
        request.uri.queryParameters[values: Substring(name)].map(String.init)
    }

    func integer(_ name: String, in range: ClosedRange<Int>, default value: Int) throws(APIError) -> Int {
        guard let text = string(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.invalid(
                "query parameter '\(name)' must be an integer from \(range.lowerBound) to \(range.upperBound), "
                    + "got '\(text)'"
            )
        }
        return number
    }

    func boolean(_ name: String) throws(APIError) -> Bool {
        switch string(name) {
        case nil, "false", "0": return false
        case "true", "1", "": return true
        case let text?: throw APIError.invalid("query parameter '\(name)' must be true or false, got '\(text)'")
        }
    }

    func choice<Value>(_ name: String, _ choices: [String: Value]) throws(APIError) -> Value? {
        guard let text = string(name) else { return nil }
        guard let value = choices[text] else {
            throw APIError.invalid(
                "query parameter '\(name)' must be one of \(choices.keys.sorted().joined(separator: ", ")), got '\(text)'"
            )
        }
        return value
    }
}
