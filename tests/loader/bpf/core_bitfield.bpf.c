/* core_bitfield.bpf.c - bitfield CO-RE relocations (BPF_CORE_READ_BITFIELD /
 * BPF_CORE_WRITE_BITFIELD) resolved against this object's own BTF (the
 * test gives its path as the target): clang sizes a bitfield's storage by
 * the record's alignment, so the instructions' local byte sizes differ
 * from the loader's computation, which libbpf does not check either. */
#include "types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct graft_bits {
    unsigned char b1 : 1;
    unsigned char b2 : 2;
    unsigned int b7 : 7;
    signed char s4 : 4;
    unsigned int u32;
} __attribute__((preserve_access_index));

/* libbpf's BPF_CORE_WRITE_BITFIELD (newer than Debian 12's libbpf): the
 * field's byte offset, byte size and shifts, each a CO-RE relocation */
#define WRITE_BITFIELD(s, field, new_val) ({                                     \
    void *p_ = (void *)s + __CORE_RELO(s, field, BYTE_OFFSET);                   \
    unsigned int sz_ = __CORE_RELO(s, field, BYTE_SIZE);                         \
    unsigned int lsh_ = __CORE_RELO(s, field, LSHIFT_U64);                       \
    unsigned int rsh_ = __CORE_RELO(s, field, RSHIFT_U64);                       \
    unsigned long long mask_, val_, nval_ = (new_val);                           \
    unsigned int rpad_ = rsh_ - lsh_;                                            \
    asm volatile("" : "+r"(p_));                                                 \
    switch (sz_) {                                                               \
    case 1: val_ = *(unsigned char *)p_; break;                                  \
    case 2: val_ = *(unsigned short *)p_; break;                                 \
    case 4: val_ = *(unsigned int *)p_; break;                                   \
    default: val_ = *(unsigned long long *)p_; break;                            \
    }                                                                            \
    mask_ = (~0ULL << rsh_) >> lsh_;                                             \
    val_ = (val_ & ~mask_) | ((nval_ << rpad_) & mask_);                         \
    switch (sz_) {                                                               \
    case 1: *(unsigned char *)p_ = val_; break;                                  \
    case 2: *(unsigned short *)p_ = val_; break;                                 \
    case 4: *(unsigned int *)p_ = val_; break;                                   \
    default: *(unsigned long long *)p_ = val_; break;                            \
    }                                                                            \
})

SEC("uprobe/./app:compute")
int bitfield_roundtrip(void *ctx)
{
    struct graft_bits v;
    __builtin_memset(&v, 0, sizeof(v));
    WRITE_BITFIELD(&v, b2, 3);
    WRITE_BITFIELD(&v, s4, -2);
    WRITE_BITFIELD(&v, b7, 100);
    /* 3 + 100 * 4 + (-2 + 16) * 1024 */
    return BPF_CORE_READ_BITFIELD(&v, b2) + BPF_CORE_READ_BITFIELD(&v, b7) * 4 +
           (BPF_CORE_READ_BITFIELD(&v, s4) + 16) * 1024;
}
