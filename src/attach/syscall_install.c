/*
 * syscall_install.c - gsys_install/gsys_uninstall: choose zpoline or the
 * seccomp fallback, mark the syscalls that always need the dispatcher, and
 * report what was done.
 *
 * Invariant: graft_sys_hooked[nr] has GSYS_H_SPECIAL for every number the
 * assembly fast path must not run by itself: rt_sigreturn (needs the
 * caller's stack), clone/clone3/vfork (child return path), mmap/mprotect/
 * pkey_mprotect (new code to rewrite), fork (the child's tid cache),
 * prctl (a PR_SET_NAME invalidates bpf_get_current_comm's cache: while the
 * hooks are installed, helpers are told so with
 * ghelper_comm_watch(GHELPER_COMM_SYSCALLS)).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>

#include "attach/syscall_hook.h"
#include "helpers/helpers.h"

static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;
static char note[1600];

static const int special_nrs[] = {
    SYS_rt_sigreturn, SYS_clone, SYS_clone3, SYS_vfork,
    SYS_mmap, SYS_mprotect, SYS_pkey_mprotect,
    SYS_fork,      /* the child's cached tid (the fast path reads it) */
    SYS_prctl,     /* PR_SET_NAME: the comm cache (gsys_run_plain) */
};

static void mark_special(int on)
{
    gsys_mark_special(special_nrs, sizeof(special_nrs) / sizeof(special_nrs[0]), on);
}

static int install_zpoline(uint32_t flags, struct graft_err *err)
{
    char n[256] = "";
    int e = gsys_page0_map(!!(flags & GSYS_F_SET_MMAP_MIN_ADDR), n, sizeof(n), err);
    if (e < 0)
        return e;
    if (n[0])
        snprintf(note, sizeof(note), "%s", n);
    e = gsys_scanner_init(err);
    if (e < 0)
        return e;
    /* Mark before rewriting: a rewritten clone may run at once. */
    mark_special(1);
    gsys_set_mode(GSYS_MODE_ZPOLINE);
    gsys_set_active(1);
    gsys_refresh_hooked();
    long r = gsys_scan_range(0, UINT64_MAX);
    if (r < 0) {
        gsys_set_active(0);
        gsys_set_mode(GSYS_MODE_NONE);
        return graft_errf(err, (int)r, "syscall hooks: scanning /proc/self/maps "
                          "failed: %s", strerror((int)-r));
    }
    return 0;
}

int gsys_install(const struct gsys_opts *opts, struct graft_err *err)
{
    uint32_t flags = opts ? opts->flags : 0;
    int e = 0;
    pthread_mutex_lock(&install_lock);
    if (gsys_is_active())
        goto out;
    if (gsys_install_mode() == GSYS_MODE_SECCOMP) {     /* filter still in place */
        gsys_set_active(1);
        gsys_refresh_hooked();
        goto out;
    }
    note[0] = '\0';
    if (!(flags & GSYS_F_FORCE_SECCOMP)) {
        struct graft_err zerr = {0};
        e = install_zpoline(flags, &zerr);
        if (e == 0 || (flags & GSYS_F_NO_FALLBACK)) {
            if (e < 0 && err)
                *err = zerr;
            goto out;
        }
        size_t used = strlen(note);
        snprintf(note + used, sizeof(note) - used, "%szpoline unavailable (%s); "
                 "using the seccomp SIGSYS fallback", used ? "; " : "", zerr.msg);
    } else {
        snprintf(note, sizeof(note), "seccomp fallback forced by GSYS_F_FORCE_SECCOMP");
    }
    gsys_set_mode(GSYS_MODE_SECCOMP);
    gsys_set_active(1);
    gsys_refresh_hooked();
    e = gsys_seccomp_install(err);
    if (e < 0) {
        gsys_set_active(0);
        gsys_set_mode(GSYS_MODE_NONE);
    }
out:
    /* every prctl now reaches the dispatcher (all file-backed code is
     * rewritten, or the filter traps it) */
    if (e == 0 && gsys_is_active())
        ghelper_comm_watch(GHELPER_COMM_SYSCALLS, 1);
    pthread_mutex_unlock(&install_lock);
    return e;
}

void gsys_uninstall(void)
{
    pthread_mutex_lock(&install_lock);
    if (gsys_is_active()) {
        ghelper_comm_watch(GHELPER_COMM_SYSCALLS, 0);   /* before prctl goes unseen */
        gsys_set_active(0);
        gsys_refresh_hooked();
        if (gsys_install_mode() == GSYS_MODE_ZPOLINE) {
            gsys_unrewrite_all();
            mark_special(0);
            /* page 0 stays mapped: a thread may still be inside the sled */
            gsys_set_mode(GSYS_MODE_NONE);
        }
    }
    pthread_mutex_unlock(&install_lock);
}

const char *gsys_method(void)
{
    if (!gsys_is_active())
        return "none";
    return gsys_install_mode() == GSYS_MODE_ZPOLINE ? "zpoline" : "seccomp";
}

const char *gsys_install_note(void)
{
    return note;
}
