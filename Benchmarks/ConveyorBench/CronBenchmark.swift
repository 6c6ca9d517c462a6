import ArgumentParser
import Conveyor
import Foundation

/// `conveyor-bench cron`: the CPU cost of computing a cron expression's next fire time, which the leader does for
/// every fire of every cron schedule. No Redis involved.
struct CronBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cron",
        abstract: "Microseconds per CronExpression.nextFire call, for several rules, late in the day."
    )

    @Option(help: "Timed calls per rule.")
    var calls = 2_000

    /// Rules that cost the most when walked second by second (fine-grained ones late in the day), and rare ones.
    static let rules: [(expression: String, zone: String)] = [
        ("* * * * * *", "UTC"),
        ("* * * * *", "UTC"),
        ("*/30 * * * *", "America/New_York"),
        ("0 3 * * *", "Europe/Berlin"),
        ("0 9 * * MON-FRI", "America/New_York"),
        ("0 0 29 2 *", "UTC"),
    ]

    func run() async throws {
        // 23:59:30 UTC: the end of the day, where a search that starts from midnight has the most to walk.
        let base = Date(timeIntervalSince1970: 1_796_169_570)
        let clock = ContinuousClock()
        var figures: [String: any Sendable] = ["benchmark": "cron", "calls": calls]
        for rule in Self.rules {
            let expression = try CronExpression(rule.expression)
            guard let zone = TimeZone(identifier: rule.zone) else { throw ValidationError("no zone \(rule.zone)") }
            var checksum = 0.0
            // Each call starts from a slightly different time, so nothing can be cached between calls.
            let started = clock.now
            for index in 0..<calls {
                let after = base.addingTimeInterval(Double(index % 20))
                checksum += expression.nextFire(after: after, in: zone)?.timeIntervalSince1970 ?? 0
            }
            let perCall = (clock.now - started).seconds / Double(calls) * 1e6
            let label = "\(rule.expression) (\(rule.zone))"
            print(
                label.padding(toLength: 36, withPad: " ", startingAt: 0) + String(format: "%10.2f µs per call", perCall)
            )
            if checksum == 0 { print("(no fire time found)") }
            figures["us_per_call \(rule.expression) \(rule.zone)"] = rounded(perCall)
        }
        try printJSON(figures)
    }
}
