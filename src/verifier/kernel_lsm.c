/*
 * kernel_lsm.c - the kernel's rules for LSM programs (SEC("lsm/HOOK"),
 * BPF_LSM_MAC), as Linux 6.12's kernel/bpf/bpf_lsm.c and check_return_code
 * have them, for offline verdicts (graft never runs LSM programs):
 *  - some hooks may not be attached at all (bpf_lsm_disabled_hooks: their
 *    callers cannot take a BPF program's result): the kernel refuses the
 *    program before verifying it ("points to disabled hook");
 *  - hooks returning void take any r0 (nothing reads it);
 *  - the hooks in bool_lsm_hooks return 0 or 1;
 *  - every other hook returns 0 or a negative errno: [-MAX_ERRNO, 0].
 * The hook names are the kernel's (include/linux/lsm_hook_defs.h).
 */
#include <string.h>

#include "loader/loader.h"   /* enum gprog_ktype only */
#include "verifier/verifier.h"

#define MAX_ERRNO 4095

static const char *const disabled_hooks[] = {
    "vm_enough_memory", "inode_need_killpriv", "inode_getsecurity", "inode_listsecurity",
    "inode_copy_up_xattr", "getselfattr", "getprocattr", "setprocattr", "key_getsecurity",
    "audit_rule_match", "xfrm_decode_session", "ismaclabel",
};

static const char *const bool_hooks[] = {
    "xfrm_state_pol_flow_match", "audit_rule_known", "inode_xattr_skipcap",
};

/* LSM_HOOK(void, LSM_RET_VOID, ...) */
static const char *const void_hooks[] = {
    "bprm_committing_creds", "bprm_committed_creds", "sb_delete", "sb_free_security",
    "sb_free_mnt_opts", "path_post_mknod", "inode_free_security", "inode_free_security_rcu",
    "inode_post_create_tmpfile", "inode_post_setattr", "inode_post_setxattr", "inode_post_removexattr",
    "inode_post_set_acl", "inode_post_remove_acl", "inode_getsecid", "file_release",
    "file_free_security", "backing_file_free", "file_set_fowner", "task_free",
    "cred_free", "cred_transfer", "cred_getsecid", "current_getsecid_subj",
    "task_getsecid_obj", "task_to_inode", "ipc_getsecid", "msg_msg_free_security",
    "msg_queue_free_security", "shm_free_security", "sem_free_security", "d_instantiate",
    "release_secctx", "inode_invalidate_secctx", "sk_free_security", "sk_clone_security",
    "sk_getsecid", "sock_graft", "inet_csk_clone", "inet_conn_established",
    "secmark_refcount_inc", "secmark_refcount_dec", "req_classify_flow", "sctp_sk_clone",
    "xfrm_policy_free_security", "xfrm_state_free_security", "key_post_create_or_update", "audit_rule_free",
    "bpf_map_free", "bpf_prog_free", "bpf_token_free", "initramfs_populated",
    "bdev_free_security",
};

static bool listed(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(list[i], name))
            return true;
    return false;
}
#define LISTED(l, name) listed(l, sizeof(l) / sizeof(l[0]), name)

void gver_policy_kernel_lsm(struct gver_policy *p, const char *hook)
{
    if (!p || !hook)
        return;
    if (LISTED(disabled_hooks, hook)) {
        p->kernel_refused = "the attach point is a disabled LSM hook (bpf_lsm_disabled_hooks): "
                            "the kernel refuses programs for it";
        return;
    }
    if (LISTED(void_hooks, hook))
        return;
    p->ret_checked = 1;
    p->ret_min = LISTED(bool_hooks, hook) ? 0 : -MAX_ERRNO;
    p->ret_max = LISTED(bool_hooks, hook) ? 1 : 0;
}
