import ConveyorTesting
import Foundation
import RedisClient
import Testing

@testable import Conveyor

@Suite("Strict JSON, as the server's cjson reads it")
struct StrictJSONTests {
    @Test func acceptsJSONAndSaysWhereOtherTextBreaks() {
        for valid in [
            "{}", "[]", "0", "-1.5e+10", #""a\u00e9\n""#, "true", " null ", #"{"a":[1,{"b":false}],"c":"ü"}"#,
        ] {
            #expect(StrictJSON.problem(in: valid) == nil, "\(valid)")
        }
        let cases: [(String, String)] = [
            (#"{"a":1,}"#, #"expected a member name in double quotes at character 8: {"a":1,⟨here⟩}"#),
            ("[1,2,]", "expected a value"),
            ("{a:1}", "expected a member name"),
            ("[01]", "expected ',' or ']'"),
            ("'x'", "expected a value"),
            (#""tab\xhere""#, "unknown escape"),
            ("\"a\u{01}\"", "control character"),
            ("[1,2", "the text ends too early"),
            ("{} {}", "unexpected text after the JSON value"),
            ("", "it is empty"),
            ("NaN", "expected a value"),
            (String(repeating: "[", count: 600) + String(repeating: "]", count: 600), "nested deeper than 512"),
        ]
        for (text, message) in cases {
            let problem = StrictJSON.problem(in: text)
            #expect(
                problem?.describe(in: text).contains(message) == true,
                "\(text): \(problem?.describe(in: text) ?? "no problem found")"
            )
        }
    }

    @Test func aTrailingCommaIsRefusedByEnqueueAndBySchedules() async throws {
        try await withJobQueue { jobs, _ in
            try await expectRejected(jobs, .invalidArgument, mentioning: "at character 8") {
                _ = try await jobs.enqueue("t", json: #"{"a":1,}"#)
            }
            #expect(throws: ConveyorError.self) {
                try Schedule(name: "s", type: "t", payload: #"{"a":1,}"#, rule: .every(.seconds(60)))
            }
        }
    }

    @Test func theServerRefusesAScheduleWhoseJobsCouldNeverBeCreated() async throws {
        try await withJobQueue { jobs, _ in
            _ = try await jobs.upsert(try Schedule(name: "ok", type: "t", rule: .every(.seconds(60))))
            let before = try await datasetDigest(jobs)
            // As another client could send it: a definition whose payload or type conveyor_enqueue would refuse.
            for definition in [
                #"{"name":"bad","type":"t","payload":"{\"a\":1,}","queue":"default","priority":0,"misfire":"skip"}"#,
                #"{"name":"bad","type":"bad type","payload":"{}","queue":"default","priority":0,"misfire":"skip"}"#,
                #"{"name":"bad","type":"t","payload":"{}","queue":"default","priority":500,"misfire":"skip"}"#,
            ] {
                let reply = try await jobs.redis.send(
                    "FCALL",
                    "conveyor_schedule_upsert",
                    "1",
                    "conveyor:{default}",
                    "bad",
                    definition,
                    "0"
                )
                #expect(reply.errorMessage?.hasPrefix("INVALID") == true, "\(reply)")
            }
            #expect(try await datasetDigest(jobs) == before)
        }
    }

    @Test func aScheduleThatCannotFireIsPausedOnceNotRetriedEveryTick() async throws {
        try await withJobQueue { jobs, _ in
            // Written around the functions (an old version, a hand edit): its jobs are refused at every fire.
            let definition =
                #"{"every_ms":1000,"misfire":"skip","name":"broken","payload":"{\"a\":1,}","priority":0,"queue":"default","type":"t"}"#
            _ = try await jobs.redis.pipeline([
                RedisCommand(
                    "HSET",
                    "conveyor:{default}:schedule:broken",
                    "name",
                    "broken",
                    "definition",
                    definition,
                    "next_run_at",
                    "1000"
                ),
                RedisCommand("ZADD", "conveyor:{default}:schedules", "1000", "broken"),
                RedisCommand("SADD", "conveyor:schedules", "default/broken"),
            ])
            #expect(try await jobs.tickSchedules().isEmpty)
            let hash = "conveyor:{default}:schedule:broken"
            #expect(try await jobs.redis.send("HGET", hash, "paused").string == "1")
            #expect(try await jobs.redis.send("ZSCORE", "conveyor:{default}:schedules", "broken").isNull)
            #expect(try await jobs.tickSchedules().isEmpty)
        }
    }
}
