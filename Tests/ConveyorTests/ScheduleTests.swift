import Foundation
import Testing

@testable import Conveyor

@Suite("Schedule")
struct ScheduleTests {
    let start = Date(timeIntervalSince1970: 1_800_000_000)

    @Test func intervalFiresFromItsAnchorWhateverTheTickTime() throws {
        let schedule = try Schedule(name: "every-30s", type: "t", rule: .every(.seconds(30)), start: start)
        #expect(schedule.nextFire(after: start.addingTimeInterval(-100)) == start)
        #expect(schedule.nextFire(after: start) == start.addingTimeInterval(30))
        // A late look (at +47 s) still gives the series' next time, +60 s, not +77 s.
        #expect(schedule.nextFire(after: start.addingTimeInterval(47)) == start.addingTimeInterval(60))
    }

    @Test func cronRespectsStartAndEnd() throws {
        let zone = try Schedule.timeZone("UTC")
        let schedule = try Schedule(
            name: "hourly",
            type: "t",
            rule: .cron(try CronExpression("@hourly"), timeZone: zone),
            start: Date(timeIntervalSince1970: 1_800_000_000),  // 2027-01-15T08:00:00Z
            end: Date(timeIntervalSince1970: 1_800_007_200)
        )
        #expect(
            schedule.nextFire(after: Date(timeIntervalSince1970: 1_700_000_000))
                == Date(timeIntervalSince1970: 1_800_000_000)
        )
        #expect(
            schedule.nextFire(after: Date(timeIntervalSince1970: 1_800_003_600))
                == Date(timeIntervalSince1970: 1_800_007_200)
        )
        #expect(schedule.nextFire(after: Date(timeIntervalSince1970: 1_800_007_200)) == nil)
    }

    @Test func misfirePolicies() throws {
        func make(_ policy: Schedule.MisfirePolicy) throws -> Schedule {
            try Schedule(name: "m", type: "t", rule: .every(.seconds(60)), start: start, misfire: policy)
        }
        // The scheduler was down for ten minutes; the last fire time is 30 s ago (late, not missed).
        let now = start.addingTimeInterval(630)
        let skip = try make(.skip).due(from: start, now: now)
        #expect(skip.fires == [start.addingTimeInterval(600)])
        #expect(skip.next == start.addingTimeInterval(660))
        let once = try make(.runOnce).due(from: start, now: now)
        #expect(once.fires == [start.addingTimeInterval(540), start.addingTimeInterval(600)])
        let each = try make(.runEach(max: 3)).due(from: start, now: now)
        #expect(each.fires == [420, 480, 540, 600].map { start.addingTimeInterval($0) })
        // On time: exactly the one due fire.
        let onTime = try make(.skip).due(from: start, now: start.addingTimeInterval(0.05))
        #expect(onTime.fires == [start] && onTime.next == start.addingTimeInterval(60))
        // Nothing due yet.
        let early = try make(.skip).due(from: start, now: start.addingTimeInterval(-1))
        #expect(early.fires.isEmpty && early.next == start)
    }

    @Test func skipFiresAtMostOnceWhenSeveralTimesAreDue() throws {
        // A scheduler that started 6 s late: six fire times are due, all younger than the 60 s threshold.
        let now = start.addingTimeInterval(5.5)
        let utc = try Schedule.timeZone("UTC")
        for rule in [Schedule.Rule.every(.seconds(1)), .cron(try CronExpression("* * * * * *"), timeZone: utc)] {
            let skip = try Schedule(name: "s", type: "t", rule: rule, start: start).due(from: start, now: now)
            #expect(skip.fires == [start.addingTimeInterval(5)], "\(rule)")
            #expect(skip.next == start.addingTimeInterval(6), "\(rule)")
            // One catch-up fire for all the missed times, besides the on-time one.
            let once = try Schedule(name: "s", type: "t", rule: rule, start: start, misfire: .runOnce)
                .due(from: start, now: now)
            #expect(once.fires == [start.addingTimeInterval(4), start.addingTimeInterval(5)], "\(rule)")
            let each = try Schedule(name: "s", type: "t", rule: rule, start: start, misfire: .runEach(max: 10))
                .due(from: start, now: now)
            #expect(each.fires == (0...5).map { start.addingTimeInterval(Double($0)) }, "\(rule)")
        }
    }

    @Test func skipAfterALongOutageFiresTheCurrentTimeOnlyWhenItIsOnTime() throws {
        let every = try Schedule(name: "s", type: "t", rule: .every(.seconds(1)), start: start)
        // A day of every-second fire times missed (more than the 1000 looked at): the latest, 0.5 s ago, fires.
        let day = every.due(from: start, now: start.addingTimeInterval(86_400.5))
        #expect(day.fires == [start.addingTimeInterval(86_400)])
        #expect(day.next == start.addingTimeInterval(86_401))
        let each = try Schedule(
            name: "s",
            type: "t",
            rule: .every(.seconds(1)),
            start: start,
            misfire: .runEach(max: 2)
        )
        .due(from: start, now: start.addingTimeInterval(86_400.5))
        #expect(each.fires == [86_398, 86_399, 86_400].map { start.addingTimeInterval($0) })
        // An hourly schedule whose latest due time is 10 minutes old: all of it was missed, nothing fires.
        let hourly = try Schedule(name: "h", type: "t", rule: .every(.seconds(3600)), start: start)
        let late = hourly.due(from: start, now: start.addingTimeInterval(3 * 3600 + 600))
        #expect(late.fires.isEmpty)
        #expect(late.next == start.addingTimeInterval(4 * 3600))
    }

    @Test(
        arguments: [
            ("", "schedule name '' must be"),
            ("has space", "must be 1-100"),
        ]
    )
    func badNames(name: String, mentions: String) {
        let error = #expect(throws: ConveyorError.self) {
            try Schedule(name: name, type: "t", rule: .every(.seconds(5)))
        }
        #expect(error?.message.contains(mentions) == true)
    }

    @Test func badDefinitionsSayWhatIsWrong() throws {
        let short = #expect(throws: ConveyorError.self) {
            try Schedule(name: "s", type: "t", rule: .every(.milliseconds(500)))
        }
        #expect(short?.message.contains("below the minimum of 1 second") == true)
        let backwards = #expect(throws: ConveyorError.self) {
            try Schedule(
                name: "s",
                type: "t",
                rule: .every(.seconds(5)),
                start: start,
                end: start.addingTimeInterval(-1)
            )
        }
        #expect(backwards?.message.contains("is not after the start") == true)
        let zone = #expect(throws: ConveyorError.self) { try Schedule.timeZone("Mars/Olympus_Mons") }
        #expect(zone?.message.contains("unknown time zone 'Mars/Olympus_Mons'") == true)
        let payload = #expect(throws: ConveyorError.self) {
            try Schedule(name: "s", type: "t", payload: "{oops", rule: .every(.seconds(5)))
        }
        #expect(payload?.message.contains("not valid JSON") == true)
        let each = #expect(throws: ConveyorError.self) {
            try Schedule(name: "s", type: "t", rule: .every(.seconds(5)), misfire: .runEach(max: 0))
        }
        #expect(each?.message.contains("at least 1") == true)
    }
}
