/*
 * sha256.c - graft_sha256(), see sha256.h, by libmd (Debian's libmd0: the
 * BSD message-digest functions, already on every Debian system as a
 * dependency of libbsd). A one-shot wrapper: the callers hash whole
 * buffers they already hold.
 */
#include "util/sha256.h"

#include <sha2.h>

_Static_assert(GRAFT_SHA256_LEN == SHA256_DIGEST_LENGTH, "libmd's SHA-256 digest size");

void graft_sha256(const void *data, size_t len, uint8_t out[GRAFT_SHA256_LEN])
{
    SHA2_CTX ctx;
    SHA256Init(&ctx);
    SHA256Update(&ctx, data, len);
    SHA256Final(out, &ctx);
}
