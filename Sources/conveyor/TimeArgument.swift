import Foundation

/// A point in time on the command line: ISO 8601 with a zone (`2026-12-01T09:00:00Z`, `…+01:00`, fractional
/// seconds allowed) or without one, read in the local time zone (`2026-12-01T09:00:00`, `2026-12-01 09:00`).
enum TimeArgument {
    /// The time `text` names, or `nil` when it is not one of the accepted forms.
    static func parse(_ text: String) -> Date? {
        let zoned = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [
            [.withInternetDateTime], [.withInternetDateTime, .withFractionalSeconds],
        ] {
            zoned.formatOptions = options
            if let date = zoned.date(from: text) { return date }
        }
        // With a zone but without seconds: 2026-12-01T09:00Z, 2026-12-01T09:00+01:00.
        let minutes = DateFormatter()
        minutes.locale = Locale(identifier: "en_US_POSIX")
        minutes.dateFormat = "yyyy-MM-dd'T'HH:mmXXXXX"
        if let date = minutes.date(from: text) { return date }
        let local = DateFormatter()
        local.locale = Locale(identifier: "en_US_POSIX")
        local.timeZone = .current
        for format in [
            "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd HH:mm:ss",
            "yyyy-MM-dd HH:mm", "yyyy-MM-dd",
        ] {
            local.dateFormat = format
            if let date = local.date(from: text) { return date }
        }
        return nil
    }

    /// How an invalid time reads in an error.
    static let expected =
        "an ISO 8601 time like 2026-12-01T09:00:00Z, 2026-12-01T10:00:00+01:00 or 2026-12-01T09:00 (local)"
}
