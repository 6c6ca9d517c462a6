internal import CHiredis
import Foundation
import Synchronization

/// Listens to a master group's Sentinels for `+switch-master` and counts the switches, so that every connection to
/// the group leaves the old primary as soon as the Sentinels name a new one.
///
/// Without it a connection notices a failover only when the old primary refuses a write (`READONLY`), closes the
/// connection, or stops answering. A forced failover (`SENTINEL FAILOVER`) leaves the old primary a writable primary
/// with no replicas for seconds after the switch; writes sent there in that time are lost when it becomes a replica.
///
/// One watch per master group and process, shared by every connection to it (a subscription per connection would
/// double the connections a Sentinel holds). Its thread subscribes on one Sentinel at a time, moves to the next when
/// that one fails, and ends once no connection holds the watch.
final class SentinelWatch: Sendable {
    private let switches = Atomic<Int>(0)
    let sentinel: RedisURL.Sentinel

    private init(_ sentinel: RedisURL.Sentinel) {
        self.sentinel = sentinel
    }

    /// How many switches of the group's primary this process has heard of.
    var switchCount: Int { switches.load(ordering: .acquiring) }

    private func heardSwitch() {
        switches.add(1, ordering: .releasing)
    }

    private struct WeakWatch {
        weak var watch: SentinelWatch?
    }

    private static let watches = Mutex<[RedisURL.Sentinel: WeakWatch]>([:])

    /// The watch of a master group, started on first use.
    static func shared(for sentinel: RedisURL.Sentinel, url: RedisURL, connectTimeout: Duration) -> SentinelWatch {
        let (watch, isNew) = watches.withLock { watches in
            watches = watches.filter { $0.value.watch != nil }
            if let existing = watches[sentinel]?.watch { return (existing, false) }
            let made = SentinelWatch(sentinel)
            watches[sentinel] = WeakWatch(watch: made)
            return (made, true)
        }
        if isNew {
            let thread = Thread { [weak watch] in
                SentinelWatch.listen(weak: { watch }, sentinel: sentinel, url: url, connectTimeout: connectTimeout)
            }
            thread.name = "conveyor-sentinel"
            thread.start()
        }
        return watch
    }

    /// The subscriber loop; returns once the watch is gone.
    private static func listen(
        weak watch: () -> SentinelWatch?,
        sentinel: RedisURL.Sentinel,
        url: RedisURL,
        connectTimeout: Duration
    ) {
        var next = 0
        var wasSubscribed = false
        while watch() != nil {
            let address = sentinel.addresses[next % sentinel.addresses.count]
            next += 1
            guard let context = subscribe(address, sentinel, url: url, timeout: connectTimeout) else {
                // Every Sentinel may be down for a while: try the next after a pause, waking up to see whether the
                // watch is still wanted.
                if next % sentinel.addresses.count == 0 { sleepWhileWanted(.seconds(1), watch) }
                continue
            }
            // A switch may have happened while no subscription was up: count one, so connections check again.
            if wasSubscribed { watch()?.heardSwitch() }
            wasSubscribed = true
            read(context, masterName: sentinel.masterName, watch)
            redisFree(context)
        }
    }

    private static func sleepWhileWanted(_ duration: Duration, _ watch: () -> SentinelWatch?) {
        let clock = ContinuousClock()
        let end = clock.now + duration
        while clock.now < end, watch() != nil { Thread.sleep(forTimeInterval: 0.1) }
    }

    /// Connects to a Sentinel, logs in and subscribes; `nil` when any step fails.
    private static func subscribe(
        _ address: RedisURL.Sentinel.Address,
        _ sentinel: RedisURL.Sentinel,
        url: RedisURL,
        timeout: Duration
    ) -> UnsafeMutablePointer<redisContext>? {
        let opened = SentinelResolver.open(
            address,
            sentinel,
            url: url,
            timeout: timeout,
            then: RedisCommand("SUBSCRIBE", "+switch-master")
        )
        guard case .success(let (context, _)) = opened else { return nil }
        return context
    }

    /// Reads messages until the connection fails or the watch is gone, counting the group's switches.
    private static func read(
        _ context: UnsafeMutablePointer<redisContext>,
        masterName: String,
        _ watch: () -> SentinelWatch?
    ) {
        while watch() != nil {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReplyFromReader(context, &raw) == REDIS_OK else { return }
            if let raw {
                let reply = HiredisSession.convert(raw.assumingMemoryBound(to: redisReply.self))
                freeReplyObject(raw)
                // ["message", "+switch-master", "<name> <old ip> <old port> <new ip> <new port>"]
                if let parts = reply?.array, parts.count == 3, parts[0].string == "message",
                    parts[2].string?.split(separator: " ").first.map(String.init) == masterName
                {
                    watch()?.heardSwitch()
                }
                continue
            }
            var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, 500)
            if ready < 0 && errno != EINTR { return }
            if ready > 0, redisBufferRead(context) != REDIS_OK { return }
        }
    }
}
