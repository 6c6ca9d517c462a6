// TLS tunnel for Conveyor's Redis connections; see include/conveyor_tls.h.
#define _GNU_SOURCE
#include "conveyor_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/// Each direction's buffer: four full TLS records, so a pipelined batch goes out in full records.
#define TUNNEL_BUFFER (64 * 1024)

static atomic_int live_tunnels = 0;

int conveyor_tls_live_tunnels(void) { return atomic_load(&live_tunnels); }

static void fail(conveyor_tls_failure *failure, conveyor_tls_status status, const char *format, ...) {
    failure->status = status;
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(failure->detail, sizeof failure->detail, format, arguments);
    va_end(arguments);
}

/// The reason of the oldest queued OpenSSL error, or `fallback`.
static const char *openssl_reason(const char *fallback) {
    unsigned long code = ERR_peek_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;
    return reason ? reason : fallback;
}

static long long now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/// Milliseconds left until `deadline` (-1: none) for poll, at least 0.
static int remaining_ms(long long deadline) {
    if (deadline < 0) return -1;
    long long left = deadline - now_ms();
    return left < 0 ? 0 : (int)left;
}

/// Waits until `fd` is ready for `events`; 1 when ready, 0 on timeout, -1 on error (errno set).
static int wait_for(int fd, short events, long long deadline) {
    for (;;) {
        struct pollfd descriptor = {.fd = fd, .events = events};
        int ready = poll(&descriptor, 1, remaining_ms(deadline));
        if (ready >= 0) return ready;
        if (errno != EINTR) return -1;
    }
}

static int set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK);
}

/// A non-blocking TCP socket connected to host:port, trying each address in turn; -1 with *failure set.
static int connect_tcp(const char *host, int port, long long deadline, conveyor_tls_failure *failure) {
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *addresses = NULL;
    int resolved = getaddrinfo(host, service, &hints, &addresses);
    if (resolved != 0) {
        fail(failure, CONVEYOR_TLS_RESOLVE, "cannot resolve '%s': %s",
             host, resolved == EAI_SYSTEM ? strerror(errno) : gai_strerror(resolved));
        return -1;
    }
    int last_error = 0;
    int timed_out = 0;
    for (struct addrinfo *address = addresses; address; address = address->ai_next) {
        int fd = socket(address->ai_family, address->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        address->ai_protocol);
        if (fd < 0) {
            last_error = errno;
            continue;
        }
        int result = connect(fd, address->ai_addr, address->ai_addrlen);
        if (result != 0 && errno == EINPROGRESS) {
            int ready = wait_for(fd, POLLOUT, deadline);
            if (ready == 0) {
                timed_out = 1;
                close(fd);
                break;
            }
            int error = 0;
            socklen_t length = sizeof error;
            if (ready < 0) {
                error = errno;
            } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
                error = errno;
            }
            result = error == 0 ? 0 : -1;
            errno = error;
        }
        if (result == 0) {
            int on = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
            freeaddrinfo(addresses);
            return fd;
        }
        last_error = errno;
        close(fd);
    }
    freeaddrinfo(addresses);
    if (timed_out) {
        fail(failure, CONVEYOR_TLS_TIMEOUT, "the TCP connection to %s:%d was not accepted in time", host, port);
    } else {
        fail(failure, CONVEYOR_TLS_CONNECT, "%s", strerror(last_error ? last_error : ECONNREFUSED));
    }
    return -1;
}

/// Refuses to prompt for the pass phrase of an encrypted key (a worker has no terminal).
static int no_password(char *buffer, int size, int writing, void *data) {
    (void)buffer;
    (void)size;
    (void)writing;
    (void)data;
    return -1;
}

/// Fails with the file's errno when it cannot be opened for reading: clearer than OpenSSL's "system lib".
static int check_readable(const char *path, const char *what, conveyor_tls_failure *failure) {
    FILE *file = fopen(path, "r");
    if (!file) {
        fail(failure, CONVEYOR_TLS_BAD_FILE, "cannot read the %s '%s': %s", what, path, strerror(errno));
        return -1;
    }
    fclose(file);
    return 0;
}

