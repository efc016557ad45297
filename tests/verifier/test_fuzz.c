/*
 * test_fuzz.c - soundness fuzzing of the verifier: generate random programs
 * biased toward what can go wrong (ctx/stack/map value accesses with and
 * without bounds checks, map lookups with and without null checks,
 * branches, loops, pointer copies and arithmetic); every program the
 * verifier accepts must run on the VM's checked interpreter, with several
 * random contexts and map contents, without a violation. One violation is a
 * verifier bug: the program is printed so it can become a corpus case.
 *
 * Every other program is verified without the Spectre rules (the kernel's
 * root rule), and each accepted one also runs on the JIT given the
 * verifier's facts (gver_input.record_facts) against the interpreter: the
 * same r0 and map contents, or a fact (or its use) is wrong.
 *
 * Also guards against a vacuous run: a minimum number of accepted programs
 * must have touched memory through ctx or map value pointers, and a
 * minimum must have had instructions the facts rewrote.
 *
 * Usage: test_verifier_fuzz [seconds (default 30)] [seed]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vm/jit_opt.h"
#include "vm/vm.h"
#include "vtest.h"

static uint64_t rs;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static int rn(int n) { return (int)(rnd() % (uint64_t)n); }

#define MAXS 64
struct snip {
    struct bpf_insn in[24];
    int n;
    int jump_over;             /* in[0] is a forward jump over this many snippets */
};

static const uint8_t jops[] = { BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JLE,
                                BPF_JSGT, BPF_JSGE, BPF_JSLT, BPF_JSLE, BPF_JSET };
static const uint8_t aops[] = { BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH,
                                BPF_RSH, BPF_MOD, BPF_XOR, BPF_ARSH };
static const uint8_t sizes[] = { BPF_B, BPF_H, BPF_W, BPF_DW };
static const int scal[] = { BPF_R2, BPF_R3, BPF_R4, BPF_R5, BPF_R9, BPF_R0 };

static int small_imm(void)
{
    static const int v[] = { 0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 255, -1, -8, 1024 };
    return rn(4) ? v[rn(sizeof(v) / sizeof(v[0]))] : (int)rnd();
}

static int rand_off(int lim)
{
    return rn(8) ? rn(lim) - rn(3) : rn(2 * lim) - lim;
}

#define ADD(x) (s->in[s->n++] = (x))

