import Foundation
import RedisClient
import Testing

@testable import Conveyor

@Suite("Embedded Lua")
struct EmbeddedLuaTests {
    /// The repository's `lua/` folder, found from this file's path.
    static let luaFolder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("lua")

    @Test func theBuildEmbedsExactlyTheFilesInLua() throws {
        var onDisk = ["library.lua"]
        let functions = try FileManager.default.contentsOfDirectory(
            atPath: Self.luaFolder.appendingPathComponent("functions").path
        )
        onDisk += functions.filter { $0.hasSuffix(".lua") }.sorted().map { "functions/\($0)" }
        #expect(EmbeddedLua.files.map(\.path) == onDisk, "run deploy/embed-lua.sh after changing lua/")
        for (path, source) in EmbeddedLua.files {
            let disk = try String(contentsOf: Self.luaFolder.appendingPathComponent(path), encoding: .utf8)
            #expect(source == disk, "lua/\(path) differs from the embedded copy: run deploy/embed-lua.sh")
        }
        #expect(ConveyorLibrary.library.source.hasPrefix("#!lua name=conveyor_2\n"))
    }
}
