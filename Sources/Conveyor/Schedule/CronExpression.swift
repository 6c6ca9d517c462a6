public import Foundation

/// A cron expression: 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), or a macro
/// (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`), evaluated in a time zone.
///
/// Fields take `*`, numbers, ranges `a-b`, lists `a,b`, steps `*/n`, `a-b/n` and `a/n`, and names of months
/// (`JAN`…`DEC`) and weekdays (`SUN`…`SAT`; `0` and `7` are both Sunday). As in Vixie cron, when both the day of the
/// month and the day of the week are restricted, a day matches if either does.
///
/// Daylight saving time, as Vixie cron handles it. A rule whose hour or minute field (or seconds field, when given) is
/// a wildcard or a step (`*`, `*/30`, `0-30/10`, …) follows elapsed time: it fires in both passes through an hour a
/// fall-back repeats, and a time a spring-forward skips does not exist for it. A rule with fixed times (`30 1 * * *`,
/// `0 9,17 * * *`) follows the wall clock: a repeated local time fires at its first occurrence only, and a local time
/// skipped by a spring-forward fires once at the first instant after the gap (however many skipped times fall in it).
///
/// A rule that can never fire, such as `0 0 30 2 *`, is refused.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    /// The expression as given.
    public let source: String
    // Bit n is set when value n matches.
    let seconds: UInt64
    let minutes: UInt64
    let hours: UInt64
    let daysOfMonth: UInt64
    let months: UInt64
    /// Sunday is 0.
    let daysOfWeek: UInt64
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool
    /// Whether the seconds, minute or hour field is a wildcard or a step: see the type's discussion of daylight
    /// saving time.
    let followsElapsedTime: Bool

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
        let timeFields = fields.count == 6 ? fields[0...2] : fields[0...1]
        if fields.count == 5 { fields.insert("0", at: 0) }
        seconds = Self.mask(try Self.parse(fields[0], "second", 0...59, names: [], expression))
        minutes = Self.mask(try Self.parse(fields[1], "minute", 0...59, names: [], expression))
        hours = Self.mask(try Self.parse(fields[2], "hour", 0...23, names: [], expression))
        let days = try Self.parse(fields[3], "day of month", 1...31, names: [], expression)
        daysOfMonth = Self.mask(days)
        let monthNumbers = try Self.parse(
            fields[4],
            "month",
            1...12,
            names: Self.monthNames,
            expression,
            namesStartAt: 1
        )
        months = Self.mask(monthNumbers)
        let weekdays = try Self.parse(fields[5], "day of week", 0...7, names: Self.dayNames, expression)
        daysOfWeek = Self.mask(Set(weekdays.map { $0 % 7 }))
        dayOfMonthRestricted = !(fields[3] == "*" || fields[3] == "?")
        dayOfWeekRestricted = !(fields[5] == "*" || fields[5] == "?")
        followsElapsedTime = timeFields.contains { $0.contains("*") || $0.contains("?") || $0.contains("/") }
        // Only the day of month restricted (with both, a weekday also matches): it must exist in a chosen month.
        let longestMonths = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        if dayOfMonthRestricted && !dayOfWeekRestricted,
            let firstDay = days.min(),
            !monthNumbers.contains(where: { firstDay <= longestMonths[$0] })
        {
            let names = monthNumbers.sorted().map { Self.monthFullNames[$0 - 1] }
            let which =
                names.count == 1
                ? "\(names[0]) has" : "\(names.dropLast().joined(separator: ", ")) and \(names.last ?? "") have"
            throw Self.invalid(
                expression,
                "it can never fire: \(which) no day \(fields[3]); use a day of month that exists in the month "
                    + "(February has 29 days at most; April, June, September and November have 30)"
            )
        }
    }

    private static let monthFullNames = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
        "December",
    ]

    private static func mask(_ values: Set<Int>) -> UInt64 {
        values.reduce(0) { $0 | (1 << UInt64($1)) }
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

    private func dayMatches(day: Int64, weekday: Int64) -> Bool {
        let byMonthDay = daysOfMonth & (1 << UInt64(day)) != 0
        let byWeekday = daysOfWeek & (1 << UInt64(weekday)) != 0
        if dayOfMonthRestricted && dayOfWeekRestricted { return byMonthDay || byWeekday }
        return byMonthDay && byWeekday
    }

    /// The first time strictly after `date` at which the expression fires, in `timeZone`.
    ///
    /// The search goes field by field (month, day, hour, minute, second) through each stretch of time with one UTC
    /// offset, so it costs microseconds whatever the rule.
    ///
    /// - Parameters:
    ///   - date: The time after which to look.
    ///   - timeZone: The time zone the fields are read in.
    /// - Returns: The next fire time, or `nil` when there is none within ten years (a rule that can never fire is
    ///   refused when it is parsed).
    public func nextFire(after date: Date, in timeZone: TimeZone) -> Date? {
        // Fire times are whole seconds: the first candidate is the whole second after `date`.
        var instant = Int64(date.timeIntervalSince1970.rounded(.down)) + 1
        let horizon = instant + 10 * 366 * 86_400
        while instant < horizon {
            let offset = Self.offset(timeZone, at: instant)
            let transition = timeZone.nextDaylightSavingTimeTransition(after: Self.date(instant)).map {
                Int64($0.timeIntervalSince1970.rounded())
            }
            let end = min(transition ?? horizon, horizon)
            var from = instant + offset
            if !followsElapsedTime, let repeatedUntil = Self.endOfRepeatedTime(timeZone, at: instant) {
                // A fixed time already fired in the first pass through a repeated (fall-back) hour.
                from = max(from, repeatedUntil)
            }
            if let local = nextLocalMatch(from: from, before: end + offset) {
                return Self.date(local - offset)
            }
            guard let transition, transition < horizon else { return nil }
            let newOffset = Self.offset(timeZone, at: transition)
            // A spring-forward skips the local times from the old offset to the new one: a fixed time among them
            // fires once, at the first instant after the gap. A wildcard or step rule only fires at times that exist.
            if newOffset > offset, !followsElapsedTime,
                nextLocalMatch(from: transition + offset, before: transition + newOffset) != nil
            {
                return Self.date(transition)
            }
            instant = transition
        }
        return nil
    }

    private static func date(_ seconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(seconds))
    }

    private static func offset(_ timeZone: TimeZone, at seconds: Int64) -> Int64 {
        Int64(timeZone.secondsFromGMT(for: date(seconds)))
    }

    /// When `instant` falls in the second pass through local times that a fall-back repeats, the local time (in
    /// seconds since 1970, as if the local time were UTC) at which the repetition ends; otherwise `nil`.
    private static func endOfRepeatedTime(_ timeZone: TimeZone, at instant: Int64) -> Int64? {
        // Fall-backs are at most two hours and never closer together than three: look three hours back.
        let before = instant - 3 * 3600
        let earlierOffset = offset(timeZone, at: before)
        let offsetNow = offset(timeZone, at: instant)
        guard earlierOffset > offsetNow,
            let transition = timeZone.nextDaylightSavingTimeTransition(after: date(before))
        else { return nil }
        let fallBack = Int64(transition.timeIntervalSince1970.rounded())
        // The first pass ended at the fall-back, at local time fallBack + earlierOffset.
        guard instant < fallBack + (earlierOffset - offsetNow) else { return nil }
        return fallBack + earlierOffset
    }

    /// The first local time at or after `from` and before `limit` that the fields match. Local times are counted in
    /// seconds since 1970 as if they were UTC, in the proleptic Gregorian calendar.
    private func nextLocalMatch(from: Int64, before limit: Int64) -> Int64? {
        var day = Self.floorDivide(from, 86_400)
        var secondOfDay = from - day * 86_400
        var (year, month, dayOfMonth) = Self.civil(day)
        func nextDay() {
            day += 1
            secondOfDay = 0
            (year, month, dayOfMonth) = Self.civil(day)
        }
        while day * 86_400 < limit {
            guard months & (1 << UInt64(month)) != 0 else {
                if let later = Self.lowest(months, from: month + 1) {
                    month = later
                } else {
                    year += 1
                    month = Self.lowest(months, from: 1) ?? 1
                }
                day = Self.days(year: year, month: month, day: 1)
                (dayOfMonth, secondOfDay) = (1, 0)
                continue
            }
            guard dayMatches(day: dayOfMonth, weekday: Self.floorModulo(day + 4, 7)) else {
                nextDay()
                continue
            }
            let hour = secondOfDay / 3600
            guard let matchingHour = Self.lowest(hours, from: hour) else {
                nextDay()
                continue
            }
            if matchingHour != hour {
                secondOfDay = matchingHour * 3600
                continue
            }
            let minute = secondOfDay / 60 % 60
            guard let matchingMinute = Self.lowest(minutes, from: minute) else {
                secondOfDay = (hour + 1) * 3600
                if secondOfDay == 86_400 { nextDay() }
                continue
            }
            if matchingMinute != minute {
                secondOfDay = hour * 3600 + matchingMinute * 60
                continue
            }
            guard let matchingSecond = Self.lowest(seconds, from: secondOfDay % 60) else {
                secondOfDay = hour * 3600 + (minute + 1) * 60
                if secondOfDay == 86_400 { nextDay() }
                continue
            }
            let local = day * 86_400 + hour * 3600 + minute * 60 + matchingSecond
            return local < limit ? local : nil
        }
        return nil
    }

    /// The lowest value at or above `from` whose bit is set in `mask`.
    private static func lowest(_ mask: UInt64, from: Int64) -> Int64? {
        guard from < 64 else { return nil }
        let above = mask & (UInt64.max << UInt64(from))
        return above == 0 ? nil : Int64(above.trailingZeroBitCount)
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        value >= 0 ? value / divisor : -((-value + divisor - 1) / divisor)
    }

    private static func floorModulo(_ value: Int64, _ divisor: Int64) -> Int64 {
        value - floorDivide(value, divisor) * divisor
    }

    /// Year, month and day of a day number (days since 1970-01-01), after Howard Hinnant's `civil_from_days`.
    private static func civil(_ days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = floorDivide(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// The day number (days since 1970-01-01) of a date, after Howard Hinnant's `days_from_civil`.
    private static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let marchYear = month <= 2 ? year - 1 : year
        let era = floorDivide(marchYear, 400)
        let yearOfEra = marchYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
