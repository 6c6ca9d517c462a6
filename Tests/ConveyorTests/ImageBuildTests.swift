import ConveyorTesting
import Foundation
import LocalRedis
import Testing

@testable import Conveyor

/// Issue 15: Docker cannot build here, so the steps of `deploy/docker/Dockerfile`'s build stage
/// (`deploy/docker/build.sh`) run in a clean copy of the sources, and the binary they produce runs. The test command
/// runs this suite on its own, after the others: a build from nothing keeps both cores busy for minutes.
@Suite("deploy/docker: the image's build steps", .timeLimit(.minutes(30)))
struct ImageBuildTests {
    @Test func theBuildScriptWorksInACleanFolderAndItsBinaryRunsAWorker() async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("image-\(UUID().uuidString)")
        let sources = scratch.appendingPathComponent("src")
        let output = scratch.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: sources, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        // What `COPY . .` copies: the checkout's files, without its build folders (.dockerignore-like: what git
        // ignores).
        let root = repositoryRoot.path
        let copy = try await ChildProcess().run(
            [
                "/bin/sh", "-c",
                #"cd "$0" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - | tar -xf - -C "$1""#, root,
                sources.path,
            ],
            input: [],
            environment: ProcessInfo.processInfo.environment
        )
        #expect(copy.status == 0, "\(String(decoding: copy.errorTail, as: UTF8.self))")
        #expect(!FileManager.default.fileExists(atPath: sources.appendingPathComponent(".build").path))

        let build = try await ChildProcess().run(
            [
                "/bin/bash", sources.appendingPathComponent("deploy/docker/build.sh").path, sources.path, output.path,
                "debug",
            ],
            input: [],
            environment: ProcessInfo.processInfo.environment,
            outputLimit: 64 << 20
        )
        let log = String(decoding: build.output.suffix(3000) + build.errorTail, as: UTF8.self)
        try #require(build.status == 0, "build.sh failed:\n\(log)")
        let binary = output.appendingPathComponent("usr/local/bin/conveyor").path
        #expect(FileManager.default.isExecutableFile(atPath: binary))
        #expect(
            FileManager.default.isExecutableFile(
                atPath: output.appendingPathComponent("opt/conveyor/handlers/send_email.sh").path
            )
        )

        // Every shared library the binary loads belongs to a package the runtime stage installs, or to Debian's
        // slim base image (libc6, libgcc-s1, libstdc++6), and those packages exist in bookworm.
        let dockerfile = try String(
            contentsOf: repositoryRoot.appendingPathComponent("deploy/docker/Dockerfile"),
            encoding: .utf8
        )
        let installs = dockerfile.matches(of: #/apt-get install -y --no-install-recommends ([a-z0-9.+\- ]+)/#)
        let runtime = try #require(installs.last).output.1.split(separator: " ").map(String.init)
        #expect(runtime.contains("libhiredis0.14") && runtime.contains("libssl3"), "\(runtime)")
        _ = try await runTool(["apt-cache", "show", "--no-all-versions"] + runtime)
        let libraries = try await runTool(["ldd", binary]).split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: " ")
            guard let arrow = parts.firstIndex(of: "=>"), arrow + 1 < parts.count else { return nil }
            return String(parts[arrow + 1])
        }
        #expect(libraries.count >= 5, "\(libraries)")
        for library in libraries {
            // By file name: with merged /usr, dpkg knows some under /lib and others under /usr/lib.
            let name = library.split(separator: "/").last.map(String.init) ?? library
            let owner =
                try await runTool(["dpkg", "-S", "*/\(name)"]).split(separator: ":").first.map(String.init) ?? ""
            #expect(
                (runtime + ["libc6", "libgcc-s1", "libstdc++6"]).contains(owner),
                "\(library) comes from \(owner), which the runtime image lacks"
            )
        }

        let version = try await ChildProcess().run([binary, "--version"], input: [], environment: [:])
        #expect(String(decoding: version.output, as: UTF8.self).contains(ConveyorVersion.current))

        // The binary, as the image runs it: a worker with the image's example handler, against a test Redis.
        try await withJobQueue { jobs, server in
            let handler = output.appendingPathComponent("opt/conveyor/handlers/send_email.sh").path
            let worker = ConveyorProcess(
                ["worker", "--queue", "img", "--exec", "send_email=\(handler)", "--metrics-port", "0"],
                environment: ["REDIS_URL": "redis://127.0.0.1:\(server.port)"],
                executable: binary
            )
            try await worker.waitFor("/metrics")
            let job = try await jobs.enqueue(
                "send_email",
                payload: ["to": "ops@example.com"],
                options: .init(queue: "img")
            )
            let result = try await jobs.result(of: job.id, timeout: .seconds(30))
            #expect(result.status == .completed, "\(worker.output)")
            #expect(result.result?.contains("ops@example.com") == true)
            try await worker.signal(SIGTERM)
            #expect(try await worker.exit() == 0)
        }
    }
}
