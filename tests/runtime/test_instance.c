/*
 * test_instance.c - programs bound to real maps through grt_instance_create:
 * map references, direct value access (global data), inline array and
 * per-CPU array lookups in the JIT, and out-of-range keys, on both engines;
 * tail calls only into programs verified under the caller's policy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/instance.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); failures++; } } while (0)

/* For k in 0..4 (k = 4 is out of range): v = lookup(map, k); if v, *v += 1.
 * r0 = number of lookups that returned NULL. Map 0 is an array, map 1 a
 * per-CPU array, map 2 global data (value bytes 8..15 get 7 added). */
static const char *text =
    "mov r6, 0\n"
    "mov r7, 0\n"
    "loop:\n"
    "stxw [r10-4], r6\n"
    "lddw r1, mapidx:MAP\n"
    "mov r2, r10\n"
    "add r2, -4\n"
    "call 1\n"
    "jne r0, 0, found\n"
    "add r7, 1\n"
    "ja next\n"
    "found:\n"
    "mov r1, 1\n"
    "lock add64 [r0+0], r1\n"
    "next:\n"
    "add r6, 1\n"
    "jlt r6, 5, loop\n"
    "lddw r1, mapidxval:2+8\n"
    "ldxdw r2, [r1+0]\n"
    "add r2, 7\n"
    "stxdw [r1+0], r2\n"
    "mov r0, r7\n"
    "exit\n";

static struct gmap *make(uint32_t type, uint32_t value_size, uint32_t max)
{
    struct gmap_def def = { .type = type, .key_size = 4, .value_size = value_size, .max_entries = max };
    struct gmap *m;
    struct graft_err err = {0};
    if (gmap_create(&def, -1, &m, &err) < 0) {
        fprintf(stderr, "gmap_create: %s\n", err.msg);
        exit(2);
    }
    return m;
}

static uint64_t sum_all_cpus(struct gmap *m, uint32_t key)
{
    int ncpu = gmap_possible_cpus();
    uint64_t *vals = calloc((size_t)ncpu, 8), sum = 0;
    if (gmap_lookup_copy(m, &key, vals) == 0)
        for (int c = 0; c < ncpu; c++)
            sum += vals[c];
    free(vals);
    return sum;
}

static struct grt_instance *tc_targets[3];    /* by id: 1 same policy, 2 another */

static const struct gvm_prog *tc_by_id(uint32_t id, void *arg, uint64_t *policy_tag)
{
    (void)arg;
    if (id < 1 || id > 2)
        return NULL;
    *policy_tag = tc_targets[id]->policy_tag;
    return tc_targets[id]->prog;
}

static struct grt_instance *tc_prog(const char *src, struct gmap *arr, enum gvm_engine engine,
                                    uint64_t tag)
{
    struct bpf_insn *insns;
    uint32_t n;
    struct graft_err err = {0};
    struct grt_instance *inst = NULL;
    if (gvm_asm(src, &insns, &n, &err) < 0 ||
        grt_instance_create(insns, n, &arr, 1, engine, &inst, &err) < 0) {
        fprintf(stderr, "tail-call program: %s\n", err.msg);
        exit(2);
    }
    free(insns);
    inst->policy_tag = tag;
    return inst;
}

/* A prog array holding, in slot 0, a program verified under the caller's
 * policy and, in slot 1, one verified under another (say a socket program
 * whose 4096-byte context the caller's 168-byte pt_regs is not): the tail
 * call to slot 0 is taken, the one to slot 1 falls through. */