static void gen_snip(struct snip *s, int nsnips_left)
{
    s->n = 0;
    s->jump_over = 0;
    int a = scal[rn(6)], b = scal[rn(6)];
    switch (rn(18)) {
    case 0: case 1: {          /* ALU on scalars */
        uint8_t op = aops[rn(sizeof(aops))];
        bool is64 = rn(4) != 0;
        if ((op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH) && !rn(2))
            ADD(BPF_INSN((is64 ? BPF_ALU64 : BPF_ALU) | op | BPF_K, a, 0, 0, rn(is64 ? 64 : 32)));
        else if (rn(2))
            ADD(BPF_INSN((is64 ? BPF_ALU64 : BPF_ALU) | op | BPF_K, a, 0, 0, small_imm()));
        else
            ADD(BPF_INSN((is64 ? BPF_ALU64 : BPF_ALU) | op | BPF_X, a, b, 0, 0));
        break;
    }
    case 2: {                  /* load from ctx (r7) */
        uint8_t sz = sizes[rn(4)];
        ADD(BPF_LDX_MEM(sz, a, BPF_R7, rand_off(72)));
        break;
    }
    case 3: {                  /* stack store then maybe load */
        uint8_t sz = sizes[rn(4)];
        int off = -rn(40) - 1;
        if (rn(2))
            ADD(BPF_ST_MEM(sz, BPF_R10, off, small_imm()));
        else
            ADD(BPF_STX_MEM(sz, BPF_R10, a, off));
        if (rn(2))
            ADD(BPF_LDX_MEM(sizes[rn(4)], b, BPF_R10, -rn(40) - 1));
        break;
    }
    case 4: case 5: {          /* bounded index into the map value (r6) */
        static const int masks[] = { 7, 15, 24, 31, 63 };
        int mask = masks[rn(5)];
        ADD(BPF_MOV64_REG(BPF_R1, BPF_R6));
        if (rn(3)) {
            ADD(BPF_ALU64_IMM(BPF_AND, a, mask));
        } else if (rn(2)) {
            ADD(BPF_JMP_IMM(jops[rn(6)], a, mask, 2));
            ADD(BPF_JMP_A(0));
        } else {
            /* bound a copy (or a spilled copy), use the original */
            int cp = a == BPF_R9 ? BPF_R2 : BPF_R9;
            if (rn(2)) {
                ADD(BPF_MOV64_REG(cp, a));
            } else {
                ADD(BPF_STX_MEM(BPF_DW, BPF_R10, a, -48));
                ADD(BPF_LDX_MEM(BPF_DW, cp, BPF_R10, -48));
            }
            if (rn(4) == 0)
                ADD(BPF_ALU64_IMM(BPF_ADD, rn(2) ? cp : a, 1));
            ADD(BPF_JMP_IMM(jops[rn(6)], cp, mask, 2));
            ADD(BPF_JMP_A(0));
        }
        ADD(BPF_ALU64_REG(BPF_ADD, BPF_R1, a));
        if (rn(2))
            ADD(BPF_LDX_MEM(sizes[rn(4)], b, BPF_R1, rn(12) - 2));
        else
            ADD(BPF_ST_MEM(sizes[rn(4)], BPF_R1, rn(12) - 2, 1));
        break;
    }
    case 6: {                  /* direct map value access */
        if (rn(2))
            ADD(BPF_LDX_MEM(sizes[rn(4)], a, BPF_R6, rand_off(34)));
        else
            ADD(BPF_STX_MEM(sizes[rn(4)], BPF_R6, b, rand_off(34)));
        break;
    }
    case 7: {                  /* null check of r6 (or the copy in r8) */
        ADD(BPF_JMP_IMM(rn(2) ? BPF_JEQ : BPF_JNE, rn(3) ? BPF_R6 : BPF_R8, 0, 0));
        s->jump_over = 1 + rn(nsnips_left > 3 ? 3 : nsnips_left + 1);
        break;
    }
    case 8: case 9: {          /* forward branch on scalars */
        if (rn(2))
            ADD(BPF_INSN(BPF_JMP | jops[rn(sizeof(jops))] | BPF_K, a, 0, 0, small_imm()));
        else
            ADD(BPF_INSN((rn(3) ? BPF_JMP : BPF_JMP32) | jops[rn(sizeof(jops))] | BPF_X, a, b, 0, 0));
        s->jump_over = 1 + rn(nsnips_left > 3 ? 3 : nsnips_left + 1);
        break;
    }
    case 10: {                 /* bounded loop writing the stack */
        int cnt = 1 + rn(12), stride = 1 << rn(4);
        ADD(BPF_MOV64_IMM(BPF_R1, 0));
        ADD(BPF_MOV64_REG(BPF_R3, BPF_R10));
        ADD(BPF_ALU64_IMM(BPF_ADD, BPF_R3, -(cnt * stride) - rn(3) + 1));
        ADD(BPF_MOV64_REG(BPF_R2, BPF_R3));
        ADD(BPF_ALU64_REG(BPF_ADD, BPF_R2, BPF_R1));
        ADD(BPF_ST_MEM(BPF_B, BPF_R2, 0, 5));
        ADD(BPF_ALU64_IMM(BPF_ADD, BPF_R1, stride));
        ADD(BPF_JMP_IMM(BPF_JLT, BPF_R1, cnt * stride, -5));
        break;
    }
    case 11: {                 /* pointer copies and arithmetic */
        int r = rn(3);
        if (r == 0)
            ADD(BPF_MOV64_REG(BPF_R8, BPF_R6));
        else if (r == 1)
            ADD(BPF_ALU64_IMM(BPF_ADD, BPF_R8, rn(17) - 8));
        else {
            ADD(BPF_MOV64_REG(BPF_R8, BPF_R10));
            ADD(BPF_ALU64_IMM(BPF_ADD, BPF_R8, -8 * rn(8) - 8));
        }
        if (rn(2))
            ADD(BPF_LDX_MEM(sizes[rn(4)], a, BPF_R8, rn(16) - 8));
        break;
    }
    case 12: {                 /* helper call, then re-initialise the argument registers */
        if (rn(2)) {
            ADD(BPF_CALL_HELPER(5));
        } else {
            ADD(BPF_MOV64_REG(BPF_R1, BPF_R10));
            ADD(BPF_ALU64_IMM(BPF_ADD, BPF_R1, -32));
            ADD(BPF_MOV64_IMM(BPF_R2, 8 * rn(5)));
            ADD(BPF_MOV64_IMM(BPF_R3, 0));
            ADD(BPF_CALL_HELPER(4));
        }
        for (int r = BPF_R1; r <= BPF_R5; r++)
            if (r != BPF_R1 || rn(4))
                ADD(BPF_MOV64_IMM(r, rn(20)));
        ADD(BPF_MOV64_REG(BPF_R1, BPF_R7));
        break;
    }
    case 13: {                 /* spill and fill of a pointer or scalar */
        int src = rn(2) ? BPF_R6 : a;
        int off = -8 * (1 + rn(5));
        ADD(BPF_STX_MEM(BPF_DW, BPF_R10, src, off));
        ADD(BPF_LDX_MEM(BPF_DW, rn(2) ? BPF_R8 : b, BPF_R10, off + (rn(6) ? 0 : 4)));
        break;
    }
    case 14: {                 /* variable stack access */
        static const int vm_[] = { 7, 15, 31 };
        ADD(BPF_ALU64_IMM(BPF_AND, a, vm_[rn(3)]));
        ADD(BPF_MOV64_REG(BPF_R8, BPF_R10));
        ADD(BPF_ALU64_IMM(BPF_ADD, BPF_R8, -32));
        ADD(BPF_ALU64_REG(BPF_ADD, BPF_R8, a));
        ADD(BPF_LDX_MEM(sizes[rn(3)], b, BPF_R8, 0));
        break;
    }
    case 16:                   /* a constant that differs by path, used where nothing */
        if (a != b) {          /* checks it (a path pruned at the join may hold the other) */
            int c = scal[rn(6)];
            ADD(BPF_MOV64_IMM(a, small_imm()));
            ADD(BPF_JMP_IMM(jops[rn(sizeof(jops))], b, small_imm(), 1));
            ADD(rn(3) ? BPF_MOV64_IMM(a, small_imm()) : s->in[0]);
            ADD(BPF_ALU64_REG(rn(2) ? BPF_ADD : BPF_MOV, c, a));
            break;
        }
        /* fall through */
    case 15:
        if (rn(2)) {           /* ring buffer sample: reserve, null check, write, release */
            struct bpf_insn ld[2] = { BPF_LD_IMM64_RAW(BPF_R1, BPF_PSEUDO_MAP_IDX, 2) };
            int sz = 8 << rn(3);
            ADD(ld[0]);
            ADD(ld[1]);
            ADD(BPF_MOV64_IMM(BPF_R2, sz));
            ADD(BPF_MOV64_IMM(BPF_R3, 0));
            ADD(BPF_CALL_HELPER(131));
            ADD(BPF_JMP_IMM(BPF_JEQ, BPF_R0, 0, rn(8) ? 4 : 3));
            ADD(BPF_ST_MEM(sizes[rn(4)], BPF_R0, rand_off(sz + 4), 7));
            ADD(BPF_MOV64_REG(BPF_R1, BPF_R0));
            ADD(BPF_MOV64_IMM(BPF_R2, 0));
            ADD(BPF_CALL_HELPER(rn(2) ? 132 : 133));
            if (rn(6) == 0)
                ADD(BPF_LDX_MEM(BPF_B, BPF_R2, BPF_R1, 0));   /* use after release */
            ADD(BPF_MOV64_IMM(BPF_R0, 0));
            for (int r = BPF_R1; r <= BPF_R5; r++)
                ADD(BPF_MOV64_IMM(r, rn(20)));
            ADD(BPF_MOV64_REG(BPF_R1, BPF_R7));
            break;
        }
        /* fall through */
    default: {                 /* scalar moves and movsx */
        if (rn(3))
            ADD(BPF_MOV64_REG(a, b));
        else
            {
            static const int sx[] = { 8, 16, 32 };
            ADD(BPF_INSN(BPF_ALU64 | BPF_MOV | BPF_X, a, b, sx[rn(3)], 0));
        }
        break;
    }
    }
}

