import Foundation
import Synchronization

/// Makes job ids: UUIDv7 (RFC 9562), time-ordered, in lower-case hex with dashes.
///
/// The 48-bit millisecond timestamp comes first, so ids sort by creation time; within one millisecond a 12-bit
/// counter keeps ids of this process in order, and 62 bits come from a generator seeded once per process from the
/// system's random source (`Foundation.UUID()` reads `/dev/urandom` and formats with `sprintf` on each call, which
/// costs more than the rest of an enqueue).
final class JobIDGenerator: Sendable {
    static let shared = JobIDGenerator()

    private struct State: RandomNumberGenerator {
        var lastMilliseconds: UInt64 = 0
        var counter: UInt64 = 0
        var seed: UInt64

        mutating func next() -> UInt64 {
            seed &+= 0x9E37_79B9_7F4A_7C15
            var value = seed
            value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
            value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
            return value ^ (value >> 31)
        }
    }

    private let state: Mutex<State>

    private init() {
        var system = SystemRandomNumberGenerator()
        state = Mutex(State(seed: system.next()))
    }

    func next() -> String {
        let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        let (milliseconds, counter, random) = state.withLock { state in
            if now > state.lastMilliseconds {
                state.lastMilliseconds = now
                state.counter = UInt64.random(in: 0..<0x400, using: &state)
            } else {
                state.counter += 1
                if state.counter > 0xFFF {
                    state.lastMilliseconds += 1
                    state.counter = 0
                }
            }
            return (state.lastMilliseconds, state.counter, state.next())
        }
        let high = milliseconds << 16 | 0x7000 | counter
        let low = (random & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return Self.hex(high, low)
    }

    private static let digits = Array("0123456789abcdef".utf8)

    private static func hex(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            var position = 0
            for index in 0..<32 {
                if index == 8 || index == 12 || index == 16 || index == 20 {
                    buffer[position] = UInt8(ascii: "-")
                    position += 1
                }
                let word = index < 16 ? high : low
                buffer[position] = digits[Int((word >> UInt64(60 - (index % 16) * 4)) & 0xF)]
                position += 1
            }
            return position
        }
    }
}
