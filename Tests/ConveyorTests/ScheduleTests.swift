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
