// TLS for Conveyor's Redis connections (hiredis 0.14 has none): a TCP connection and a TLS handshake made here,
// then a thread per connection that relays bytes between a Unix socket pair and the TLS stream, so hiredis reads and
// writes plain RESP on the pair's other end (redisConnectFd).
#ifndef CONVEYOR_TLS_H
#define CONVEYOR_TLS_H

#include <stddef.h>

/// How to set up and check the TLS session.
typedef struct conveyor_tls_options {
    /// PEM file of the CAs to trust; NULL trusts the system store (SSL_CTX_set_default_verify_paths, which honours
    /// SSL_CERT_FILE and SSL_CERT_DIR).
    const char *ca_file;
    /// PEM file of the client certificate (chain) for mutual TLS, or NULL.
    const char *cert_file;
    /// PEM file of the client certificate's private key (unencrypted), or NULL. Given together with cert_file.
    const char *key_file;
    /// The name sent as SNI and checked against the server's certificate (an IP address is checked against its IP
    /// addresses, and sends no SNI); NULL uses the host.
    const char *server_name;
    /// Nonzero: no certificate or name check at all (for tests only).
    int insecure;
} conveyor_tls_options;

/// Why conveyor_tls_connect failed.
typedef enum conveyor_tls_status {
    CONVEYOR_TLS_OK = 0,
    /// A CA, certificate or key file could not be read or used; the detail names the file and the reason.
    CONVEYOR_TLS_BAD_FILE = 1,
    /// The host name could not be resolved.
    CONVEYOR_TLS_RESOLVE = 2,
    /// The TCP connection could not be made (refused, unreachable).
    CONVEYOR_TLS_CONNECT = 3,
    /// The TCP connect, the handshake or the client-certificate check did not finish within the timeout.
    CONVEYOR_TLS_TIMEOUT = 4,
    /// The server's certificate chain does not lead to a trusted CA (self-signed, unknown issuer).
    CONVEYOR_TLS_UNTRUSTED = 5,
    /// The server's certificate has expired or is not valid yet.
    CONVEYOR_TLS_EXPIRED = 6,
    /// The server's certificate is not for the name checked; the detail lists the names it is for.
    CONVEYOR_TLS_NAME_MISMATCH = 7,
    /// Another certificate verification failure; the detail is OpenSSL's reason.
    CONVEYOR_TLS_VERIFY = 8,
    /// The server answered with something that is not TLS (a plain Redis port).
    CONVEYOR_TLS_NOT_TLS = 9,
    /// The server asked for a client certificate and none was given.
    CONVEYOR_TLS_CLIENT_CERT_REQUIRED = 10,
    /// The server refused the client certificate that was given (unknown CA, expired, ...).
    CONVEYOR_TLS_CLIENT_CERT_REFUSED = 11,
    /// The server closed the connection during the handshake.
    CONVEYOR_TLS_CLOSED = 12,
    /// Another handshake failure; the detail is OpenSSL's reason.
    CONVEYOR_TLS_HANDSHAKE = 13,
    /// A system call failed (socketpair, thread creation, memory).
    CONVEYOR_TLS_SYSTEM = 14,
} conveyor_tls_status;

/// What went wrong, when conveyor_tls_connect returns -1.
typedef struct conveyor_tls_failure {
    conveyor_tls_status status;
    /// OpenSSL's X509_V_ERR_* code for a verification failure, else 0.
    long verify_error;
    /// A human-readable reason (NUL-terminated).
    char detail[512];
} conveyor_tls_failure;

/// Connects to host:port over TCP (IPv4 or IPv6, each address getaddrinfo gives in turn), makes the TLS handshake
/// and checks the server's certificate and name, all within timeout_ms (0: no limit), then starts a detached thread
/// that relays between the TLS stream and a Unix socket pair, and returns the pair's other end: a blocking socket
/// that speaks plain bytes. Closing (or shutting down) it ends the thread, which then closes the TLS connection;
/// when the server closes the TLS connection, the thread delivers what is left and closes its end, so reads on the
/// returned socket see end-of-file.
///
/// Returns the socket, or -1 with *failure filled in.
int conveyor_tls_connect(const char *host, int port, int timeout_ms, const conveyor_tls_options *options,
                         conveyor_tls_failure *failure);

/// How many relay threads are running (for tests and diagnostics).
int conveyor_tls_live_tunnels(void);

#endif