static SSL_CTX *make_context(const conveyor_tls_options *options, conveyor_tls_failure *failure) {
    SSL_CTX *context = SSL_CTX_new(TLS_client_method());
    if (!context) {
        fail(failure, CONVEYOR_TLS_SYSTEM, "cannot create a TLS context: %s", openssl_reason("out of memory"));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
    SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_default_passwd_cb(context, no_password);
    if (options->insecure) {
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, NULL);
        if (options->ca_file) {
            if (check_readable(options->ca_file, "CA file (ca_file)", failure) != 0) goto failed;
            if (SSL_CTX_load_verify_locations(context, options->ca_file, NULL) != 1) {
                fail(failure, CONVEYOR_TLS_BAD_FILE, "cannot load the CA file (ca_file) '%s': %s (it must hold "
                     "PEM certificates)", options->ca_file, openssl_reason("no certificates in it"));
                goto failed;
            }
        } else if (SSL_CTX_set_default_verify_paths(context) != 1) {
            fail(failure, CONVEYOR_TLS_BAD_FILE, "cannot load the system trust store: %s",
                 openssl_reason("unknown error"));
            goto failed;
        }
    }
    if (options->cert_file) {
        if (check_readable(options->cert_file, "client certificate file (cert_file)", failure) != 0) goto failed;
        if (SSL_CTX_use_certificate_chain_file(context, options->cert_file) != 1) {
            fail(failure, CONVEYOR_TLS_BAD_FILE, "cannot load the client certificate file (cert_file) '%s': %s "
                 "(it must hold a PEM certificate)", options->cert_file, openssl_reason("unknown error"));
            goto failed;
        }
        const char *key = options->key_file ? options->key_file : options->cert_file;
        if (check_readable(key, "client key file (key_file)", failure) != 0) goto failed;
        if (SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) != 1) {
            if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
                fail(failure, CONVEYOR_TLS_BAD_FILE, "the client key file (key_file) '%s' is not the key of the "
                     "certificate in '%s'", key, options->cert_file);
                goto failed;
            }
            fail(failure, CONVEYOR_TLS_BAD_FILE, "cannot load the client key file (key_file) '%s': %s (it must "
                 "hold an unencrypted PEM private key)", key, openssl_reason("unknown error"));
            goto failed;
        }
        if (SSL_CTX_check_private_key(context) != 1) {
            fail(failure, CONVEYOR_TLS_BAD_FILE, "the client key file (key_file) '%s' is not the key of the "
                 "certificate in '%s'", key, options->cert_file);
            goto failed;
        }
    }
    ERR_clear_error();
    return context;
failed:
    ERR_clear_error();
    SSL_CTX_free(context);
    return NULL;
}

// Made contexts, reused while their files are unchanged: loading the system trust store alone takes about 25 ms
// (a pool of 16 connections would pay it 16 times, and again on every reconnect).
#define CONTEXT_CACHE_SIZE 8

typedef struct cached_context {
    char key[2048];
    SSL_CTX *context;
    unsigned long long used;
} cached_context;

static cached_context context_cache[CONTEXT_CACHE_SIZE];
static pthread_mutex_t context_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long context_cache_clock = 0;

/// Appends "path@mtime:size:inode" to the key; -1 when the file cannot be examined (then nothing is cached, and
/// making the context reports the problem).
static int append_stamp(char *key, size_t size, size_t *used, const char *path) {
    struct stat status;
    if (path && stat(path, &status) != 0) return -1;
    int written = path ? snprintf(key + *used, size - *used, "|%s@%lld.%ld:%lld:%llu", path,
                                  (long long)status.st_mtim.tv_sec, status.st_mtim.tv_nsec,
                                  (long long)status.st_size, (unsigned long long)status.st_ino)
                       : snprintf(key + *used, size - *used, "|-");
    if (written < 0 || (size_t)written >= size - *used) return -1;
    *used += (size_t)written;
    return 0;
}

