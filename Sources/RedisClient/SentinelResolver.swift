internal import CHiredis
import Foundation

/// Finds the primary of a master group by asking its Sentinels, in turn, `SENTINEL get-master-addr-by-name`.
///
/// Used on a connection's own thread while it connects: every call is a blocking hiredis call with the connect
/// timeout. The Sentinel that answered is asked first next time (as redis-py and Jedis do), so a Sentinel that is down
/// costs a timeout once, not on every reconnect.
struct SentinelResolver {
    private(set) var sentinel: RedisURL.Sentinel
    /// The whole URL: its TLS settings apply to the Sentinels too.
    let url: RedisURL
    let connectTimeout: Duration

    init(_ sentinel: RedisURL.Sentinel, url: RedisURL, connectTimeout: Duration) {
        self.sentinel = sentinel
        self.url = url
        self.connectTimeout = connectTimeout
    }

    /// The primary's host and port, as the first Sentinel that knows the group names it.
    ///
    /// - Throws: ``RedisClientError`` with ``RedisClientError/Code/connectionFailed`` when no Sentinel could be
    ///   reached, none knows the master group, or they refused to log in; the message names each Sentinel's answer.
    mutating func primary() throws(RedisClientError) -> RedisURL.Sentinel.Address {
        var answers: [String] = []
        var reachedAny = false
        let clock = ContinuousClock()
        let deadline = clock.now + connectTimeout
        for (index, address) in sentinel.addresses.enumerated() {
            let left = deadline - clock.now
            guard left > .milliseconds(1) else {
                answers.append("\(address): not asked (the connect timeout \(connectTimeout) ran out)")
                break
            }
            switch ask(address, timeout: left) {
            case .primary(let primary):
                if index > 0 {
                    sentinel.addresses.remove(at: index)
                    sentinel.addresses.insert(address, at: 0)
                }
                return primary
            case .unknownGroup:
                reachedAny = true
                answers.append("\(address): knows no master group '\(sentinel.masterName)'")
            case .failed(let reason):
                answers.append("\(address): \(reason)")
            }
        }
        let advice =
            reachedAny
            ? "check the master group's name (SENTINEL MASTERS on a Sentinel lists them)"
            : "check the Sentinel addresses in the URL and that redis-sentinel runs there"
        throw RedisClientError(
            .connectionFailed,
            "cannot find the primary of '\(sentinel.masterName)' from its Sentinels: "
                + answers.joined(separator: "; ") + "; \(advice)"
        )
    }

    private enum Answer {
        case primary(RedisURL.Sentinel.Address)
        case unknownGroup
        case failed(String)
    }

    private func ask(_ address: RedisURL.Sentinel.Address, timeout: Duration) -> Answer {
        let answer: RedisReply
        switch Self.open(
            address,
            sentinel,
            url: url,
            timeout: timeout,
            then: RedisCommand("SENTINEL", "get-master-addr-by-name", sentinel.masterName)
        ) {
        case .failure(let failure): return .failed(failure.reason)
        case .success(let (context, reply)):
            redisFree(context)
            answer = reply
        }
        if answer.isNull { return .unknownGroup }
        guard let pair = answer.array, pair.count == 2, let host = pair[0].string, let portText = pair[1].string,
            let port = Int(portText)
        else { return .failed("answered \(answer), not a host and a port") }
        return .primary(.init(host: host, port: port))
    }

    /// Why a Sentinel could not be asked.
    struct Failure: Error {
        var reason: String
    }

    /// Connects to a Sentinel (over TLS when the URL says so), logs in with the Sentinels' credentials and sends
    /// `command`, in one round trip. On success the caller owns the context (and frees it) and gets the command's
    /// reply.
    static func open(
        _ address: RedisURL.Sentinel.Address,
        _ sentinel: RedisURL.Sentinel,
        url: RedisURL,
        timeout: Duration,
        then command: RedisCommand
    ) -> Result<(UnsafeMutablePointer<redisContext>, RedisReply), Failure> {
        let made: UnsafeMutablePointer<redisContext>?
        do {
            made = try HiredisSession.connect(host: address.host, port: address.port, url: url, timeout: timeout)
        } catch {
            return .failure(Failure(reason: error.message))
        }
        guard let context = made else { return .failure(Failure(reason: "out of memory")) }
        func failed(_ reason: String) -> Result<(UnsafeMutablePointer<redisContext>, RedisReply), Failure> {
            redisFree(context)
            return .failure(Failure(reason: reason))
        }
        if context.pointee.err != 0 { return failed(HiredisSession.errorText(context)) }
        redisSetTimeout(context, HiredisSession.timeval(timeout))
        var commands: [RedisCommand] = []
        if let password = sentinel.password {
            commands.append(
                sentinel.username.map { RedisCommand("AUTH", $0, password) } ?? RedisCommand("AUTH", password)
            )
        }
        commands.append(command)
        let buffer = commands.flatMap(\.encoded)
        let appended = buffer.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
        }
        guard appended == REDIS_OK else { return failed(HiredisSession.errorText(context)) }
        var last = RedisReply.null
        for _ in commands {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else {
                return failed(HiredisSession.errorText(context))
            }
            let reply = HiredisSession.convert(raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            guard let reply else { return failed("a reply of unknown type (is this a Sentinel?)") }
            if let message = reply.errorMessage {
                if message.hasPrefix("NOAUTH") || message.hasPrefix("WRONGPASS") || message.contains("AUTH") {
                    return failed("refused to log in (\(message)); give its password as sentinel_password=…")
                }
                return failed("answered \(message) (is this a Sentinel, not a Redis server?)")
            }
            last = reply
        }
        return .success((context, last))
    }
}
