import ConveyorTesting
import Foundation
import LocalRedis

/// A loopback TCP socket that listens and never accepts or answers: a server that hangs.
final class SilentListener: Sendable {
    let port: Int
    private let descriptor: Int32

    init() throws {
        port = try LocalRedisServer.freeLoopbackPort()
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard bound, listen(descriptor, 16) == 0 else {
            throw WaitTimeout(what: "a silent listener on port \(port)")
        }
    }

    func close() {
        _ = Foundation.close(descriptor)
    }
}