/* Prologue: r7 = ctx, scalars set, r6 = map value (or NULL) from a lookup. */
static uint32_t gen_prog(struct bpf_insn *out)
{
    uint32_t n = 0;
    out[n++] = BPF_MOV64_REG(BPF_R7, BPF_R1);
    out[n++] = BPF_ST_MEM(BPF_W, BPF_R10, -4, rn(3));
    /* zero a few stack slots so loads have something to find */
    for (int i = 0; i < 4; i++)
        if (rn(2))
            out[n++] = BPF_ST_MEM(BPF_DW, BPF_R10, -8 * (i + 2), 0);
    out[n++] = BPF_MOV64_REG(BPF_R2, BPF_R10);
    out[n++] = BPF_ALU64_IMM(BPF_ADD, BPF_R2, -4);
    struct bpf_insn ld[2] = { BPF_LD_IMM64_RAW(BPF_R1, BPF_PSEUDO_MAP_IDX, rn(2)) };
    out[n++] = ld[0];
    out[n++] = ld[1];
    out[n++] = BPF_CALL_HELPER(1);
    out[n++] = BPF_MOV64_REG(BPF_R6, BPF_R0);
    out[n++] = BPF_MOV64_REG(BPF_R8, BPF_R0);
    if (rn(4)) {
        out[n++] = BPF_JMP_IMM(BPF_JNE, BPF_R6, 0, 2);
        out[n++] = BPF_MOV64_IMM(BPF_R0, 0);
        out[n++] = BPF_EXIT_INSN();
    }
    out[n++] = BPF_MOV64_REG(BPF_R1, BPF_R7);
    for (int i = 0; i < 6; i++) {
        int r = scal[i];
        if (rn(3))
            out[n++] = BPF_LDX_MEM(sizes[rn(4)], r, BPF_R1, 8 * rn(8));
        else if (rn(16))
            out[n++] = BPF_MOV64_IMM(r, small_imm());
    }

    struct snip sn[MAXS];
    int ns = 3 + rn(14);
    for (int i = 0; i < ns; i++)
        gen_snip(&sn[i], ns - i - 1);
    /* lay out: a jump over k snippets lands at the start of snippet i+k (or the epilogue) */
    uint32_t start[MAXS + 1];
    uint32_t pos = n;
    for (int i = 0; i < ns; i++) {
        start[i] = pos;
        pos += (uint32_t)sn[i].n;
    }
    start[ns] = pos;
    for (int i = 0; i < ns; i++) {
        if (sn[i].jump_over) {
            int t = i + sn[i].jump_over;
            if (t > ns)
                t = ns;
            sn[i].in[0].off = (int16_t)(start[t] - start[i] - 1);
        }
        memcpy(&out[n], sn[i].in, sn[i].n * sizeof(struct bpf_insn));
        n += (uint32_t)sn[i].n;
    }
    if (rn(2))
        out[n++] = BPF_MOV64_IMM(BPF_R0, 0);
    out[n++] = BPF_EXIT_INSN();
    return n;
}

