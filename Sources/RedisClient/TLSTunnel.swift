internal import CConveyorTLS
internal import CHiredis
import Foundation

/// Opens `rediss://` connections for hiredis 0.14, which has no TLS of its own.
///
/// `CConveyorTLS` connects, makes the TLS handshake and checks the server's certificate synchronously, then relays
/// between the TLS stream and a Unix socket pair on a thread of its own; hiredis gets the pair's other end
/// (`redisConnectFd`) and speaks plain RESP on it. Timeouts (`SO_RCVTIMEO` on that socket), interrupts
/// (`shutdown(2)` on it), the stale-connection check and reconnects work on it as on a TCP socket: closing it ends
/// the relay thread, and the relay closes it when the server closes the TLS connection.
package enum TLSTunnel {
    /// Connects over TLS and returns a hiredis context on the tunnel.
    ///
    /// - Parameters:
    ///   - host: The server's host name or address.
    ///   - port: Its TLS port.
    ///   - tls: Trust, client certificate and name to check.
    ///   - url: The URL, for error messages.
    ///   - timeout: The limit for the TCP connect and the handshake together.
    /// - Returns: A connected hiredis context.
    /// - Throws: ``RedisClientError`` with code ``RedisClientError/Code/connectionFailed`` and a message that says
    ///   what was wrong and what to do.
    static func connect(
        host: String,
        port: Int,
        tls: RedisURL.TLS,
        url: RedisURL,
        timeout: Duration
    ) throws(RedisClientError) -> UnsafeMutablePointer<redisContext> {
        let (seconds, attoseconds) = timeout.components
        let milliseconds = Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000)
        var failure = conveyor_tls_failure()
        let socket = withOptionalCString(tls.caFile) { caFile in
            withOptionalCString(tls.certificateFile) { certificateFile in
                withOptionalCString(tls.keyFile) { keyFile in
                    withOptionalCString(tls.serverName) { serverName in
                        var options = conveyor_tls_options(
                            ca_file: caFile,
                            cert_file: certificateFile,
                            key_file: keyFile,
                            server_name: serverName,
                            insecure: tls.insecure ? 1 : 0
                        )
                        return conveyor_tls_connect(host, Int32(port), max(1, milliseconds), &options, &failure)
                    }
                }
            }
        }
        guard socket >= 0 else {
            let detail = withUnsafeBytes(of: failure.detail) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            throw RedisClientError(
                .connectionFailed,
                "cannot connect to Redis at \(url) over TLS: "
                    + explanation(failure.status, detail, tls: tls, port: port, timeout: timeout)
            )
        }
        guard let context = redisConnectFd(socket) else {
            close(socket)
            throw RedisClientError(.connectionFailed, "cannot connect to Redis at \(url): out of memory")
        }
        return context
    }

    /// How many relay threads are running in this process (`conveyor-bench tls` checks that none is left).
    package static var liveTunnels: Int { Int(conveyor_tls_live_tunnels()) }

    /// What went wrong and what to do about it.
    private static func explanation(
        _ status: conveyor_tls_status,
        _ detail: String,
        tls: RedisURL.TLS,
        port: Int,
        timeout: Duration
    ) -> String {
        switch status {
        case CONVEYOR_TLS_BAD_FILE:
            return "\(detail); check the file names in the URL and that this user may read them"
        case CONVEYOR_TLS_RESOLVE:
            return "\(detail); check the host name"
        case CONVEYOR_TLS_CONNECT:
            return "\(detail); check that redis-server is running with tls-port \(port) and listening there"
        case CONVEYOR_TLS_TIMEOUT:
            return "\(detail) (connect timeout \(timeout)); check that \(port) is the server's tls-port (a plain "
                + "Redis port waits for a command and never answers a TLS handshake), the address and firewalls"
        case CONVEYOR_TLS_UNTRUSTED:
            if let caFile = tls.caFile {
                return "the server's certificate is not signed by the CA in ca_file '\(caFile)' (\(detail)): give "
                    + "the CA that signed the server's tls-cert-file with ?ca_file=…, or fix the server certificate"
            }
            return "the server's certificate is not signed by a trusted CA (\(detail)): give the CA with "
                + "?ca_file=/path/to/ca.crt (or SSL_CERT_FILE), or fix the server certificate"
        case CONVEYOR_TLS_EXPIRED:
            return "the server's certificate is not valid now (\(detail)): renew the server's tls-cert-file, or "
                + "check the clocks of both machines"
        case CONVEYOR_TLS_NAME_MISMATCH:
            return "the server's certificate does not match the name checked (\(detail)): connect with a name the "
                + "certificate lists, give such a name with ?sni=NAME, or reissue the certificate with this name "
                + "in its subjectAltName"
        case CONVEYOR_TLS_VERIFY:
            return "the server's certificate failed verification (\(detail)): fix the server certificate or give "
                + "the right CA with ?ca_file=…"
        case CONVEYOR_TLS_NOT_TLS:
            return "\(detail): this looks like a plain Redis port; use redis:// for it, or the server's tls-port "
                + "with rediss://"
        case CONVEYOR_TLS_CLIENT_CERT_REQUIRED:
            return "the server requires a client certificate (tls-auth-clients yes) and none was given (\(detail)): "
                + "give one with ?cert_file=client.crt&key_file=client.key, or set tls-auth-clients optional on "
                + "the server"
        case CONVEYOR_TLS_CLIENT_CERT_REFUSED:
            return "the server refused the client certificate '\(tls.certificateFile ?? "")' (\(detail)): use a "
                + "certificate signed by a CA in the server's tls-ca-cert-file"
        case CONVEYOR_TLS_CLOSED:
            return "\(detail); check that \(port) is the server's tls-port and the server's log for why it refused"
        case CONVEYOR_TLS_HANDSHAKE:
            return "the TLS handshake failed (\(detail)); check that \(port) is the server's tls-port and that it "
                + "accepts TLS 1.2 or newer"
        default:
            return detail
        }
    }

    private static func withOptionalCString<Result>(
        _ string: String?,
        _ body: (UnsafePointer<CChar>?) -> Result
    ) -> Result {
        guard let string else { return body(nil) }
        return string.withCString { body($0) }
    }
}
