import Foundation

/// Checks JSON given on the command line before anything is sent, so an error can say where the text breaks.
enum PayloadJSON {
    /// What is wrong with `text` as JSON, with the place it breaks, or `nil` when it is valid.
    static func problem(_ text: String) -> String? {
        let data = Data(text.utf8)
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return nil
        } catch let error as NSError {
            let message = (error.userInfo[NSDebugDescriptionErrorKey] as? String) ?? error.localizedDescription
            var detail = message.trimmingCharacters(in: .punctuationCharacters)
            var place = ""
            if let offset = Self.number(after: "character ", in: detail) {
                // Foundation counts from 0.
                detail = String(detail[..<(detail.range(of: " around")?.lowerBound ?? detail.endIndex)])
                place = " at character \(offset + 1): " + excerpt(text, at: offset)
            } else if detail.contains("end of file") {
                place = ": " + excerpt(text, at: text.count)
            }
            return text.isEmpty ? "it is empty" : detail + place
        }
    }

    /// Up to 20 characters on each side of `offset`, with a marker where it breaks.
    static func excerpt(_ text: String, at offset: Int) -> String {
        let characters = Array(text)
        let position = max(0, min(offset, characters.count))
        let before = String(characters[max(0, position - 20)..<position])
        let after = String(characters[position..<min(characters.count, position + 20)])
        return "\(before)⟨here⟩\(after)"
    }

    /// The number after `label` in a message like "Invalid value around character 8.".
    static func number(after label: String, in message: String) -> Int? {
        guard let range = message.range(of: label) else { return nil }
        return Int(message[range.upperBound...].prefix { $0.isNumber })
    }
}