/// The cache key of the context for `options`: the settings and the state of every file they read.
static int context_key(const conveyor_tls_options *options, char *key, size_t size) {
    size_t used = 0;
    int written = snprintf(key, size, "%d", options->insecure ? 1 : 0);
    if (written < 0 || (size_t)written >= size) return -1;
    used = (size_t)written;
    if (append_stamp(key, size, &used, options->cert_file) != 0) return -1;
    if (append_stamp(key, size, &used, options->cert_file && options->key_file ? options->key_file : NULL) != 0) {
        return -1;
    }
    if (options->insecure) return 0;
    if (options->ca_file) return append_stamp(key, size, &used, options->ca_file);
    // The system store: where SSL_CERT_FILE / SSL_CERT_DIR point, and the state of the default file.
    const char *file = getenv(X509_get_default_cert_file_env());
    const char *directory = getenv(X509_get_default_cert_dir_env());
    written = snprintf(key + used, size - used, "|system:%s:%s", file ? file : "", directory ? directory : "");
    if (written < 0 || (size_t)written >= size - used) return -1;
    used += (size_t)written;
    const char *store = file ? file : X509_get_default_cert_file();
    struct stat status;
    if (stat(store, &status) != 0) return 0;  // no bundle file (a hashed directory only): the names say enough
    return append_stamp(key, size, &used, store);
}

/// A context for `options` (a new reference the caller frees), from the cache or made now.
static SSL_CTX *context_for(const conveyor_tls_options *options, conveyor_tls_failure *failure) {
    char key[sizeof context_cache[0].key];
    if (context_key(options, key, sizeof key) != 0) return make_context(options, failure);
    pthread_mutex_lock(&context_cache_lock);
    for (int index = 0; index < CONTEXT_CACHE_SIZE; index++) {
        cached_context *entry = &context_cache[index];
        if (entry->context && strcmp(entry->key, key) == 0) {
            entry->used = ++context_cache_clock;
            SSL_CTX_up_ref(entry->context);
            SSL_CTX *found = entry->context;
            pthread_mutex_unlock(&context_cache_lock);
            return found;
        }
    }
    pthread_mutex_unlock(&context_cache_lock);
    SSL_CTX *context = make_context(options, failure);  // outside the lock; failures are not cached
    if (!context) return NULL;
    pthread_mutex_lock(&context_cache_lock);
    cached_context *victim = &context_cache[0];
    for (int index = 0; index < CONTEXT_CACHE_SIZE; index++) {
        cached_context *entry = &context_cache[index];
        if (entry->context && strcmp(entry->key, key) == 0) {  // made meanwhile by another thread
            victim = entry;
            break;
        }
        if (!entry->context || entry->used < victim->used) victim = entry;
    }
    if (victim->context) SSL_CTX_free(victim->context);
    memcpy(victim->key, key, sizeof key);
    victim->context = context;
    victim->used = ++context_cache_clock;
    SSL_CTX_up_ref(context);
    pthread_mutex_unlock(&context_cache_lock);
    return context;
}

/// Whether `name` is an IPv4 or IPv6 address literal.
static int is_ip_address(const char *name) {
    unsigned char address[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, address) == 1 || inet_pton(AF_INET6, name, address) == 1;
}

/// Appends the DNS names and IP addresses of the certificate's subjectAltName (else its common name) to `out`.
static void certificate_names(X509 *certificate, char *out, size_t size) {
    out[0] = 0;
    if (!certificate) return;
    size_t used = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(certificate, NID_subject_alt_name, NULL, NULL);
    for (int index = 0; names && index < sk_GENERAL_NAME_num(names); index++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, index);
        char text[INET6_ADDRSTRLEN + 1] = "";
        const char *shown = text;
        if (name->type == GEN_DNS) {
            shown = (const char *)ASN1_STRING_get0_data(name->d.dNSName);
        } else if (name->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *ip = name->d.iPAddress;
            int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
            if (!inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof text)) continue;
        } else {
            continue;
        }
        int written = snprintf(out + used, size - used, "%s%s", used ? ", " : "", shown);
        if (written < 0 || (size_t)written >= size - used) break;
        used += (size_t)written;
    }
    GENERAL_NAMES_free(names);
    if (used == 0) {
        X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, out, (int)size);
    }
}

/// What the message callback saw during the handshake.
typedef struct handshake_notes {
    int certificate_requested;
} handshake_notes;

