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
        #expect(try next("0 0 30 2 *", after: "2026-01-01T00:00:00Z", "UTC") == nil)
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

    @Test func berlinFallBackFiresTheRepeatedHourOnce() throws {
        // 2026-10-25: 03:00 CEST becomes 02:00 CET; 02:30 happens at 00:30 UTC and again at 01:30 UTC.
        #expect(
            try series("30 2 * * *", after: "2026-10-24T23:00:00+02:00", "Europe/Berlin", count: 2)
                == ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"]
        )
        #expect(
            try series("0 * * * *", after: "2026-10-25T00:30:00+02:00", "Europe/Berlin", count: 4)
                == ["2026-10-24T23:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", "2026-10-25T03:00:00Z"]
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
