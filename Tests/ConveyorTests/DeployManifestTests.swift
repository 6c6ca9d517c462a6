import Foundation
import Testing

@testable import Conveyor

/// The Kubernetes manifests (deploy/kubernetes) and the Compose file (deploy/compose), checked by
/// Tests/Deploy/check_manifests.py: Kubernetes' schemas (kubernetes-validate, strict), KEDA's ScaledObject
/// structurally, the Compose Specification schema, and the cross-checks (grace periods, probe ports, secrets).
@Suite("Kubernetes manifests and the Compose file", .timeLimit(.minutes(2)))
struct DeployManifestTests {
    static let checker = repositoryRoot.appendingPathComponent("Tests/Deploy/check_manifests.py").path

    /// Runs the checker on `paths` (none: the repository's deploy files) and returns how it ended.
    static func check(_ paths: [String] = []) async throws -> (status: Int32, output: String) {
        let ended = try await ChildProcess().run(
            ["/usr/bin/python3", checker] + paths,
            input: [],
            environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        )
        let output = String(decoding: ended.output, as: UTF8.self) + String(decoding: ended.errorTail, as: UTF8.self)
        return (ended.status, output)
    }

    @Test func theRepositorysManifestsAndComposeFilePass() async throws {
        let result = try await Self.check()
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("check_manifests: ok"), "\(result.output)")
        #expect(result.output.contains("1 Compose file"), "\(result.output)")
    }

    @Test func aBrokenCopyFailsNamingEachProblem() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("manifests-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let kubernetes = folder.appendingPathComponent("kubernetes")
        let compose = folder.appendingPathComponent("compose")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent("deploy/kubernetes"), to: kubernetes)
        try FileManager.default.copyItem(at: repositoryRoot.appendingPathComponent("deploy/compose"), to: compose)

        // The copies pass as they are.
        let clean = try await Self.check([kubernetes.path, compose.path])
        #expect(clean.status == 0, "\(clean.output)")

        func edit(_ file: URL, _ replacements: [(String, String)]) throws {
            var text = try String(contentsOf: file, encoding: .utf8)
            for (old, new) in replacements {
                #expect(text.contains(old), "\(file.lastPathComponent) holds no \(old)")
                text = text.replacingOccurrences(of: old, with: new)
            }
            try Data(text.utf8).write(to: file)
        }
        // A grace period shorter than the worker's --grace, a misspelled field, a Redis URL on the command line, a
        // KEDA trigger on another queue's list, and a Compose stop_grace_period shorter than the grace.
        try edit(
            kubernetes.appendingPathComponent("worker.yaml"),
            [
                ("terminationGracePeriodSeconds: 40", "terminationGracePeriodSeconds: 20"),
                ("readinessProbe:", "readinesProbe:"),
                (
                    "            - --no-scheduler\n",
                    "            - --no-scheduler\n            - --redis\n            - $(REDIS_URL)\n"
                ),
            ]
        )
        try edit(
            kubernetes.appendingPathComponent("keda-scaledobject.yaml"),
            [("conveyor:{emails}:pending", "conveyor:{email}:pending")]
        )
        try edit(compose.appendingPathComponent("compose.yaml"), [("stop_grace_period: 40s", "stop_grace_period: 20s")])

        let broken = try await Self.check([kubernetes.path, compose.path])
        #expect(broken.status == 1, "\(broken.output)")
        for expected in [
            "worker.yaml: Deployment/conveyor-worker: container worker: terminationGracePeriodSeconds (20s) must be more",
            "'readinesProbe' was unexpected",
            "no readinessProbe",
            "--redis on the command line",
            "REDIS_URL on the command line",
            "listName 'conveyor:{email}:pending' is not the pending list of a queue the worker serves",
            "compose.yaml: service worker: stop_grace_period (20s) must be more",
        ] {
            #expect(broken.output.contains(expected), "missing \(expected) in: \(broken.output)")
        }
    }
}