static void note_message(int writing, int version, int content_type, const void *buffer, size_t length, SSL *ssl,
                         void *argument) {
    (void)version;
    (void)ssl;
    handshake_notes *notes = argument;
    if (!writing && content_type == SSL3_RT_HANDSHAKE && length > 0 &&
        ((const unsigned char *)buffer)[0] == SSL3_MT_CERTIFICATE_REQUEST) {
        notes->certificate_requested = 1;
    }
}

/// Sorts a failed handshake or first read into a status and a detail.
static void classify(SSL *ssl, int error, int saved_errno, const char *name, const char *endpoint,
                     int have_certificate, conveyor_tls_failure *failure) {
    long verify = SSL_get_verify_result(ssl);
    unsigned long code = ERR_peek_error();
    int reason = code ? ERR_GET_REASON(code) : 0;
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED && verify != X509_V_OK) {
        failure->verify_error = verify;
        const char *text = X509_verify_cert_error_string(verify);
        if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
            char names[300];
            STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
            certificate_names(chain && sk_X509_num(chain) > 0 ? sk_X509_value(chain, 0) : NULL, names,
                              sizeof names);
            fail(failure, CONVEYOR_TLS_NAME_MISMATCH, "%s: the certificate is for %s, not for '%s'", text,
                 names[0] ? names : "(no names)", name);
        } else if (verify == X509_V_ERR_CERT_HAS_EXPIRED || verify == X509_V_ERR_CERT_NOT_YET_VALID) {
            fail(failure, CONVEYOR_TLS_EXPIRED, "%s", text);
        } else if (verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                   verify == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
                   verify == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                   verify == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                   verify == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE ||
                   verify == X509_V_ERR_CERT_SIGNATURE_FAILURE) {
            fail(failure, CONVEYOR_TLS_UNTRUSTED, "%s", text);
        } else {
            fail(failure, CONVEYOR_TLS_VERIFY, "%s", text);
        }
        return;
    }
    switch (reason) {
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_UNKNOWN_PROTOCOL:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_HTTP_REQUEST:
        fail(failure, CONVEYOR_TLS_NOT_TLS, "%s answered the TLS handshake with something that is not TLS (%s)",
             endpoint, ERR_reason_error_string(code));
        return;
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        fail(failure, CONVEYOR_TLS_CLIENT_CERT_REQUIRED, "%s", ERR_reason_error_string(code));
        return;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
        if (have_certificate) {
            fail(failure, CONVEYOR_TLS_CLIENT_CERT_REFUSED, "%s", ERR_reason_error_string(code));
        } else {
            fail(failure, CONVEYOR_TLS_CLIENT_CERT_REQUIRED, "%s", ERR_reason_error_string(code));
        }
        return;
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        if (!have_certificate) {
            fail(failure, CONVEYOR_TLS_CLIENT_CERT_REQUIRED, "%s", ERR_reason_error_string(code));
            return;
        }
        break;
    case SSL_R_UNEXPECTED_EOF_WHILE_READING:
        fail(failure, CONVEYOR_TLS_CLOSED, "%s closed the connection during the TLS handshake", endpoint);
        return;
    default:
        break;
    }
    if (error == SSL_ERROR_SYSCALL || error == SSL_ERROR_ZERO_RETURN) {
        if (saved_errno != 0) {
            fail(failure, CONVEYOR_TLS_CLOSED, "%s broke the connection during the TLS handshake: %s", endpoint,
                 strerror(saved_errno));
        } else {
            fail(failure, CONVEYOR_TLS_CLOSED, "%s closed the connection during the TLS handshake", endpoint);
        }
        return;
    }
    fail(failure, CONVEYOR_TLS_HANDSHAKE, "%s", openssl_reason("unknown TLS error"));
}

/// Runs an SSL operation on a non-blocking socket until it finishes, fails or the deadline passes. Returns its
/// result (> 0 done), or 0 with *error set: SSL_get_error's code, or -1 for a timeout.
static int drive(SSL *ssl, int fd, long long deadline, int (*operation)(SSL *, void *, int), void *buffer,
                 int length, int *error, int *saved_errno) {
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int result = operation(ssl, buffer, length);
        if (result > 0) return result;
        *saved_errno = errno;
        int code = SSL_get_error(ssl, result);
        short events = code == SSL_ERROR_WANT_READ ? POLLIN : code == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (events == 0) {
            *error = code;
            return 0;
        }
        int ready = wait_for(fd, events, deadline);
        if (ready <= 0) {
            *error = ready == 0 ? -1 : SSL_ERROR_SYSCALL;
            *saved_errno = errno;
            return 0;
        }
    }
}

