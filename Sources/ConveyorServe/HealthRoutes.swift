public import Conveyor
import Foundation
public import Hummingbird

/// Liveness and readiness, for Kubernetes probes, load balancers and systemd watchdogs.
///
/// - `GET /health/live`: `200 {"status":"live"}` while the process answers HTTP at all.
/// - `GET /health/ready`: `200 {"status":"ready","library":V}` when Redis answers `FCALL conveyor_version 0` within
///   2 s with this build's library version and the process is not shutting down; otherwise
///   `503 {"status":"unready","reason":…}` naming what is wrong (Redis unreachable or too slow, no library, another
///   library version, shutting down).
public struct HealthRoutes: Sendable {
    let jobs: JobQueue
    let isStopping: @Sendable () -> Bool
    /// How long a readiness probe waits for Redis.
    let timeout: Duration

    /// Creates the routes.
    ///
    /// - Parameters:
    ///   - jobs: Whose Redis to probe.
    ///   - timeout: How long a readiness probe waits for Redis (2 s).
    ///   - isStopping: Whether the process is shutting down (it is then unready, so that traffic and probes move on).
    public init(jobs: JobQueue, timeout: Duration = .seconds(2), isStopping: @escaping @Sendable () -> Bool = { false })
    {
        self.jobs = jobs
        self.timeout = timeout
        self.isStopping = isStopping
    }

    /// Adds `GET /health/live` and `GET /health/ready` to a router.
    public func add<Context: RequestContext>(to router: Router<Context>) {
        router.get("/health/live") { _, _ in APIResponses.json(["status": "live"]) }
        router.get("/health/ready") { _, _ in
            switch await readiness() {
            case .success(let version): APIResponses.json(["status": "ready", "library": version])
            case .failure(let reason):
                APIResponses.json(["status": "unready", "reason": reason.message], status: .serviceUnavailable)
            }
        }
    }

    struct Unready: Error {
        var message: String
    }

    /// Ready with the library's version, or why not.
    func readiness() async -> Result<String, Unready> {
        if isStopping() { return .failure(Unready(message: "shutting down")) }
        let jobs = self.jobs
        let timeout = self.timeout
        let found: Result<String?, Unready> = await withTaskGroup(of: Result<String?, Unready>?.self) { group in
            group.addTask {
                do {
                    return .success(try await jobs.installedLibraryVersion())
                } catch {
                    return .failure(Unready(message: "Redis: \(error)"))
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return Task.isCancelled ? nil : .failure(Unready(message: "Redis did not answer within \(timeout)"))
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first ?? .failure(Unready(message: "no answer"))
        }
        switch found {
        case .failure(let reason): return .failure(reason)
        case .success(nil):
            return .failure(Unready(message: "Redis holds no Conveyor function library: run conveyor install"))
        case .success(let version?) where version != JobQueue.libraryVersion:
            return .failure(
                Unready(
                    message: "Redis holds function library \(version), this build needs \(JobQueue.libraryVersion): "
                        + "run conveyor install from this release"
                )
            )
        case .success(let version?): return .success(version)
        }
    }
}