static void test_tail_call_policy(void)
{
    struct gmap_def def = { .type = 3 /* PROG_ARRAY */, .key_size = 4, .value_size = 4, .max_entries = 2 };
    struct gmap *arr;
    struct graft_err err = {0};
    if (gmap_create(&def, -1, &arr, &err) < 0) {
        fprintf(stderr, "gmap_create: %s\n", err.msg);
        exit(2);
    }
    for (uint32_t k = 0; k < 2; k++) {
        uint32_t id = k + 1;
        CHECK(gmap_update_copy(arr, &k, &id, 0) == 0);
    }
    grt_set_prog_resolver(tc_by_id, NULL);
    for (int engine = GVM_ENGINE_JIT; engine <= GVM_ENGINE_INTERP; engine++) {
        tc_targets[1] = tc_prog("mov r0, 42\nexit\n", arr, engine, 0x1111);
        tc_targets[2] = tc_prog("ldxdw r0, [r1+4000]\nexit\n", arr, engine, 0x2222);
        struct grt_instance *to_same = tc_prog("lddw r2, mapidx:0\nmov r3, 0\ncall 12\nmov r0, 7\nexit\n",
                                               arr, engine, 0x1111);
        struct grt_instance *to_other = tc_prog("lddw r2, mapidx:0\nmov r3, 1\ncall 12\nmov r0, 7\nexit\n",
                                                arr, engine, 0x1111);
        uint64_t ctx[21] = {0}, r0 = 0;
        CHECK(gvm_prog_run(to_same->prog, ctx, sizeof(ctx), &r0, &err) == 0 && r0 == 42);
        r0 = 0;
        CHECK(gvm_prog_run(to_other->prog, ctx, sizeof(ctx), &r0, &err) == 0 && r0 == 7);
        grt_instance_free(to_same);
        grt_instance_free(to_other);
        grt_instance_free(tc_targets[1]);
        grt_instance_free(tc_targets[2]);
    }
    grt_set_prog_resolver(NULL, NULL);
    char name[128];
    snprintf(name, sizeof(name), "%s", gmap_shm_name(arr));
    gmap_close(arr);
    gmap_unlink(name);
}

int main(void)
{
    test_tail_call_policy();
    struct gmap *maps[3] = { make(2 /* ARRAY */, 8, 4), make(6 /* PERCPU_ARRAY */, 8, 4), make(2, 16, 1) };
    for (int which = 0; which < 2; which++) {
        char *src = strdup(text);
        char *at = strstr(src, "MAP");
        at[0] = (char)('0' + which);
        at[1] = at[2] = ' ';
        struct bpf_insn *insns;
        uint32_t n;
        struct graft_err err = {0};
        if (gvm_asm(src, &insns, &n, &err) < 0) {
            fprintf(stderr, "asm: %s\n", err.msg);
            return 2;
        }
        for (int engine = GVM_ENGINE_JIT; engine <= GVM_ENGINE_INTERP; engine++) {
            struct grt_instance *inst;
            if (grt_instance_create(insns, n, maps, 3, engine, &inst, &err) < 0) {
                fprintf(stderr, "instance: %s\n", err.msg);
                failures++;
                continue;
            }
            uint64_t r0 = 0;
            for (int run = 0; run < 10; run++)
                CHECK(gvm_prog_run(inst->prog, NULL, 0, &r0, &err) == 0 && r0 == 1);
            grt_instance_free(inst);
        }
        free(insns);
        free(src);
    }
    /* 2 engines x 10 runs, each element incremented once per run. */
    for (uint32_t k = 0; k < 4; k++) {
        uint64_t v = 0;
        CHECK(gmap_lookup_copy(maps[0], &k, &v) == 0 && v == 20);
        CHECK(sum_all_cpus(maps[1], k) == 20);
    }
    uint32_t k0 = 0;
    uint64_t g[2] = {0};
    CHECK(gmap_lookup_copy(maps[2], &k0, g) == 0 && g[0] == 0 && g[1] == 2 * 2 * 10 * 7);
    /* A reference to a map slot the program does not have is a load error. */
    struct bpf_insn bad[] = { BPF_LD_IMM64_RAW(BPF_R1, BPF_PSEUDO_MAP_IDX, 7), BPF_MOV64_IMM(BPF_R0, 0), BPF_EXIT_INSN() };
    bad[0].imm = 7;
    bad[1].imm = 0;
    struct grt_instance *inst;
    struct graft_err err = {0};
    CHECK(grt_instance_create(bad, 4, maps, 3, GVM_ENGINE_JIT, &inst, &err) < 0);
    CHECK(strstr(err.msg, "map reference 7") != NULL);
    for (int i = 0; i < 3; i++) {
        char name[128];
        snprintf(name, sizeof(name), "%s", gmap_shm_name(maps[i]));
        gmap_close(maps[i]);
        gmap_unlink(name);
    }
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("instance: all checks passed\n");
    return 0;
}