static int handshake_operation(SSL *ssl, void *buffer, int length) {
    (void)buffer;
    (void)length;
    return SSL_connect(ssl);
}

static int write_operation(SSL *ssl, void *buffer, int length) { return SSL_write(ssl, buffer, length); }

static int read_operation(SSL *ssl, void *buffer, int length) { return SSL_read(ssl, buffer, length); }

/// One relayed connection, owned by its thread.
typedef struct tunnel {
    SSL *ssl;
    int network;
    int local;
    unsigned char *to_server;
    unsigned char *to_client;
} tunnel;

static void close_tunnel(tunnel *relayed, int clean) {
    if (clean) SSL_shutdown(relayed->ssl);  // close_notify, best effort: never waits
    SSL_free(relayed->ssl);
    close(relayed->network);
    close(relayed->local);
    free(relayed->to_server);
    free(relayed->to_client);
    free(relayed);
    ERR_clear_error();
}

/// Relays until either side closes or fails. Each operation is tried until it would block; then poll waits for
/// exactly the events the blocked operations wait for (an SSL_read may wait for the socket to be writable, an
/// SSL_write for it to be readable), so the thread sleeps whenever nothing can move.
static void *relay(void *argument) {
    tunnel *relayed = argument;
    SSL *ssl = relayed->ssl;
    size_t out_length = 0;  // local → server, in to_server
    size_t in_length = 0;   // server → local, in to_client
    int local_read_blocked = 0, local_write_blocked = 0;
    short ssl_read_wants = 0, ssl_write_wants = 0;  // the event a blocked SSL_read / SSL_write waits for
    int server_done = 0;                            // close_notify or a failure: nothing more to read
    int server_failed = 0;
    for (;;) {
        int progressed;
        do {
            progressed = 0;
            if (!local_read_blocked && out_length < TUNNEL_BUFFER) {
                ssize_t count = recv(relayed->local, relayed->to_server + out_length, TUNNEL_BUFFER - out_length,
                                     MSG_DONTWAIT);
                if (count > 0) {
                    out_length += (size_t)count;
                    progressed = 1;
                } else if (count == 0) {
                    goto finished;  // hiredis closed or shut down its end (interrupt): nothing left to do
                } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                    local_read_blocked = 1;
                } else if (errno != EINTR) {
                    goto finished;
                }
            }
            if (out_length > 0 && !ssl_write_wants && !server_failed) {
                ERR_clear_error();
                int count = SSL_write(ssl, relayed->to_server, (int)out_length);
                if (count > 0) {
                    memmove(relayed->to_server, relayed->to_server + count, out_length - (size_t)count);
                    out_length -= (size_t)count;
                    progressed = 1;
                    ssl_read_wants = 0;  // writing may have processed records a read waits for
                } else {
                    int code = SSL_get_error(ssl, count);
                    if (code == SSL_ERROR_WANT_READ) {
                        ssl_write_wants = POLLIN;
                    } else if (code == SSL_ERROR_WANT_WRITE) {
                        ssl_write_wants = POLLOUT;
                    } else {
                        server_failed = server_done = 1;
                        out_length = 0;
                    }
                }
            }
            if (!server_done && !ssl_read_wants && in_length < TUNNEL_BUFFER) {
                ERR_clear_error();
                int count = SSL_read(ssl, relayed->to_client + in_length, (int)(TUNNEL_BUFFER - in_length));
                if (count > 0) {
                    in_length += (size_t)count;
                    progressed = 1;
                    ssl_write_wants = 0;
                } else {
                    int code = SSL_get_error(ssl, count);
                    if (code == SSL_ERROR_WANT_READ) {
                        ssl_read_wants = POLLIN;
                    } else if (code == SSL_ERROR_WANT_WRITE) {
                        ssl_read_wants = POLLOUT;
                    } else {
                        server_done = 1;
                        server_failed = code != SSL_ERROR_ZERO_RETURN;
                    }
                }
            }
            if (in_length > 0 && !local_write_blocked) {
                ssize_t count = send(relayed->local, relayed->to_client, in_length, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (count > 0) {
                    memmove(relayed->to_client, relayed->to_client + count, in_length - (size_t)count);
                    in_length -= (size_t)count;
                    progressed = 1;
                } else if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    local_write_blocked = 1;
                } else if (count < 0 && errno != EINTR) {
                    goto finished;
                }
            }
        } while (progressed);
        // The server is gone and everything it sent was handed on: closing our end gives hiredis end-of-file.
        if (server_done && in_length == 0) goto finished;

        struct pollfd descriptors[2] = {
            {.fd = relayed->local, .events = 0},
            {.fd = -1, .events = 0},
        };
        if (local_read_blocked && out_length < TUNNEL_BUFFER) descriptors[0].events |= POLLIN;
        if (local_write_blocked && in_length > 0) descriptors[0].events |= POLLOUT;
        short network_events = 0;
        if (out_length > 0 && ssl_write_wants) network_events |= ssl_write_wants;
        if (!server_done && in_length < TUNNEL_BUFFER && ssl_read_wants) network_events |= ssl_read_wants;
        if (network_events) {
            descriptors[1].fd = relayed->network;
            descriptors[1].events = network_events;
        }
        if (poll(descriptors, 2, -1) < 0) {
            if (errno == EINTR) continue;
            goto finished;
        }
        short local = descriptors[0].revents;
        if (local & (POLLHUP | POLLERR | POLLNVAL)) goto finished;  // hiredis closed its end
        if (local & POLLIN) local_read_blocked = 0;
        if (local & POLLOUT) local_write_blocked = 0;
        short network = descriptors[1].revents;
        if (network & (POLLHUP | POLLERR | POLLNVAL)) {
            // Let the operations run into the end (or read what is left) instead of polling a dead socket.
            ssl_read_wants = ssl_write_wants = 0;
        }
        if (network & ssl_read_wants) ssl_read_wants = 0;
        if (network & ssl_write_wants) ssl_write_wants = 0;
    }
