/* kload.h - load maps and programs into the kernel (see kload.c). */
#ifndef GRAFT_TESTS_KLOAD_H
#define GRAFT_TESTS_KLOAD_H

#include <stddef.h>
#include <stdint.h>

int kl_map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                  uint32_t flags);                      /* fd or -errno */
/* A map of maps whose inner maps are shaped like the map inner_fd. */
int kl_map_create_outer(uint32_t type, uint32_t key_size, uint32_t max_entries, int inner_fd);
int kl_prog_load_kprobe(const void *insns, uint32_t n, char *log, size_t loglen); /* fd or -errno */
#define KL_PROG_SOCKET_FILTER 1
#define KL_PROG_TRACEPOINT    5
/* Any program type (enum bpf_prog_type), GPL; fd or -errno. */
int kl_prog_load(uint32_t prog_type, const void *insns, uint32_t n, char *log, size_t loglen);
void kl_close(int fd);

#endif
