public import Conveyor
import Foundation
public import Hummingbird
import Metrics
public import Prometheus
import RedisClient

/// What `/metrics` answers, in the Prometheus text format: this process's own metrics (the swift-metrics counters
/// and timers of its workers and enqueues, through swift-prometheus) and the state of Redis read at scrape time
/// (jobs by queue and status, each queue's counters, workers, the leader, Redis's round-trip time).
///
/// The Redis part is the same whichever process is scraped: aggregate it with `max` across instances, not `sum`.
/// The process part is this process's alone: `sum` it.
public struct PrometheusExporter: Sendable {
    /// The registry of this process's swift-metrics handles.
    public let registry: PrometheusCollectorRegistry
    let jobs: JobQueue
    let queues: [String]?

    /// The counters every queue keeps in Redis (its `stats` hash), exported as `conveyor_queue_<name>_total`.
    static let queueCounters = ["enqueued", "started", "completed", "failed", "retried", "stalled", "cancelled"]

    /// Creates an exporter.
    ///
    /// - Parameters:
    ///   - jobs: Where to read the Redis part.
    ///   - registry: The registry that swift-metrics writes to (see ``bootstrapMetricsSystem()``).
    ///   - queues: The queues to read; `nil` reads every queue Redis knows.
    public init(jobs: JobQueue, registry: PrometheusCollectorRegistry, queues: [String]? = nil) {
        self.jobs = jobs
        self.registry = registry
        self.queues = queues
    }

    /// Makes swift-prometheus this process's swift-metrics backend and returns its registry. Call it once per process,
    /// before any metric is made (swift-metrics allows one bootstrap).
    public static func bootstrapMetricsSystem() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5),
            .seconds(10), .seconds(30), .seconds(60), .seconds(300),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }

    /// The whole text: this process's metrics, then Redis's.
    public func render() async -> String {
        var text = registry.emitToString()
        text += await redisSection()
        return text
    }

    /// Adds `GET path` (default `/metrics`) to a router.
    public func addRoute<Context: RequestContext>(to router: Router<Context>, path: String = "/metrics") {
        router.get(RouterPath(path)) { _, _ in
            let text = await render()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text))
            )
        }
    }

    // MARK: - The Redis part

    func redisSection() async -> String {
        var out = PrometheusText()
        let clock = ContinuousClock()
        let began = clock.now
        let reachable = (try? await jobs.redis.send("PING")) != nil
        let roundTrip = clock.now - began
        out.family("conveyor_redis_up", .gauge, "1 when Redis answered this scrape, 0 when not.")
        out.sample("conveyor_redis_up", [], reachable ? 1 : 0)
        guard reachable else { return out.text }
        out.family("conveyor_redis_roundtrip_seconds", .gauge, "The time a PING to Redis took during this scrape.")
        out.sample("conveyor_redis_roundtrip_seconds", [], Self.seconds(roundTrip))

        async let workers = try? jobs.workers()
        async let leader = readLeader()
        let names: [String]
        if let queues {
            names = queues
        } else {
            names = (try? await jobs.queues()) ?? []
        }
        let summaries = (try? await QueueSummary.read(names, from: jobs)) ?? []

        out.family("conveyor_queue_jobs", .gauge, "Jobs in Redis by queue and status.")
        for summary in summaries {
            for status in JobStatus.allCases {
                out.sample(
                    "conveyor_queue_jobs",
                    [("queue", summary.name), ("status", status.rawValue)],
                    Double(summary.counts[status.rawValue] ?? 0)
                )
            }
        }
        for counter in Self.queueCounters {
            let name = "conveyor_queue_\(counter)_total"
            out.family(name, .counter, "Jobs \(counter) in the queue since it was made (its stats hash in Redis).")
            for summary in summaries {
                out.sample(name, [("queue", summary.name)], Double(summary.stats[counter] ?? 0))
            }
        }
        out.family("conveyor_queue_paused", .gauge, "1 when the queue is paused.")
        for summary in summaries {
            out.sample("conveyor_queue_paused", [("queue", summary.name)], summary.paused ? 1 : 0)
        }
        out.family("conveyor_queue_latency_seconds", .gauge, "The age of the queue's oldest pending job.")
        for summary in summaries {
            out.sample(
                "conveyor_queue_latency_seconds",
                [("queue", summary.name)],
                Double(summary.latencyMilliseconds) / 1000
            )
        }

        if let workers = await workers {
            out.family("conveyor_workers", .gauge, "Live worker processes (records with a recent heartbeat).")
            out.sample("conveyor_workers", [], Double(workers.count))
            out.family("conveyor_worker_slots", .gauge, "Job slots (concurrency) of the live workers.")
            out.sample("conveyor_worker_slots", [], Double(workers.reduce(0) { $0 + $1.concurrency }))
            out.family("conveyor_worker_running_jobs", .gauge, "Jobs the live workers are running.")
            out.sample("conveyor_worker_running_jobs", [], Double(workers.reduce(0) { $0 + $1.inFlight.count }))
        }
        if case .success(let leader) = await leader {
            out.family("conveyor_leader", .gauge, "1 when a scheduler holds the leader lease.")
            out.sample("conveyor_leader", [], leader == nil ? 0 : 1)
            if let leader {
                out.family("conveyor_leader_info", .gauge, "The scheduler that leads, and its fencing epoch.")
                out.sample("conveyor_leader_info", [("node", leader.node), ("epoch", String(leader.epoch))], 1)
            }
        }
        return out.text
    }

    /// The leader, `nil` when none leads, or a failure (told apart from none).
    private func readLeader() async -> Result<LeaderInfo?, any Error> {
        do {
            return .success(try await jobs.leader())
        } catch {
            return .failure(error)
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

/// Prometheus text exposition, written by hand for values read at scrape time (a registry's counters can only be
/// incremented, and a queue that disappears must disappear from the output).
struct PrometheusText {
    enum Kind: String {
        case gauge, counter
    }

    private(set) var text = ""

    mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
    }

    mutating func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
        text += name
        if !labels.isEmpty {
            text += "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
        }
        text += " " + (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)) + "\n"
    }

    /// A label value with `\`, `"` and line feeds escaped, as the format requires.
    static func escape(_ value: String) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