finished:
    close_tunnel(relayed, !server_failed);
    atomic_fetch_sub(&live_tunnels, 1);
    return NULL;
}

/// In TLS 1.3 the server checks the client's certificate after the client has finished the handshake, and reports
/// a refusal with an alert on the first read. When the server asked for a certificate, one PING round trip finds
/// that out here, where it can be reported as such. Returns 0 when the server answered.
static int confirm_client_certificate(SSL *ssl, int fd, long long deadline, const char *name, const char *endpoint,
                                      int have_certificate, conveyor_tls_failure *failure) {
    static const char ping[] = "PING\r\n";
    int error = 0, saved_errno = 0;
    if (drive(ssl, fd, deadline, write_operation, (void *)ping, (int)strlen(ping), &error, &saved_errno) <= 0) {
        goto failed;
    }
    // The reply is one line: +PONG, or an error such as -NOAUTH when a password is needed.
    char reply[256];
    size_t length = 0;
    while (length < sizeof reply) {
        int count = drive(ssl, fd, deadline, read_operation, reply + length, (int)(sizeof reply - length), &error,
                          &saved_errno);
        if (count <= 0) goto failed;
        length += (size_t)count;
        if (length >= 2 && reply[length - 2] == '\r' && reply[length - 1] == '\n') return 0;
    }
    fail(failure, CONVEYOR_TLS_HANDSHAKE, "%s did not answer PING with one line", endpoint);
    return -1;
failed:
    if (error == -1) {
        fail(failure, CONVEYOR_TLS_TIMEOUT, "%s did not answer after the TLS handshake in time", endpoint);
        return -1;
    }
    classify(ssl, error, saved_errno, name, endpoint, have_certificate, failure);
    if (failure->status == CONVEYOR_TLS_CLOSED) {
        // The alert that said why was lost with the reset (the PING reached a server that had closed): a server
        // that asked for a certificate and hangs up right after the handshake refused the one it got, or none.
        fail(failure, have_certificate ? CONVEYOR_TLS_CLIENT_CERT_REFUSED : CONVEYOR_TLS_CLIENT_CERT_REQUIRED,
             "%s asked for a client certificate and closed the connection after the handshake", endpoint);
    }
    return -1;
}

