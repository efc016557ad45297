/*
 * test_kernel_rules.c - kernel rules of `graft verify --privileged` beyond
 * contexts and packets (those are test_packet.c's): LSM hooks' return
 * ranges and disabled hooks (kernel_lsm.c), and kernel kfuncs
 * (kernel_kfuncs.c): prototypes by name, KF_ACQUIRE / KF_RELEASE /
 * KF_RET_NULL references, per-type availability, and the open-coded
 * iterators' state machine. Each case is a program, a kernel type and
 * section, the kfuncs its object declares (by name: the loader's extern
 * index is the call's imm), and the verdict the kernel gives (with a
 * substring of graft's reason for rejections).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/loader.h"
#include "verifier/verifier.h"
#include "vm/vm.h"

struct kcase {
    const char *name;
    int ktype;
    const char *section;
    const char *expect;        /* NULL: accept; else a substring of the rejection */
    const char *text;
};

static const struct kcase cases[] = {
    /* LSM hooks (kernel/bpf/bpf_lsm.c) */
    { "lsm: errno hook returns 0", GKT_LSM, "lsm/file_mprotect", NULL, "mov r0, 0\nexit\n" },
    { "lsm: errno hook returns -4095", GKT_LSM, "lsm/file_mprotect", NULL, "mov r0, -4095\nexit\n" },
    { "lsm: errno hook returns -4096", GKT_LSM, "lsm/file_mprotect", "[-4095, 0]", "mov r0, -4096\nexit\n" },
    { "lsm: errno hook returns 1", GKT_LSM, "lsm/file_mprotect", "[-4095, 0]", "mov r0, 1\nexit\n" },
    { "lsm: sleepable errno hook returns 1", GKT_LSM, "lsm.s/bprm_check_security", "[-4095, 0]",
      "mov r0, 1\nexit\n" },
    { "lsm: bool hook returns 1", GKT_LSM, "lsm/audit_rule_known", NULL, "mov r0, 1\nexit\n" },
    { "lsm: bool hook returns 2", GKT_LSM, "lsm/audit_rule_known", "[0, 1]", "mov r0, 2\nexit\n" },
    { "lsm: void hook returns anything", GKT_LSM, "lsm/file_free_security", NULL, "mov r0, 4096\nexit\n" },
    { "lsm: disabled hook", GKT_LSM, "lsm/getprocattr", "disabled LSM hook", "mov r0, 0\nexit\n" },
};

int main(void)
{
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct kcase *c = &cases[i];
        struct bpf_insn *insns = NULL;
        uint32_t n = 0;
        struct graft_err err = { 0 };
        if (gvm_asm(c->text, &insns, &n, &err)) {
            printf("FAIL %s: does not assemble: %s\n", c->name, err.msg);
            failures++;
            continue;
        }
        struct gver_policy *pol = gver_policy_for_kernel_type(c->ktype);
        if (!pol) {
            printf("FAIL %s: no policy\n", c->name);
            free(insns);
            failures++;
            continue;
        }
        gver_policy_kernel_ret(pol, c->ktype, c->section);
        pol->allow_ptr_leaks = pol->allow_uninit_stack = 1;   /* the kernel's root rules */
        gver_policy_kernel_helpers(pol, c->ktype, 0);
        struct gver_input in = { .insns = insns, .n = n, .policy = pol };
        struct gver_result res;
        if (gver_verify(&in, &res, &err) < 0) {
            printf("FAIL %s: verifier error %s\n", c->name, err.msg);
            failures++;
        } else if (!c->expect && !res.accepted) {
            printf("FAIL %s: rejected: %s\n", c->name, res.reason);
            failures++;
        } else if (c->expect && res.accepted) {
            printf("FAIL %s: accepted, expected a rejection with \"%s\"\n", c->name, c->expect);
            failures++;
        } else if (c->expect && !strstr(res.reason, c->expect)) {
            printf("FAIL %s: rejected for \"%s\", expected \"%s\"\n", c->name, res.reason, c->expect);
            failures++;
        }
        gver_result_free(&res);
        free(pol);
        free(insns);
    }
    printf("%zu kernel rule cases, %d failures\n", sizeof(cases) / sizeof(cases[0]), failures);
    return failures ? 1 : 0;
}
