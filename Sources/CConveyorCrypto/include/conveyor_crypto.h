#ifndef CONVEYOR_CRYPTO_H
#define CONVEYOR_CRYPTO_H

#include <stddef.h>

/// HMAC-SHA-256 of `data` under `key` into `out` (32 bytes), with OpenSSL's libcrypto. Returns 0, or -1 on failure.
int conveyor_hmac_sha256(const void *key, size_t key_length, const void *data, size_t data_length,
                         unsigned char out[32]);

#endif
