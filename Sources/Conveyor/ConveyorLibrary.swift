import RedisClient

/// Conveyor's Redis function library: `lua/library.lua` followed by `lua/functions/*.lua`, as embedded in the
/// build (see `deploy/embed-lua.sh`).
enum ConveyorLibrary {
    /// The library's name in Redis (`FUNCTION LIST LIBRARYNAME conveyor`).
    static let name = "conveyor"

    /// The library, ready to load with `FUNCTION LOAD REPLACE`.
    static let library = RedisFunctionLibrary(name: name, source: EmbeddedLua.files.map(\.source).joined())
}
