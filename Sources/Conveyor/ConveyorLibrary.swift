import RedisClient

/// Conveyor's Redis function library: `lua/library.lua` followed by `lua/functions/*.lua`, as embedded in the
/// build (see `deploy/embed-lua.sh`).
enum ConveyorLibrary {
    /// The library's name in Redis (`FUNCTION LIST LIBRARYNAME conveyor`).
    static let name = "conveyor"

    /// The library, ready to load with `FUNCTION LOAD REPLACE`.
    static let library = RedisFunctionLibrary(name: name, source: EmbeddedLua.files.map(\.source).joined())

    /// The library's version, as `conveyor_version` answers it: the first 16 hex digits of the SHA-1 of every
    /// other file of the library in load order, written into `lua/functions/version.lua` by `deploy/embed-lua.sh`.
    static let version: String = {
        let file = EmbeddedLua.files.first { $0.path == "functions/version.lua" }?.source ?? ""
        let match = file.firstMatch(of: #/LIBRARY_VERSION = '([0-9a-f]+)'/#)
        return match.map { String($0.output.1) } ?? "missing"
    }()
}
