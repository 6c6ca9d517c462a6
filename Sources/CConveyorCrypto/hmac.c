#include "conveyor_crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

int conveyor_hmac_sha256(const void *key, size_t key_length, const void *data, size_t data_length,
                         unsigned char out[32]) {
    unsigned int length = 0;
    if (HMAC(EVP_sha256(), key, (int)key_length, data, data_length, out, &length) == NULL || length != 32) return -1;
    return 0;
}
