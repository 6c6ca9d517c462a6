import Foundation
import Testing

@testable import Conveyor

/// The README's code, checked against this build: every ```swift block is type-checked with `swiftc` against the
/// modules the tests were built with, and the Package.swift block is evaluated by SwiftPM.
@Suite("README snippets", .timeLimit(.minutes(2)))
struct ReadmeSnippetTests {
    /// A fenced code block of the README.
    struct Block {
        /// The line of its first line of code (after the fence).
        var line: Int
        var code: String
        var isManifest: Bool { code.hasPrefix("// swift-tools-version") }
    }

    /// What the snippets may use without declaring it, as if from earlier in the reader's program: a job store,
    /// a logger, an `Email` payload and a `mailer`. Anything else a snippet uses it must declare or import.
    static let context = """
        struct Email: Codable, Sendable { var to: String }
        struct Mailer: Sendable { func send(_ email: Email) async throws {} }
        """
    static let parameters = "jobs: JobQueue, logger: Logger, mailer: Mailer"

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    /// The build folder of this test binary (`.build/<triple>/debug`), which holds the modules it was built with.
    static let buildFolder = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent()

    static func swiftBlocks() throws -> [Block] {
        let lines = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
            .components(separatedBy: "\n")
        var blocks: [Block] = []
        var current: Block?
        for (index, line) in lines.enumerated() {
            if var block = current {
                if line == "```" {
                    blocks.append(block)
                    current = nil
                } else {
                    block.code += (block.code.isEmpty ? "" : "\n") + line
                    current = block
                }
            } else if line == "```swift" || line.hasPrefix("```swift ") {
                current = Block(line: index + 2, code: "")
            }
        }
        #expect(current == nil, "an unterminated ```swift block")
        return blocks
    }

