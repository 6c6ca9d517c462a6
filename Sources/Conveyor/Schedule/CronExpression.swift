public import Foundation

/// A cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), or a macro
/// (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`), evaluated in a time zone.
///
/// Fields take `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n`, `a-b/n` and `a/n`, and names of months
/// (`JAN`…`DEC`) and weekdays (`SUN`…`SAT`; `0` and `7` are both Sunday). As in Vixie cron, when both the day of the
/// month and the day of the week are restricted, a day matches if either does.
///
/// Daylight saving time: a local time skipped by a spring-forward gap fires at the first valid instant after the gap
/// (once, however many skipped times fall in it); a local time repeated by a fall-back fires at its first
/// occurrence only.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The expression as given.
    public let source: String
    let seconds: Set<Int>
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public var description: String { source }

    private static let macros: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
        "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    private static let monthNames = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ]
    private static let dayNames = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]

    /// Parses a cron expression.
    ///
    /// - Parameter expression: 5 or 6 fields, or a macro.
    /// - Throws: ``ConveyorError`` with code ``ConveyorError/Code/invalidArgument`` naming the field and what is
    ///   wrong with it.
    public init(_ expression: String) throws {
        source = expression
        let trimmed = expression.trimmingCharacters(in: .whitespaces)
        let text = Self.macros[trimmed.lowercased()] ?? trimmed
        if text.hasPrefix("@") {
            throw Self.invalid(
                expression,
                "unknown macro \(trimmed); use @yearly, @monthly, @weekly, @daily or @hourly"
            )
        }
        var fields = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard fields.count == 5 || fields.count == 6 else {
            throw Self.invalid(
                expression,
                "it has \(fields.count) fields; give 5 (minute hour day-of-month month day-of-week) or 6 (seconds first)"
            )
        }
        if fields.count == 5 { fields.insert("0", at: 0) }
        seconds = try Self.parse(fields[0], "second", 0...59, names: [], expression)
        minutes = try Self.parse(fields[1], "minute", 0...59, names: [], expression)
        hours = try Self.parse(fields[2], "hour", 0...23, names: [], expression)
        daysOfMonth = try Self.parse(fields[3], "day of month", 1...31, names: [], expression)
        months = try Self.parse(fields[4], "month", 1...12, names: Self.monthNames, expression, namesStartAt: 1)
        let weekdays = try Self.parse(fields[5], "day of week", 0...7, names: Self.dayNames, expression)
        daysOfWeek = Set(weekdays.map { $0 % 7 })
        dayOfMonthRestricted = !(fields[3] == "*" || fields[3] == "?")
        dayOfWeekRestricted = !(fields[5] == "*" || fields[5] == "?")
    }

    private static func invalid(_ expression: String, _ reason: String) -> ConveyorError {
        ConveyorError(.invalidArgument, "invalid cron expression '\(expression)': \(reason)")
    }

    private static func parse(
        _ field: String,
        _ name: String,
        _ range: ClosedRange<Int>,
        names: [String],
        _ expression: String,
        namesStartAt: Int = 0
    ) throws -> Set<Int> {
        func value(_ text: String) throws -> Int {
            if let index = names.firstIndex(of: text.uppercased()) { return index + namesStartAt }
            guard let number = Int(text) else {
                throw invalid(
                    expression,
                    "the \(name) field has '\(text)', which is not a number" + (names.isEmpty ? "" : " or a name")
                )
            }
            guard range.contains(number) else {
                throw invalid(
                    expression,
                    "the \(name) \(number) is out of range \(range.lowerBound)-\(range.upperBound)"
                )
            }
            return number
        }
        var result: Set<Int> = []
        for part in field.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !part.isEmpty else { throw invalid(expression, "the \(name) field has an empty list item") }
            let stepParts = part.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard stepParts.count <= 2 else {
                throw invalid(expression, "the \(name) field has two steps in '\(part)'")
            }
            var step = 1
            if stepParts.count == 2 {
                guard let given = Int(stepParts[1]), given >= 1 else {
                    throw invalid(expression, "the \(name) step in '\(part)' must be a whole number from 1")
                }
                guard given <= range.upperBound - range.lowerBound + 1 else {
                    throw invalid(expression, "the \(name) step \(given) is larger than the field's range")
                }
                step = given
            }
            let base = stepParts[0]
            let lower: Int
            let upper: Int
            if base == "*" || base == "?" {
                (lower, upper) = (range.lowerBound, range.upperBound)
            } else if let dash = base.firstIndex(of: "-"), dash != base.startIndex {
                lower = try value(String(base[..<dash]))
                upper = try value(String(base[base.index(after: dash)...]))
                guard lower <= upper else {
                    throw invalid(expression, "the \(name) range \(base) goes backwards")
                }
            } else {
                lower = try value(base)
                upper = stepParts.count == 2 ? range.upperBound : lower
            }
            result.formUnion(stride(from: lower, through: upper, by: step))
        }
        return result
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        let byMonthDay = daysOfMonth.contains(day)
        let byWeekday = daysOfWeek.contains(weekday)
        if dayOfMonthRestricted && dayOfWeekRestricted { return byMonthDay || byWeekday }
        return byMonthDay && byWeekday
    }

    /// The first time strictly after `date` at which the expression fires, in `timeZone`.
    ///
    /// - Parameters:
    ///   - date: The time after which to look.
    ///   - timeZone: The time zone the fields are read in.
    /// - Returns: The next fire time, or `nil` when there is none within 10 years (for example `0 0 30 2 *`).
    public func nextFire(after date: Date, in timeZone: TimeZone) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let sortedHours = hours.sorted()
        let sortedMinutes = minutes.sorted()
        let sortedSeconds = seconds.sorted()
        let start = calendar.dateComponents([.year, .month, .day], from: date)
        guard
            var day = calendar.date(
                from: DateComponents(year: start.year, month: start.month, day: start.day, hour: 12)
            )
        else { return nil }
        for _ in 0..<(366 * 10) {
            let parts = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            if let year = parts.year, let month = parts.month, let dayOfMonth = parts.day, let weekday = parts.weekday,
                months.contains(month), dayMatches(day: dayOfMonth, weekday: weekday - 1)
            {
                for hour in sortedHours {
                    for minute in sortedMinutes {
                        for second in sortedSeconds {
                            let wanted = DateComponents(
                                year: year,
                                month: month,
                                day: dayOfMonth,
                                hour: hour,
                                minute: minute,
                                second: second
                            )
                            if let fire = instant(of: wanted, calendar: calendar, timeZone: timeZone), fire > date {
                                return fire
                            }
                        }
                    }
                }
            }
            guard let next = calendar.date(byAdding: .day, value: 1, to: day) else { return nil }
            day = next
        }
        return nil
    }

    /// The instant a local time names: its first occurrence when a fall-back repeats it, and the end of the gap when
    /// a spring-forward skips it.
    private func instant(of wanted: DateComponents, calendar: Calendar, timeZone: TimeZone) -> Date? {
        guard let guess = calendar.date(from: wanted) else { return nil }
        let fields: Set<Calendar.Component> = [.year, .month, .day, .hour, .minute, .second]
        let got = calendar.dateComponents(fields, from: guess)
        let matches = { (components: DateComponents) in
            components.year == wanted.year && components.month == wanted.month && components.day == wanted.day
                && components.hour == wanted.hour && components.minute == wanted.minute
                && components.second == wanted.second
        }
        if matches(got) {
            // The earliest instant with this local time (an hour or half an hour earlier in a repeated hour).
            var earliest = guess
            for shift in [3600.0, 2700, 1800, 900] {
                let earlier = guess.addingTimeInterval(-shift)
                if matches(calendar.dateComponents(fields, from: earlier)) { earliest = min(earliest, earlier) }
            }
            return earliest
        }
        // Skipped by a spring-forward: the first valid instant after the gap is the transition itself.
        let dayStart = calendar.startOfDay(for: guess.addingTimeInterval(-6 * 3600))
        guard let transition = timeZone.nextDaylightSavingTimeTransition(after: dayStart) else { return guess }
        return transition
    }
}
