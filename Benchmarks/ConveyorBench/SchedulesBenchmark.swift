import ArgumentParser
import Conveyor
import Foundation
import Logging
import RedisClient

/// `conveyor-bench schedules`: one leader ticking many schedules due every second.
struct SchedulesBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedules",
        abstract: "Lateness and CPU of a leader ticking COUNT schedules, all due at the same instants."
    )

    @OptionGroup var server: ServerOptions
    @Option var count = 10_000
    @Option var seconds = 10
    @Option(help: "Seconds between fire times of every schedule.") var every = 1

    func run() async throws {
        try await withBenchmarkQueue(server, name: "schedules", keeping: "sched") { _, _, jobs in
            let start = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.up) + 2)
            for index in 0..<count {
                try await jobs.upsert(
                    try Schedule(
                        name: "s\(index)",
                        type: "noop",
                        queue: "sched",
                        rule: .every(.seconds(every)),
                        start: start,
                        // Every fire time runs, however late, so the lateness of each is measured.
                        misfire: .runEach(max: 100)
                    )
                )
            }
            var logger = Logger(label: "bench")
            logger.logLevel = .warning
            let scheduler = Scheduler(queue: jobs, configuration: .init(lease: .seconds(10)), logger: logger)
            var usageBefore = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usageBefore)
            let clock = ContinuousClock()
            let began = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await scheduler.run() }
                try await Task.sleep(for: .seconds(seconds + 2))
                scheduler.stop()
                try await group.waitForAll()
            }
            let elapsed = (clock.now - began).seconds
            var usageAfter = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usageAfter)
            let cpu = { (usage: rusage) in
                Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
                    + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
            }
            let cores = (cpu(usageAfter) - cpu(usageBefore)) / elapsed
            // Lateness: when each job was created (Redis time) minus its fire time (in its id).
            var lateness: [Duration] = []
            var offset = 0
            while true {
                let page = try await jobs.list(queue: "sched", status: .pending, offset: offset, limit: 1000)
                if page.isEmpty { break }
                offset += page.count
                for job in page {
                    guard let fire = Int(job.id.split(separator: "@").last ?? ""), let created = job.createdAt else {
                        continue
                    }
                    lateness.append(.milliseconds(Int64(created.timeIntervalSince1970 * 1000) - Int64(fire)))
                }
            }
            print("\(count) schedules due every \(every) s, one leader, \(seconds + 2) s: \(lateness.count) jobs fired")
            print(
                String(
                    format: "lateness p50 %.1f ms, p99 %.1f ms; leader CPU %.2f cores",
                    percentile(lateness, 0.5),
                    percentile(lateness, 0.99),
                    cores
                )
            )
            try printJSON([
                "benchmark": "schedules", "schedules": count, "fired": lateness.count, "every_s": every,
                "lateness_p50_ms": rounded(percentile(lateness, 0.5)),
                "lateness_p99_ms": rounded(percentile(lateness, 0.99)),
                "leader_cpu_cores": rounded(cores),
            ])
        }
    }
}