    /// One file: the imports of every snippet, the context, then each snippet as the body of its own async
    /// function, with `#sourceLocation` so that errors name README.md and its line.
    static func source(_ blocks: [Block]) -> String {
        var imports: Set<String> = ["import Conveyor", "import Logging"]
        var functions: [String] = []
        for (number, block) in blocks.enumerated() {
            var body: [String] = []
            // An import moves to the top; its line stays, empty, so the line numbers still match.
            for line in block.code.components(separatedBy: "\n") {
                if line.hasPrefix("import ") {
                    imports.insert(line)
                    body.append("")
                } else {
                    body.append(line)
                }
            }
            functions.append(
                """
                func readmeSnippet\(number)(\(parameters)) async throws {
                #sourceLocation(file: "README.md", line: \(block.line))
                \(body.joined(separator: "\n"))
                #sourceLocation()
                }
                """
            )
        }
        return ([imports.sorted().joined(separator: "\n"), context] + functions).joined(separator: "\n\n") + "\n"
    }

    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let ended = try await ChildProcess().run(
            arguments,
            input: [],
            environment: ProcessInfo.processInfo.environment
        )
        return (ended.status, String(decoding: ended.output + ended.errorTail, as: UTF8.self))
    }

    static func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("conveyor-readme-\(UUID())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// Type-checks one Swift file against the modules this test binary was built with (Conveyor, RedisClient,
    /// Logging, …), in `folder`; the status and what swiftc printed.
    static func typecheck(_ source: String, in folder: URL) async throws -> (status: Int32, output: String) {
        let file = folder.appendingPathComponent("Snippets.swift")
        try source.write(to: file, atomically: true, encoding: .utf8)
        let hiredis = try await Self.run(["/usr/bin/env", "pkg-config", "--cflags-only-I", "hiredis"])
        let hiredisIncludes = hiredis.status == 0 ? hiredis.output.split(separator: " ").map(String.init) : []
        var arguments = [
            "/usr/bin/env", "swiftc", "-typecheck", "-parse-as-library", "-swift-version", "6", "-suppress-warnings",
            "-I", Self.buildFolder.appendingPathComponent("Modules").path,
            // Conveyor's and RedisClient's C modules, which their interfaces name.
            "-I", Self.packageRoot.appendingPathComponent("Sources/CHiredis").path,
            "-Xcc",
            "-fmodule-map-file="
                + Self.buildFolder.appendingPathComponent("CConveyorSpawn.build/module.modulemap").path,
            "-Xcc",
            "-fmodule-map-file="
                + Self.buildFolder.appendingPathComponent("CConveyorTLS.build/module.modulemap").path,
            "-module-cache-path", folder.appendingPathComponent("cache").path,
        ]
        for include in hiredisIncludes where include.hasPrefix("-I") {
            arguments += ["-Xcc", include.trimmingCharacters(in: .whitespacesAndNewlines)]
        }
        return try await Self.run(arguments + [file.path])
    }

    @Test func everySwiftSnippetTypeChecksAgainstTheBuiltModules() async throws {
        let blocks = try Self.swiftBlocks().filter { !$0.isManifest }
        // The RedisClient tour, the job store, workers, recurring jobs: a parser that finds none checks nothing.
        #expect(blocks.count >= 4, "found only \(blocks.count) ```swift blocks")
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let checked = try await Self.typecheck(Self.source(blocks), in: folder)
        #expect(checked.status == 0, "README snippets do not compile:\n\(checked.output)")
    }

    @Test func thePackageSnippetNamesThisReleaseAndItsProducts() async throws {
        let manifests = try Self.swiftBlocks().filter(\.isManifest)
        let manifest = try #require(manifests.first, "the README has no Package.swift snippet")
        #expect(manifests.count == 1)
        let folder = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let sources = folder.appendingPathComponent("Sources/MyApp")
        try FileManager.default.createDirectory(at: sources, withIntermediateDirectories: true)
        try "".write(to: sources.appendingPathComponent("main.swift"), atomically: true, encoding: .utf8)
        try manifest.code.write(to: folder.appendingPathComponent("Package.swift"), atomically: true, encoding: .utf8)
        // SwiftPM evaluates the manifest and checks that every product a target uses comes from a declared package.
        let dumped = try await Self.run([
            "/usr/bin/env", "swift", "package", "dump-package", "--package-path", folder.path, "--scratch-path",
            folder.appendingPathComponent(".build").path,
        ])
        try #require(dumped.status == 0, "the README's Package.swift does not load:\n\(dumped.output)")
        let json = try #require(dumped.output.firstIndex(of: "{").map { String(dumped.output[$0...]) })
        let package = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] ?? [:]
        let lowerBounds = (package["dependencies"] as? [[String: Any]] ?? [])
            .flatMap { $0["sourceControl"] as? [[String: Any]] ?? [] }
            .flatMap { ($0["requirement"] as? [String: Any])?["range"] as? [[String: Any]] ?? [] }
            .compactMap { $0["lowerBound"] as? String }
        #expect(lowerBounds == [ConveyorVersion.current], "not from: \"\(ConveyorVersion.current)\": \(lowerBounds)")
        // This package's library products, from its own manifest.
        let ours = try String(contentsOf: Self.packageRoot.appendingPathComponent("Package.swift"), encoding: .utf8)
        let libraries = Set(
            ours.components(separatedBy: ".library(name: \"").dropFirst().compactMap { $0.split(separator: "\"").first }
                .map(String.init)
        )
        #expect(libraries.contains("Conveyor"))
        let used = Set(
            (package["targets"] as? [[String: Any]] ?? []).flatMap { $0["dependencies"] as? [[String: Any]] ?? [] }
                .compactMap { ($0["product"] as? [Any])?.first as? String }
        )
        #expect(!used.isEmpty, "the snippet's target uses no product")
        #expect(used.isSubset(of: libraries), "Conveyor has no library product \(used.subtracting(libraries).sorted())")
    }
}
