import Foundation
import RedisClient

extension LocalRedisServer {
    /// Whether a server with TLS asks clients for a certificate (`tls-auth-clients`).
    public enum ClientAuthentication: String, Sendable {
        /// No client certificate is asked for.
        case no
        /// A client certificate is asked for; connections without one are accepted too.
        case optional
        /// A client certificate signed by the CA is required (Redis's default).
        case yes
    }

    /// How a server started by ``LocalRedisServer/start(_:)`` listens for TLS (`tls-port`, `tls-cert-file`, …).
    ///
    /// With TLS the server's ``LocalRedisServer/port`` is its `tls-port` and ``LocalRedisServer/url`` is a
    /// `rediss://` URL that trusts ``caFile`` and shows the client certificate, if one is given.
    public struct TLSOptions: Sendable {
        /// The server's certificate (`tls-cert-file`).
        public var certificateFile: String
        /// The server certificate's key (`tls-key-file`).
        public var keyFile: String
        /// The CA that signed the server's and the clients' certificates (`tls-ca-cert-file`).
        public var caFile: String
        /// Whether clients must show a certificate (`tls-auth-clients`).
        public var clientAuthentication: ClientAuthentication
        /// A client certificate for ``LocalRedisServer/url`` (and its probes), or `nil`.
        public var clientCertificateFile: String?
        /// The client certificate's key, or `nil`.
        public var clientKeyFile: String?
        /// Also listen on a plain TCP port (``LocalRedisServer/plainPort``); otherwise `port 0`, TLS only.
        public var plainPort: Bool

        /// Creates TLS options.
        ///
        /// - Parameters:
        ///   - certificateFile: The server certificate.
        ///   - keyFile: Its key.
        ///   - caFile: The CA file the server trusts for client certificates and clients trust for the server.
        ///   - clientAuthentication: `tls-auth-clients` (`.optional` by default).
        ///   - clientCertificateFile: A client certificate for the server's URL, or `nil`.
        ///   - clientKeyFile: Its key, or `nil`.
        ///   - plainPort: Whether to listen on a plain port too.
        public init(
            certificateFile: String,
            keyFile: String,
            caFile: String,
            clientAuthentication: ClientAuthentication = .optional,
            clientCertificateFile: String? = nil,
            clientKeyFile: String? = nil,
            plainPort: Bool = false
        ) {
            self.certificateFile = certificateFile
            self.keyFile = keyFile
            self.caFile = caFile
            self.clientAuthentication = clientAuthentication
            self.clientCertificateFile = clientCertificateFile
            self.clientKeyFile = clientKeyFile
            self.plainPort = plainPort
        }

        /// The `redis-server` options for listening on `port` with TLS (and on `plainPort`, or not at all on plain
        /// TCP).
        func arguments(port: Int, plainPort: Int?) -> [String] {
            [
                "--port", String(plainPort ?? 0),
                "--tls-port", String(port),
                "--tls-cert-file", certificateFile,
                "--tls-key-file", keyFile,
                "--tls-ca-cert-file", caFile,
                "--tls-auth-clients", clientAuthentication.rawValue,
            ]
        }

        /// The TLS settings of a client of this server.
        var clientSettings: RedisURL.TLS {
            RedisURL.TLS(caFile: caFile, certificateFile: clientCertificateFile, keyFile: clientKeyFile)
        }
    }

    /// A throw-away CA with a server certificate for `127.0.0.1` and `localhost` and a client certificate, made
    /// with the `openssl` command, for tests and benchmarks of TLS.
    public struct TestCertificates: Sendable {
        /// The directory that holds the files.
        public let directory: String
        /// The CA certificate.
        public var caFile: String { directory + "/ca.crt" }
        /// The server certificate (subjectAltName IP 127.0.0.1, IP ::1 and DNS localhost), signed by the CA.
        public var serverCertificateFile: String { directory + "/server.crt" }
        /// The server certificate's key.
        public var serverKeyFile: String { directory + "/server.key" }
        /// A client certificate signed by the CA.
        public var clientCertificateFile: String { directory + "/client.crt" }
        /// The client certificate's key.
        public var clientKeyFile: String { directory + "/client.key" }
        /// Another CA that signed nothing here: trusting it instead of ``caFile`` must fail.
        public var otherCAFile: String { directory + "/other-ca.crt" }

        /// Makes the certificates in `directory` (created if missing); valid for two days.
        ///
        /// - Parameter directory: Where to write them.
        /// - Throws: ``LocalRedisServerError`` when `openssl` is missing or fails (with its output).
        public static func make(in directory: String) throws -> TestCertificates {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let certificates = TestCertificates(directory: directory)
            let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
            for name in ["ca", "other-ca"] {
                try openssl(
                    ["req", "-x509"] + key + [
                        "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).crt", "-days", "2",
                        "-subj", "/CN=Conveyor test \(name)",
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                    ]
                )
            }
            let uses = [
                "server": "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
                "client": "extendedKeyUsage=clientAuth\n",
            ]
            for (name, extensions) in uses {
                let extensionsFile = "\(directory)/\(name).ext"
                try extensions.write(toFile: extensionsFile, atomically: true, encoding: .utf8)
                try openssl(
                    ["req"] + key + [
                        "-keyout", "\(directory)/\(name).key", "-out", "\(directory)/\(name).csr",
                        "-subj", "/CN=conveyor-test-\(name)",
                    ]
                )
                try openssl([
                    "x509", "-req", "-in", "\(directory)/\(name).csr", "-CA", certificates.caFile,
                    "-CAkey", "\(directory)/ca.key", "-CAcreateserial", "-out", "\(directory)/\(name).crt",
                    "-days", "2", "-extfile", extensionsFile,
                ])
            }
            return certificates
        }

        /// Server options for these certificates.
        ///
        /// - Parameters:
        ///   - clientAuthentication: `tls-auth-clients`.
        ///   - withClientCertificate: Whether the server's URL shows the client certificate.
        ///   - plainPort: Whether the server listens on a plain port too.
        /// - Returns: The TLS options.
        public func serverOptions(
            clientAuthentication: ClientAuthentication = .optional,
            withClientCertificate: Bool = true,
            plainPort: Bool = false
        ) -> TLSOptions {
            TLSOptions(
                certificateFile: serverCertificateFile,
                keyFile: serverKeyFile,
                caFile: caFile,
                clientAuthentication: clientAuthentication,
                clientCertificateFile: withClientCertificate ? clientCertificateFile : nil,
                clientKeyFile: withClientCertificate ? clientKeyFile : nil,
                plainPort: plainPort
            )
        }

        private static func openssl(_ arguments: [String]) throws {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["openssl"] + arguments
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            process.standardInput = FileHandle.nullDevice
            do {
                try process.run()
            } catch {
                throw LocalRedisServerError(message: "cannot run openssl: \(error); apt-get install -y openssl")
            }
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard process.terminationStatus == 0 else {
                throw LocalRedisServerError(
                    message:
                        "openssl \(arguments.joined(separator: " ")) failed (\(process.terminationStatus)):\n\(text)"
                )
            }
        }
    }
}
