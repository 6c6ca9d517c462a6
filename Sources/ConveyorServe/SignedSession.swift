import CConveyorCrypto
import Foundation

/// The dashboard's sign-in cookie: `<expiry in epoch seconds>.<HMAC-SHA-256 of it, hex>`, under a key derived from
/// the configured credential. Every `serve` process with the same credential accepts the others' cookies (behind a
/// load balancer), and changing the credential signs everyone out.
struct SignedSession: Sendable {
    /// How long a sign-in lasts.
    static let lifetime: Duration = .seconds(12 * 3600)

    private let key: [UInt8]

    /// - Parameter secret: The credential (the token, or `user:password`).
    init(secret: String) {
        key = Self.hmac(key: Array(secret.utf8), Array("conveyor serve session key".utf8))
    }

    /// A new cookie value, valid for ``lifetime`` from `now`.
    func issue(now: Date = Date()) -> String {
        let expiry = String(Int(now.timeIntervalSince1970) + Int(Self.lifetime.components.seconds))
        return expiry + "." + Self.hex(Self.hmac(key: key, Array(("session:" + expiry).utf8)))
    }

    /// Whether a cookie value is one this key signed and has not expired.
    func accepts(_ value: String, now: Date = Date()) -> Bool {
        let parts = value.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let expiry = Int(parts[0]), expiry > Int(now.timeIntervalSince1970) else {
            return false
        }
        let expected = Self.hex(Self.hmac(key: key, Array(("session:" + parts[0]).utf8)))
        return Self.constantTimeEqual(Array(expected.utf8), Array(parts[1].utf8))
    }

    /// Compares secrets in time that does not depend on where they differ.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }

    static func hmac(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let status = out.withUnsafeMutableBufferPointer { buffer in
            conveyor_hmac_sha256(key, key.count, data, data.count, buffer.baseAddress)
        }
        precondition(status == 0, "HMAC-SHA-256 failed in libcrypto")
        return out
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// 128 random bits as hex: a new CSRF token.
    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return hex((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