/* Does the program access memory through a register other than the frame
 * pointer and the ctx copy in r7 (so: map values, copies, derived pointers)? */
static int touches_memory(const struct bpf_insn *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint8_t c = BPF_CLASS(p[i].code);
        if (c == BPF_LDX && p[i].src_reg != BPF_R10 && p[i].src_reg != BPF_R7 && p[i].src_reg != BPF_R1)
            return 1;
        if ((c == BPF_ST || c == BPF_STX) && p[i].dst_reg != BPF_R10 && p[i].dst_reg != BPF_R7)
            return 1;
    }
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void dump(const struct bpf_insn *p, uint32_t n)
{
    char buf[128];
    for (uint32_t i = 0; i < n; i++) {
        gvm_insn_str(p, n, i, buf, sizeof(buf));
        printf("  %3u: %s\n", i, buf);
        if (bpf_is_ld_imm64(&p[i]))
            i++;
    }
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 30;
    rs = argc > 2 ? strtoull(argv[2], NULL, 0) : (uint64_t)time(NULL) * 2654435761u + 1;
    printf("seed %llu, %.0f s\n", (unsigned long long)rs, secs);
    ghelper_set_trace_sink(NULL, NULL);
    struct gmap_def maps[3] = {
        { .type = GMAP_ARRAY, .key_size = 4, .value_size = 32, .max_entries = 2, .name = "arr" },
        { .type = GMAP_HASH, .key_size = 4, .value_size = 32, .max_entries = 8, .name = "hash" },
        { .type = GMAP_RINGBUF, .max_entries = 4096, .name = "rb" },
    };
    struct gver_policy *pol = gver_policy_raw(64), *pol_nospec = gver_policy_raw(64);
    if (!pol || !pol_nospec)
        return 2;
    pol_nospec->spec_bypass = 1;
    uint64_t diffed = 0, rewritten = 0, mismatches = 0;
    struct bpf_insn prog[MAXS * 24 + 64];
    uint64_t total = 0, accepted = 0, acc_mem = 0, violations = 0, run = 0, acc_rb = 0;
    double t0 = now();
    while (now() - t0 < secs) {
        uint64_t seed = rs;
        uint32_t n = gen_prog(prog);
        struct gver_input in = { .insns = prog, .n = n, .maps = maps, .n_maps = 3,
                                 .policy = total & 1 ? pol_nospec : pol, .record_facts = 1 };
        struct gver_result res;
        struct graft_err err;
        total++;
        if (gver_verify(&in, &res, &err)) {
            printf("FAIL: verifier error: %s\n", err.msg);
            return 1;
        }
        if (getenv("FUZZ_REASONS") && !res.accepted)
            printf("R %s\n", res.reason);
        if (res.accepted) {
            accepted++;
            int mem = touches_memory(prog, n);
            char msg[1024];
            int x = vt_run_checked(prog, n, maps, 3, 64, 6, seed, msg, sizeof(msg));
            if (x == 1) {
                violations++;
                printf("VERIFIER BUG: accepted program violates safety: %s\n", msg);
                dump(prog, n);
                if (violations >= 3)
                    break;
            } else if (x == 0) {
                run++;
                acc_mem += mem;
                for (uint32_t i = 0; i < n; i++)
                    if (prog[i].code == (BPF_JMP | BPF_CALL) && prog[i].imm == 131) {
                        acc_rb++;
                        break;
                    }
            }
            struct bpf_insn copy[MAXS * 24 + 64];
            memcpy(copy, prog, n * sizeof(*prog));
            int changed = gvm_apply_facts(copy, n, res.facts);
            x = vt_run_diff_facts(prog, n, maps, 3, 64, 4, seed, &res, msg, sizeof(msg));
            if (x == 1) {
                mismatches++;
                printf("JIT WITH FACTS DISAGREES with the interpreter (%d insns rewritten): %s\n",
                       changed, msg);
                dump(prog, n);
                if (mismatches >= 3)
                    break;
            } else if (x == 0) {
                diffed++;
                rewritten += changed > 0;
            }
        }
        gver_result_free(&res);
    }
    free(pol);
    free(pol_nospec);
    printf("%llu accepted programs ran on the JIT with the verifier's facts against the interpreter, "
           "%llu of them rewritten by the facts, %llu disagreed\n", (unsigned long long)diffed,
           (unsigned long long)rewritten, (unsigned long long)mismatches);
    printf("%llu programs, %llu accepted (%.1f%%), %llu run checked, %llu accessing map values or derived pointers, %llu violations\n",
           (unsigned long long)total, (unsigned long long)accepted,
           total ? 100.0 * accepted / total : 0.0, (unsigned long long)run,
           (unsigned long long)acc_mem, (unsigned long long)violations);
    if (violations || mismatches)
        return 1;
    printf("%llu accepted programs used ring buffer samples\n", (unsigned long long)acc_rb);
    if (acc_mem < 100 || acc_rb < 20 || accepted * 20 < total || rewritten < 50) {
        printf("FAIL: fuzzing was vacuous: too few accepted programs touching memory\n");
        return 1;
    }
    return 0;
}
