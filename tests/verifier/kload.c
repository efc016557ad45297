/*
 * kload.c - the kernel side of the differential test, kept apart because
 * <linux/bpf.h> and graft's vm/isa.h both define struct bpf_insn.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "kload.h"

int kl_map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max_entries,
                  uint32_t flags)
{
    LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = flags);
    int fd = bpf_map_create((enum bpf_map_type)type, NULL, key_size, value_size, max_entries, &mo);
    return fd < 0 ? -errno : fd;
}

int kl_map_create_outer(uint32_t type, uint32_t key_size, uint32_t max_entries, int inner_fd)
{
    LIBBPF_OPTS(bpf_map_create_opts, mo, .inner_map_fd = (uint32_t)inner_fd);
    int fd = bpf_map_create((enum bpf_map_type)type, NULL, key_size, 4, max_entries, &mo);
    return fd < 0 ? -errno : fd;
}

int kl_prog_load(uint32_t prog_type, const void *insns, uint32_t n, char *log, size_t loglen)
{
    if (log && loglen)
        log[0] = 0;
    LIBBPF_OPTS(bpf_prog_load_opts, po, .log_buf = log, .log_size = (uint32_t)loglen,
                .log_level = log ? 1 : 0);
    int fd = bpf_prog_load((enum bpf_prog_type)prog_type, "vtest", "GPL",
                           (const struct bpf_insn *)insns, n, &po);
    return fd < 0 ? -errno : fd;
}

int kl_prog_load_kprobe(const void *insns, uint32_t n, char *log, size_t loglen)
{
    return kl_prog_load(BPF_PROG_TYPE_KPROBE, insns, n, log, loglen);
}

void kl_close(int fd)
{
    close(fd);
}