int conveyor_tls_connect(const char *host, int port, int timeout_ms, const conveyor_tls_options *options,
                         conveyor_tls_failure *failure) {
    memset(failure, 0, sizeof *failure);
    long long deadline = timeout_ms > 0 ? now_ms() + timeout_ms : -1;
    const char *name = options->server_name ? options->server_name : host;
    char endpoint[300];
    snprintf(endpoint, sizeof endpoint, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);

    SSL_CTX *context = context_for(options, failure);
    if (!context) return -1;
    int network = connect_tcp(host, port, deadline, failure);
    if (network < 0) {
        SSL_CTX_free(context);
        return -1;
    }
    SSL *ssl = SSL_new(context);
    SSL_CTX_free(context);  // the SSL holds its own reference
    int local[2] = {-1, -1};
    tunnel *relayed = NULL;
    if (!ssl || SSL_set_fd(ssl, network) != 1) {
        fail(failure, CONVEYOR_TLS_SYSTEM, "cannot set up TLS: %s", openssl_reason("out of memory"));
        goto failed;
    }
    if (!options->insecure) {
        int named;
        if (is_ip_address(name)) {
            named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
        } else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            named = SSL_set1_host(ssl, name);
        }
        if (named != 1) {
            fail(failure, CONVEYOR_TLS_SYSTEM, "cannot check the server name '%s': %s", name,
                 openssl_reason("invalid name"));
            goto failed;
        }
    }
    if (!is_ip_address(name)) SSL_set_tlsext_host_name(ssl, name);  // SNI carries names only, never addresses
    handshake_notes notes = {0};
    SSL_set_msg_callback(ssl, note_message);
    SSL_set_msg_callback_arg(ssl, &notes);

    int error = 0, saved_errno = 0;
    if (drive(ssl, network, deadline, handshake_operation, NULL, 0, &error, &saved_errno) <= 0) {
        if (error == -1) {
            fail(failure, CONVEYOR_TLS_TIMEOUT, "%s accepted the TCP connection but did not finish the TLS "
                 "handshake in time", endpoint);
        } else {
            classify(ssl, error, saved_errno, name, endpoint, options->cert_file != NULL, failure);
        }
        goto failed;
    }
    SSL_set_msg_callback(ssl, NULL);
    if (notes.certificate_requested && SSL_version(ssl) == TLS1_3_VERSION &&
        confirm_client_certificate(ssl, network, deadline, name, endpoint, options->cert_file != NULL, failure) !=
            0) {
        goto failed;
    }

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, local) != 0 || set_nonblocking(local[1], 1) != 0) {
        fail(failure, CONVEYOR_TLS_SYSTEM, "cannot create a socket pair: %s", strerror(errno));
        goto failed;
    }
    relayed = calloc(1, sizeof *relayed);
    if (relayed) {
        relayed->to_server = malloc(TUNNEL_BUFFER);
        relayed->to_client = malloc(TUNNEL_BUFFER);
    }
    if (!relayed || !relayed->to_server || !relayed->to_client) {
        fail(failure, CONVEYOR_TLS_SYSTEM, "out of memory");
        goto failed;
    }
    relayed->ssl = ssl;
    relayed->network = network;
    relayed->local = local[1];

    // The relay thread takes no signals (they belong to the process's own handlers) and needs little stack.
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, 256 * 1024);
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    atomic_fetch_add(&live_tunnels, 1);
    pthread_t thread;
    int created = pthread_create(&thread, &attributes, relay, relayed);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    pthread_attr_destroy(&attributes);
    if (created != 0) {
        atomic_fetch_sub(&live_tunnels, 1);
        fail(failure, CONVEYOR_TLS_SYSTEM, "cannot start the TLS relay thread: %s", strerror(created));
        goto failed;
    }
    ERR_clear_error();
    return local[0];

failed:
    ERR_clear_error();
    if (relayed) {
        free(relayed->to_server);
        free(relayed->to_client);
        free(relayed);
    }
    if (local[0] >= 0) close(local[0]);
    if (local[1] >= 0) close(local[1]);
    SSL_free(ssl);
    close(network);
    return -1;
}
