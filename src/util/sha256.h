/*
 * sha256.h - SHA-256 (FIPS 180-4), for authenticating bytes that pass
 * through places other processes can write: an agent compiles a program
 * only if its instructions hash to what the loader recorded.
 */
#ifndef GRAFT_UTIL_SHA256_H
#define GRAFT_UTIL_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define GRAFT_SHA256_LEN 32

void graft_sha256(const void *data, size_t len, uint8_t out[GRAFT_SHA256_LEN]);

#endif
