import ArgumentParser
import Foundation

/// Text read from a file or standard input, which must be UTF-8 (JSON text is, and Redis stores the bytes as given).
enum UTF8Text {
    /// The text of `data`, or a failure naming `source` and the first byte that is not UTF-8.
    static func decode(_ data: Data, from source: String) throws -> String {
        let bytes = [UInt8](data)
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        scan: while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput, .error: break scan
            }
        }
        throw CommandFailure(
            message: "\(source) is not valid UTF-8 text (byte \(offset)); payloads must be UTF-8 JSON",
            exitCode: .validationFailure
        )
    }
}
