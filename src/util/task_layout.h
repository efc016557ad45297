/*
 * task_layout.h - where the fields of the kernel's struct task_struct (and
 * of the cred, nsproxy and namespace structs it points to) lie, for the
 * synthetic task images bpf_get_current_task / bpf_get_current_task_btf
 * return (src/helpers/h_taskimg.c).
 *
 * Programs reach those fields through CO-RE: libbpf (under `graft compat`)
 * and graft's loader relocate field offsets against the kernel's BTF,
 * /sys/kernel/btf/vmlinux, when it is readable, else graft's loader uses its
 * built-in BTF (src/loader/builtin_btf.c). The images must be laid out like
 * the BTF the program was relocated against, so both come from here: the
 * kernel's offsets when its BTF is readable, otherwise graft's own compact
 * layout, which the built-in BTF then describes.
 *
 * An offset of -1 is a field this kernel does not have (or not with the
 * expected size): the image leaves it out. Every image is at most
 * GTASK_IMAGE_MAX bytes whatever the BTF says, and what the verifier lets a
 * program read directly is bounded by the same constant.
 */
#ifndef GRAFT_UTIL_TASK_LAYOUT_H
#define GRAFT_UTIL_TASK_LAYOUT_H

#include <stdint.h>

#define GTASK_IMAGE_MAX 16384u    /* bytes a task image spans at most */
#define GTASK_SMALL_MAX 1024u     /* bytes of a cred, nsproxy or namespace image */
#define GTASK_COMM_LEN  16

/* The namespaces nsproxy points to, in struct nsproxy's member order. */
enum gtask_ns { GTASK_NS_UTS, GTASK_NS_IPC, GTASK_NS_MNT, GTASK_NS_PID, GTASK_NS_NET, GTASK_NS_CGROUP,
                GTASK_NS_N };

struct gtask_layout {
    int from_kernel;               /* 1: offsets of /sys/kernel/btf/vmlinux */
    uint32_t task_size;            /* bytes of a task image (capped) */
    int32_t pid, tgid;             /* int */
    int32_t real_parent, parent, group_leader, nsproxy, cred, real_cred; /* pointers */
    int32_t comm;                  /* char[16] */
    int32_t flags;                 /* unsigned int, PF_* */
    int32_t exit_code, exit_signal;/* int */
    int32_t start_time, start_boottime; /* u64 ns */
    uint32_t cred_size;
    int32_t uid, gid, suid, sgid, euid, egid, fsuid, fsgid;  /* kuid_t/kgid_t in struct cred */
    uint32_t nsproxy_size;
    int32_t ns_ptr[GTASK_NS_N];    /* member of struct nsproxy */
    uint32_t ns_size[GTASK_NS_N];
    int32_t ns_inum[GTASK_NS_N];   /* ns.inum inside each namespace struct */
    int32_t ns_at[GTASK_NS_N];     /* its member ns (struct ns_common) */
    int32_t common_inum;           /* inum inside struct ns_common */
};

/* The nsproxy member and namespace struct names, for messages and the
 * built-in BTF. */
extern const char *const gtask_ns_member[GTASK_NS_N];
extern const char *const gtask_ns_struct[GTASK_NS_N];

/* Computed once per process (thread-safe); never NULL. */
const struct gtask_layout *gtask_layout(void);

/* The layout from the raw BTF in path (for tests); 0 or -errno. */
int gtask_layout_from_btf(const char *path, struct gtask_layout *out);
/* graft's own layout, used when the kernel's BTF cannot be read. */
void gtask_layout_builtin(struct gtask_layout *out);

#endif
