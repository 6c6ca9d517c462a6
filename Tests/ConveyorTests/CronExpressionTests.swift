import Foundation
import Testing

@testable import Conveyor

@Suite("CronExpression")
struct CronExpressionTests {
    let iso: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter
    }()

    /// The next fire time after `after` (an ISO 8601 time with offset), as UTC ISO 8601.
    func next(_ expression: String, after: String, _ zone: String) throws -> String? {
        let cron = try CronExpression(expression)
        let start = try #require(iso.date(from: after))
        let timeZone = try #require(TimeZone(identifier: zone))
        return cron.nextFire(after: start, in: timeZone).map { iso.string(from: $0) }
    }

    /// The first `count` fire times after `after`, as UTC ISO 8601.
    func series(_ expression: String, after: String, _ zone: String, count: Int) throws -> [String] {
        let cron = try CronExpression(expression)
        var time = try #require(iso.date(from: after))
        let timeZone = try #require(TimeZone(identifier: zone))
        var fires: [String] = []
        for _ in 0..<count {
            guard let fire = cron.nextFire(after: time, in: timeZone) else { break }
            fires.append(iso.string(from: fire))
            time = fire
        }
        return fires
    }

    @Test func utcBasics() throws {
        #expect(try next("0 0 * * *", after: "2026-11-29T10:00:00Z", "UTC") == "2026-11-30T00:00:00Z")
        #expect(try next("*/15 * * * *", after: "2026-11-29T10:07:30Z", "UTC") == "2026-11-29T10:15:00Z")
        #expect(try next("@hourly", after: "2026-11-29T10:00:00Z", "UTC") == "2026-11-29T11:00:00Z")
        #expect(try next("@weekly", after: "2026-11-29T10:00:00Z", "UTC") == "2026-12-06T00:00:00Z")
        #expect(try next("@monthly", after: "2026-11-29T10:00:00Z", "UTC") == "2026-12-01T00:00:00Z")
        #expect(try next("@yearly", after: "2026-11-29T10:00:00Z", "UTC") == "2027-01-01T00:00:00Z")
        #expect(
            try series("*/20 * * * * *", after: "2026-11-29T10:00:05Z", "UTC", count: 3)
                == ["2026-11-29T10:00:20Z", "2026-11-29T10:00:40Z", "2026-11-29T10:01:00Z"]
        )
        #expect(try next("0 9 * JAN-MAR MON-FRI", after: "2026-11-29T10:00:00Z", "UTC") == "2027-01-01T09:00:00Z")
        #expect(try next("30 8 * * SUN,sat", after: "2026-11-30T00:00:00Z", "UTC") == "2026-12-05T08:30:00Z")
        #expect(try next("0 12 * * 7", after: "2026-11-30T00:00:00Z", "UTC") == "2026-12-06T12:00:00Z")
        #expect(try next("10-20/5 * * * *", after: "2026-11-29T10:16:00Z", "UTC") == "2026-11-29T10:20:00Z")
        #expect(try next("50/5 * * * *", after: "2026-11-29T10:56:00Z", "UTC") == "2026-11-29T11:50:00Z")
    }

    @Test func leapDayAndShortMonths() throws {
        #expect(try next("0 0 29 2 *", after: "2026-01-01T00:00:00Z", "UTC") == "2028-02-29T00:00:00Z")
        #expect(
            try series("0 0 31 * *", after: "2026-04-01T00:00:00Z", "UTC", count: 3)
                == ["2026-05-31T00:00:00Z", "2026-07-31T00:00:00Z", "2026-08-31T00:00:00Z"]
        )
        #expect(try next("0 0 29 2 *", after: "2096-03-01T00:00:00Z", "UTC") == "2104-02-29T00:00:00Z")
        #expect(try next("59 23 31 12 *", after: "2026-12-31T23:59:00Z", "UTC") == "2027-12-31T23:59:00Z")
    }

    @Test(
        arguments: [
            ("0 0 30 2 *", "February has no day 30"),
            ("0 0 31 4 *", "April has no day 31"),
            ("0 0 31 2,4,6 *", "February, April and June have no day 31"),
            ("0 0 30-31 FEB *", "February has no day 30-31"),
        ]
    )
    func aRuleThatCanNeverFireIsRefused(expression: String, mentions: String) {
        let error = #expect(throws: ConveyorError.self) { try CronExpression(expression) }
        #expect(error?.code == .invalidArgument)
        #expect(
            error?.message.contains("'\(expression)': it can never fire: \(mentions)") == true,
            "\(error?.message ?? "")"
        )
        #expect(error?.message.contains("use a day of month that exists in the month") == true)
    }

    @Test func rulesThatCanFireSomeYearsAreAccepted() throws {
        // The 29th exists in February in leap years; the 31st in some of the months; a weekday also matches.
        for expression in ["0 0 29 2 *", "0 0 31 2,3 *", "0 0 30 2 MON", "0 0 1-31 2 *"] {
            #expect(try next(expression, after: "2026-01-01T00:00:00Z", "UTC") != nil, "\(expression)")
        }
    }

    /// The next fire time by brute force: day after day from `after`, matched with Foundation's calendar, then every
    /// minute of a matching day.
    func bruteForceNext(_ fields: [String], after: Date, withinDays days: Int) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        func matches(_ field: String, _ value: Int, _ range: ClosedRange<Int>) -> Bool {
            field.split(separator: ",").contains { part in
                let pieces = part.split(separator: "/")
                let step = pieces.count == 2 ? Int(pieces[1])! : 1
                let bounds = pieces[0].split(separator: "-").compactMap { Int($0) }
                let all = pieces[0] == "*"
                let lower = all ? range.lowerBound : bounds[0]
                let upper =
                    all
                    ? range.upperBound : bounds.count == 2 ? bounds[1] : pieces.count == 2 ? range.upperBound : lower
                return value >= lower && value <= upper && (value - lower) % step == 0
            }
        }
        var dayStart = calendar.startOfDay(for: after)
        for _ in 0...days {
            let parts = calendar.dateComponents([.day, .month, .weekday], from: dayStart)
            let byMonthDay = matches(fields[2], parts.day!, 1...31)
            let byWeekday = matches(fields[4], parts.weekday! - 1, 0...6)
            let day = fields[2] != "*" && fields[4] != "*" ? byMonthDay || byWeekday : byMonthDay && byWeekday
            if day && matches(fields[3], parts.month!, 1...12) {
                for hour in 0..<24 where matches(fields[1], hour, 0...23) {
                    for minute in 0..<60 where matches(fields[0], minute, 0...59) {
                        let time = dayStart.addingTimeInterval(Double(hour * 3600 + minute * 60))
                        if time > after { return time }
                    }
                }
            }
            dayStart = dayStart.addingTimeInterval(86_400)
        }
        return nil
    }

    @Test(
        arguments: [
            "*/7 * * * *", "5 */3 * * *", "0 9-17 * * 1-5", "15,45 8 1,15 * *", "0 0 * * 0", "59 23 * * *",
            "30 4 * 2,3,6,7,12 *", "0 12 13 * 5", "10-20/5 3,22 * * 6", "0 0 1 * *",
        ]
    )
    func agreesWithABruteForceSearch(expression: String) throws {
        let cron = try CronExpression(expression)
        let utc = try #require(TimeZone(identifier: "UTC"))
        let fields = expression.split(separator: " ").map(String.init)
        // Starts around month ends, a leap day and ordinary times, each followed for several fires.
        for start in ["2027-12-31T23:58:30Z", "2028-02-28T22:00:00Z", "2026-11-29T10:07:30Z", "2027-06-30T23:59:59Z"] {
            var time = try #require(iso.date(from: start))
            for _ in 0..<4 {
                let expected = bruteForceNext(fields, after: time, withinDays: 62)
                let got = cron.nextFire(after: time, in: utc)
                #expect(got == expected, "\(expression) after \(iso.string(from: time))")
                guard let got else { break }
                time = got
            }
        }
    }

    @Test func nextFireTakesMicrosecondsNotASecondBySecondWalk() throws {
        // 23:59:30 UTC: a walk from midnight takes tens of milliseconds per call for a rule with seconds.
        let lateInTheDay = Date(timeIntervalSince1970: 1_796_169_570)
        let utc = try #require(TimeZone(identifier: "UTC"))
        let newYork = try #require(TimeZone(identifier: "America/New_York"))
        let clock = ContinuousClock()
        for (expression, zone) in [("* * * * * *", utc), ("* * * * *", utc), ("*/30 * * * *", newYork)] {
            let cron = try CronExpression(expression)
            let started = clock.now
            for index in 0..<500 {
                _ = cron.nextFire(after: lateInTheDay.addingTimeInterval(Double(index % 20)), in: zone)
            }
            let took = clock.now - started
            // 500 calls: about 1 ms in a release build; a generous bound for a debug build on a busy machine.
            #expect(took < .milliseconds(500), "\(expression): 500 calls took \(took)")
        }
    }

    @Test func dayOfMonthOrDayOfWeekAsInVixieCron() throws {
        // Both restricted: the 15th or a Monday. 2026-11-15 is a Sunday, 2026-11-16 a Monday.
        #expect(
            try series("0 0 15 * 1", after: "2026-11-10T12:00:00Z", "UTC", count: 3)
                == ["2026-11-15T00:00:00Z", "2026-11-16T00:00:00Z", "2026-11-23T00:00:00Z"]
        )
        // One restricted: only that one.
        #expect(try next("0 0 15 * *", after: "2026-11-10T12:00:00Z", "UTC") == "2026-11-15T00:00:00Z")
        #expect(try next("0 0 * * 1", after: "2026-11-10T12:00:00Z", "UTC") == "2026-11-16T00:00:00Z")
    }

    @Test func berlinSpringForwardFiresAtTheEndOfTheGap() throws {
        // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        #expect(
            try series("30 2 * * *", after: "2026-03-28T23:00:00+01:00", "Europe/Berlin", count: 2)
                == ["2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"]
        )
        // Every half hour: 02:00 and 02:30 are skipped and fire once, at 03:00 CEST.
        #expect(
            try series("*/30 * * * *", after: "2026-03-29T01:15:00+01:00", "Europe/Berlin", count: 3)
                == ["2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"]
        )
    }

    @Test func berlinFallBackFiresAFixedTimeOnceAndHourlyRulesInBothPasses() throws {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens at 00:30 UTC and again at 01:30 UTC.
        #expect(
            try series("30 2 * * *", after: "2026-10-24T23:00:00+02:00", "Europe/Berlin", count: 2)
                == ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        )
        // Hourly follows elapsed time: 02:00 CEST (00:00 UTC) and 02:00 CET (01:00 UTC) both fire.
        #expect(
            try series("0 * * * *", after: "2026-10-25T00:30:00+02:00", "Europe/Berlin", count: 4)
                == ["2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"]
        )
    }

    @Test func newYorkFallBackFiresWildcardAndStepRulesInBothRepeatedHours() throws {
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:00-01:59 happens from 05:00 UTC and again from 06:00 UTC.
        #expect(
            try series("0 * * * *", after: "2026-11-01T00:30:00-04:00", "America/New_York", count: 4)
                == ["2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z", "2026-11-01T08:00:00Z"]
        )
        #expect(
            try series("*/30 * * * *", after: "2026-11-01T00:45:00-04:00", "America/New_York", count: 6)
                == [
                    "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-01T06:00:00Z", "2026-11-01T06:30:00Z",
                    "2026-11-01T07:00:00Z", "2026-11-01T07:30:00Z",
                ]
        )
        #expect(
            try series("59 * * * *", after: "2026-11-01T01:00:00-04:00", "America/New_York", count: 2)
                == ["2026-11-01T05:59:00Z", "2026-11-01T06:59:00Z"]
        )
        // A wildcard minute in a fixed hour also follows elapsed time (as in Vixie cron).
        #expect(
            try series("*/20 1 * * *", after: "2026-11-01T00:00:00-04:00", "America/New_York", count: 7)
                == [
                    "2026-11-01T05:00:00Z", "2026-11-01T05:20:00Z", "2026-11-01T05:40:00Z", "2026-11-01T06:00:00Z",
                    "2026-11-01T06:20:00Z", "2026-11-01T06:40:00Z", "2026-11-02T06:00:00Z",
                ]
        )
        // Fixed times fire once, at the first pass, also when looked up from inside the second pass.
        #expect(
            try series("0,30 1 * * *", after: "2026-11-01T00:00:00-04:00", "America/New_York", count: 3)
                == ["2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:00:00Z"]
        )
        #expect(
            try next("30 1 * * *", after: "2026-11-01T01:10:00-05:00", "America/New_York") == "2026-11-02T06:30:00Z"
        )
    }

    @Test func newYorkSpringForwardFiresAFixedTimeOnceRightAfterTheGap() throws {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00 UTC; 02:00-02:59 does not exist.
        #expect(
            try series("30 2 * * *", after: "2026-03-07T12:00:00-05:00", "America/New_York", count: 3)
                == ["2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]
        )
        // Two fixed times in the gap still fire once; a fixed 03:00 on top of it is the same instant.
        #expect(
            try series("0,30 2,3 * * *", after: "2026-03-08T01:59:00-05:00", "America/New_York", count: 3)
                == ["2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:00:00Z"]
        )
        // Rules that follow elapsed time only fire at times that exist.
        #expect(
            try series("*/30 * * * *", after: "2026-03-08T01:15:00-05:00", "America/New_York", count: 3)
                == ["2026-03-08T06:30:00Z", "2026-03-08T07:00:00Z", "2026-03-08T07:30:00Z"]
        )
        #expect(
            try next("*/15 2 * * *", after: "2026-03-08T00:00:00-05:00", "America/New_York") == "2026-03-09T06:00:00Z"
        )
    }

    @Test func newYorkBothTransitions() throws {
        // 2026-03-08: 02:00 EST becomes 03:00 EDT (07:00 UTC).
        #expect(try next("0 2 * * *", after: "2026-03-08T00:00:00-05:00", "America/New_York") == "2026-03-08T07:00:00Z")
        // 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 happens at 05:30 UTC and again at 06:30 UTC.
        #expect(
            try series("30 1 * * *", after: "2026-11-01T00:00:00-04:00", "America/New_York", count: 2)
                == ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        )
    }

    @Test func lordHoweHalfHourTransitions() throws {
        // 2026-10-04: 02:00 (+10:30) becomes 02:30 (+11:00); 02:15 is skipped and fires at 02:30 (15:30 UTC).
        #expect(
            try series("15 2 * * *", after: "2026-10-04T00:00:00+10:30", "Australia/Lord_Howe", count: 2)
                == ["2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"]
        )
        // 2026-04-05: 02:00 (+11:00) becomes 01:30 (+10:30); 01:45 happens twice, fires once (14:45 UTC).
        #expect(
            try series("45 1 * * *", after: "2026-04-05T00:00:00+11:00", "Australia/Lord_Howe", count: 2)
                == ["2026-04-04T14:45:00Z", "2026-04-05T15:15:00Z"]
        )
    }

    @Test(
        arguments: [
            ("* * * *", "4 fields"),
            ("* * * * * * *", "7 fields"),
            ("60 * * * *", "minute 60 is out of range 0-59"),
            ("* 24 * * *", "hour 24 is out of range 0-23"),
            ("* * 0 * *", "day of month 0 is out of range 1-31"),
            ("* * * 13 *", "month 13 is out of range 1-12"),
            ("* * * * 8", "day of week 8 is out of range 0-7"),
            ("*/0 * * * *", "step in '*/0' must be a whole number from 1"),
            ("*/ * * * *", "step in '*/' must be a whole number from 1"),
            ("*/61 * * * *", "step 61 is larger than the field's range"),
            ("5-1 * * * *", "range 5-1 goes backwards"),
            ("1,,2 * * * *", "empty list item"),
            ("MON * * * *", "'MON', which is not a number"),
            ("* * * FOO *", "'FOO', which is not a number or a name"),
            ("@sometimes", "unknown macro @sometimes"),
        ]
    )
    func invalidExpressionsSayWhatIsWrong(expression: String, mentions: String) {
        let error = #expect(throws: ConveyorError.self) { try CronExpression(expression) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains(mentions) == true, "\(error?.message ?? "")")
        #expect(error?.message.contains("'\(expression)'") == true)
    }
}
