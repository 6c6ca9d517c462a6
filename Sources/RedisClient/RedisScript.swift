/// A Lua script run with `EVALSHA`, loaded on demand.
///
/// The SHA-1 is computed locally, so the first call goes straight to `EVALSHA`; when the server answers
/// `NOSCRIPT` (first use, after `SCRIPT FLUSH` or a restart) the call is repeated once with `EVAL`, which also
/// caches the script on the server.
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// The script's SHA-1 in lower-case hex, as `SCRIPT LOAD` returns it.
    public let sha1: String

    /// Creates a script from its Lua source.
    ///
    /// - Parameter source: The Lua code; `KEYS` and `ARGV` are its inputs.
    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(Array(source.utf8))
    }
}

/// A Redis function library (`FUNCTION LOAD`), loaded on demand.
///
/// ``RedisConnection/call(_:in:keys:arguments:)`` uses `FCALL`; when the server does not know the function (first
/// use, `FUNCTION FLUSH`, a restart without persistence) the library is loaded with `FUNCTION LOAD REPLACE` and the
/// call repeated once.
public struct RedisFunctionLibrary: Sendable, Hashable {
    /// The library name, as declared in the source's `#!lua name=…` line.
    public let name: String
    /// The library source, starting with `#!lua name=<name>`.
    public let source: String

    /// Creates a library from its source.
    ///
    /// - Parameters:
    ///   - name: The library name.
    ///   - source: The source, whose first line is `#!lua name=<name>`.
    public init(name: String, source: String) {
        self.name = name
        self.source = source
    }
}

extension RedisConnection {
    /// Runs a Lua script (`EVALSHA`, falling back to `EVAL` on `NOSCRIPT`).
    ///
    /// - Parameters:
    ///   - script: The script.
    ///   - keys: The `KEYS` the script touches.
    ///   - arguments: The `ARGV` values.
    /// - Returns: The script's reply; a Lua `error()` or `redis.error_reply` comes back as ``RedisReply/error(_:)``.
    /// - Throws: ``RedisClientError`` on a transport failure.
    public func evaluate(
        _ script: RedisScript,
        keys: [any RedisArgumentConvertible] = [],
        arguments: [any RedisArgumentConvertible] = []
    ) async throws -> RedisReply {
        let tail: [any RedisArgumentConvertible] = [keys.count] + keys + arguments
        let reply = try await send(RedisCommand("EVALSHA", [script.sha1] + tail))
        if let message = reply.errorMessage, message.hasPrefix("NOSCRIPT") {
            return try await send(RedisCommand("EVAL", [script.source] + tail))
        }
        return reply
    }

    /// Loads (or replaces) a function library with `FUNCTION LOAD REPLACE`.
    ///
    /// - Parameter library: The library.
    /// - Returns: The server's reply: the library name, or an error reply for a library that does not compile.
    /// - Throws: ``RedisClientError`` on a transport failure.
    @discardableResult
    public func load(_ library: RedisFunctionLibrary) async throws -> RedisReply {
        try await send(RedisCommand("FUNCTION", "LOAD", "REPLACE", library.source))
    }

    /// Calls a function of a library (`FCALL`), loading the library first when the server does not have it.
    ///
    /// - Parameters:
    ///   - function: The function name.
    ///   - library: The library that defines it.
    ///   - keys: The keys the function touches.
    ///   - arguments: The other arguments.
    /// - Returns: The function's reply.
    /// - Throws: ``RedisClientError`` on a transport failure.
    public func call(
        _ function: String,
        in library: RedisFunctionLibrary,
        keys: [any RedisArgumentConvertible] = [],
        arguments: [any RedisArgumentConvertible] = []
    ) async throws -> RedisReply {
        let command = RedisCommand("FCALL", [function, keys.count] + keys + arguments)
        let reply = try await send(command)
        if let message = reply.errorMessage, message.contains("Function not found") {
            let loaded = try await load(library)
            if loaded.errorMessage != nil { return loaded }
            return try await send(command)
        }
        return reply
    }
}

extension RedisClient {
    /// Runs a Lua script on a pooled connection (`EVALSHA`, falling back to `EVAL` on `NOSCRIPT`).
    ///
    /// - Parameters:
    ///   - script: The script.
    ///   - keys: The `KEYS` the script touches.
    ///   - arguments: The `ARGV` values.
    /// - Returns: The script's reply.
    /// - Throws: ``RedisClientError`` on a transport failure.
    public func evaluate(
        _ script: RedisScript,
        keys: [any RedisArgumentConvertible] = [],
        arguments: [any RedisArgumentConvertible] = []
    ) async throws -> RedisReply {
        try await withConnection { try await $0.evaluate(script, keys: keys, arguments: arguments) }
    }

    /// Loads (or replaces) a function library on the server.
    ///
    /// - Parameter library: The library.
    /// - Returns: The library name, or an error reply.
    /// - Throws: ``RedisClientError`` on a transport failure.
    @discardableResult
    public func load(_ library: RedisFunctionLibrary) async throws -> RedisReply {
        try await withConnection { try await $0.load(library) }
    }

    /// Calls a library function on a pooled connection, loading the library when the server lacks it.
    ///
    /// - Parameters:
    ///   - function: The function name.
    ///   - library: The library that defines it.
    ///   - keys: The keys the function touches.
    ///   - arguments: The other arguments.
    /// - Returns: The function's reply.
    /// - Throws: ``RedisClientError`` on a transport failure.
    public func call(
        _ function: String,
        in library: RedisFunctionLibrary,
        keys: [any RedisArgumentConvertible] = [],
        arguments: [any RedisArgumentConvertible] = []
    ) async throws -> RedisReply {
        try await withConnection { try await $0.call(function, in: library, keys: keys, arguments: arguments) }
    }
}
