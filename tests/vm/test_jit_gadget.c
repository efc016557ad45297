/*
 * test_jit_gadget.c - the JIT never emits a WRPKRU/XRSTOR byte pattern
 * (util/pkru_pattern.h), whatever constants and layout an extension picks.
 *
 * Each program plants a pattern - WRPKRU (0f 01 ef), XRSTOR (0f ae /5),
 * XRSTOR64 with its REX prefix, XRSTORS (0f c7 /3) - at every byte offset
 * of an immediate it controls: mov imm64 (LD_IMM64), mov imm32 (zero- and
 * sign-extending), ALU imm32 of every kind, compare and test immediates,
 * multiply, division and modulo, store immediates (stack and ctx, with a
 * displacement right before the immediate), and across the boundary with
 * the next instruction; a rel8 and a rel32 jump offset made to hold one;
 * a helper placed so that the rel32 of `call` to it holds one; and a far
 * helper whose address (in the literal pool) holds one. Every
 * program must compile to code holding no pattern anywhere (scanned over
 * the whole emitted buffer) and compute what the interpreter computes.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test_util.h"
#include "util/pkru_pattern.h"

static uint64_t h_add(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)c; (void)d; (void)e;
    return a + b;
}

static uint64_t h_times3(uint64_t a, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    (void)b; (void)c; (void)d; (void)e;
    return a * 3;
}

static gvm_helper_fn helpers[BPF_MAX_HELPER_ID] = { [2] = h_add, [3] = h_times3, [4] = h_add };
static const struct gvm_env env = { .helpers = helpers };

struct pattern { const char *name; uint8_t b[4]; int len; };
static const struct pattern patterns[] = {
    { "wrpkru", { 0x0f, 0x01, 0xef }, 3 },
    { "xrstor [rdi]", { 0x0f, 0xae, 0x2f }, 3 },
    { "rex.w xrstor64 [rdi+d8]", { 0x48, 0x0f, 0xae, 0x6f }, 4 },
    { "xrstors [rax]", { 0x0f, 0xc7, 0x18 }, 3 },
};
#define N_PATTERNS (sizeof(patterns) / sizeof(patterns[0]))

static int n_programs;

/* The value of width bytes (filler 0x11) with pattern pt at byte k. */
static uint64_t planted(const struct pattern *pt, int k)
{
    uint64_t v = 0x1111111111111111ull;
    for (int b = 0; b < pt->len; b++) {
        v &= ~(0xffull << (8 * (k + b)));
        v |= (uint64_t)pt->b[b] << (8 * (k + b));
    }
    return v;
}

/* Where the executable mapping holding addr ends (/proc/self/maps), or
 * addr + fallback when it cannot tell. */
static const uint8_t *exec_end(const uint8_t *addr, size_t fallback)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512];
    uintptr_t lo, hi, end = (uintptr_t)addr + fallback;
    char perms[8];
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %7s", &lo, &hi, perms) == 3
            && lo <= (uintptr_t)addr && (uintptr_t)addr < hi && strchr(perms, 'x'))
            end = hi;
    if (f)
        fclose(f);
    return (const uint8_t *)end;
}

/* Offset of the first pattern in the executable bytes of p's code mapping
 * (code, padding and whatever data shares its pages), or -1. */
static long pattern_in_code(const struct gvm_prog *p)
{
    const uint8_t *code = gvm_prog_code(p);
    size_t len = (size_t)(exec_end(code, gvm_prog_code_size(p)) - code);
    size_t o = gpkru_find(code, len, 0);
    return o == len ? -1 : (long)o;
}

/* Compile insns on both engines, run each on its own copy of ctx: the JIT's
 * code must be clean and the results equal. Returns the JIT's program when
 * keep (the caller frees it). */
static struct gvm_prog *check_prog(const char *what, const struct bpf_insn *insns, uint32_t n,
                                   bool keep)
{
    struct gvm_prog *p[2] = { NULL, NULL };
    uint64_t r[2] = { 0, 0 };
    uint8_t ctx[2][64];
    struct graft_err err;

    n_programs++;
    for (int e = 0; e < 2; e++) {
        for (int k = 0; k < 64; k++)
            ctx[e][k] = (uint8_t)(k * 7);
        struct gvm_prog_opts o = { .sz = sizeof(o), .env = &env,
                                   .engine = e ? GVM_ENGINE_INTERP : GVM_ENGINE_JIT };
        if (gvm_prog_create(insns, n, &o, &p[e], &err) != 0) {
            CHECK(0, "%s: %s: %s", what, e ? "interpreter" : "JIT", err.msg);
            gvm_prog_free(p[0]);
            return NULL;
        }
        CHECK(gvm_prog_run(p[e], ctx[e], sizeof(ctx[e]), &r[e], &err) == 0, "%s: run: %s",
              what, err.msg);
    }
    long at = pattern_in_code(p[0]);
    CHECK(at < 0, "%s: WRPKRU/XRSTOR pattern in the JIT's code at offset %ld", what, at);
    CHECK(r[0] == r[1], "%s: JIT r0 %#" PRIx64 ", interpreter %#" PRIx64, what, r[0], r[1]);
    CHECK(memcmp(ctx[0], ctx[1], sizeof(ctx[0])) == 0, "%s: ctx differs", what);
    gvm_prog_free(p[1]);
    if (keep)
        return p[0];
    gvm_prog_free(p[0]);
    return NULL;
}

#define LD64(d, v) BPF_LD_IMM64_RAW(d, 0, v)

/* ---- immediates at every byte offset ------------------------------------ */

static void test_imm64(void)
{
    char what[128];
    for (size_t pi = 0; pi < N_PATTERNS; pi++) {
        const struct pattern *pt = &patterns[pi];
        for (int k = 0; k + pt->len <= 8; k++) {
            uint64_t v = planted(pt, k);
            for (int reg = 0; reg <= 9; reg += 3) {      /* rax, rdx, r13 (r0 r3 r6 r9) */
                struct bpf_insn p[] = { LD64(reg, v), BPF_MOV64_REG(0, reg),
                                        BPF_ALU64_IMM(BPF_ADD, 0, 1), BPF_EXIT_INSN() };
                snprintf(what, sizeof(what), "mov r%d, imm64 (%s at byte %d)", reg, pt->name, k);
                check_prog(what, p, sizeof(p) / sizeof(p[0]), false);
            }
            /* the same value stored to the stack (a register slot) and ctx */
            struct bpf_insn s[] = { LD64(2, v), BPF_STX_MEM(BPF_DW, 10, 2, -8),
                                    BPF_STX_MEM(BPF_DW, 1, 2, 8),
                                    BPF_LDX_MEM(BPF_DW, 0, 10, -8), BPF_EXIT_INSN() };
            snprintf(what, sizeof(what), "imm64 through memory (%s at byte %d)", pt->name, k);
            check_prog(what, s, sizeof(s) / sizeof(s[0]), false);
        }
    }
}

static void test_imm32(void)
{
    static const uint8_t alu_ops[] = { BPF_ADD, BPF_SUB, BPF_OR, BPF_AND, BPF_XOR, BPF_MUL,
                                       BPF_DIV, BPF_MOD, BPF_MOV };
    static const uint8_t jmp_ops[] = { BPF_JEQ, BPF_JGT, BPF_JSET, BPF_JSLT };
    char what[128];
    for (size_t pi = 0; pi < N_PATTERNS; pi++) {
        const struct pattern *pt = &patterns[pi];
        for (int k = 0; k + pt->len <= 4; k++) {
            int32_t v = (int32_t)(uint32_t)planted(pt, k);
            for (size_t o = 0; o < sizeof(alu_ops); o++) {
                for (int w = 0; w < 2; w++) {
                    uint8_t cls = w ? BPF_ALU64 : BPF_ALU;
                    struct bpf_insn p[] = {
                        LD64(0, 0x123456789abcdef0ull), LD64(3, 0xfedcba9876543210ull),
                        BPF_INSN(cls | alu_ops[o] | BPF_K, 0, 0, 0, v),
                        BPF_INSN(cls | alu_ops[o] | BPF_K, 3, 0, 0, v),
                        BPF_ALU64_REG(BPF_XOR, 0, 3), BPF_EXIT_INSN(),
                    };
                    snprintf(what, sizeof(what), "alu%s op %#x imm32 (%s at byte %d)",
                             w ? "64" : "32", alu_ops[o], pt->name, k);
                    check_prog(what, p, sizeof(p) / sizeof(p[0]), false);
                }
            }
            for (size_t o = 0; o < sizeof(jmp_ops); o++) {
                struct bpf_insn p[] = {
                    LD64(2, 0x0f01ef0f01ef0f01ull), BPF_MOV64_IMM(0, 1),
                    BPF_JMP_IMM(jmp_ops[o], 2, v, 1), BPF_MOV64_IMM(0, 2),   /* a cmov */
                    BPF_JMP_IMM(jmp_ops[o], 2, v, 2), BPF_ALU64_IMM(BPF_ADD, 0, 4),
                    BPF_ALU64_IMM(BPF_ADD, 0, 8), BPF_EXIT_INSN(),
                };
                snprintf(what, sizeof(what), "jump op %#x imm32 (%s at byte %d)", jmp_ops[o],
                         pt->name, k);
                check_prog(what, p, sizeof(p) / sizeof(p[0]), false);
            }
            for (int size = 0; size < 4; size++) {
                static const uint8_t sizes[] = { BPF_B, BPF_H, BPF_W, BPF_DW };
                struct bpf_insn p[] = {
                    BPF_ST_MEM(BPF_DW, 10, -16, 0),
                    BPF_ST_MEM(sizes[size], 10, -16, v), BPF_ST_MEM(sizes[size], 1, 15, v),
                    BPF_ST_MEM(BPF_DW, 10, -8, v),
                    BPF_LDX_MEM(BPF_DW, 0, 10, -16), BPF_LDX_MEM(BPF_DW, 2, 10, -8),
                    BPF_ALU64_REG(BPF_XOR, 0, 2), BPF_EXIT_INSN(),
                };
                snprintf(what, sizeof(what), "store imm size %d (%s at byte %d)", size,
                         pt->name, k);
                check_prog(what, p, sizeof(p) / sizeof(p[0]), false);
            }
        }
    }
}

/* A pattern split between an instruction's last bytes and the next one's
 * first: `add edi, ebp` (w1 += w10) is 01 ef, so an immediate, a
 * displacement or a register operand ending in 0f makes a WRPKRU with it. */
static void test_across_boundaries(void)
{
    struct bpf_insn imm_end[] = {
        BPF_ALU32_IMM(BPF_MOV, 0, 0x0f000000), BPF_ALU32_REG(BPF_ADD, 1, 10), BPF_MOV64_IMM(1, 0),
        BPF_EXIT_INSN(),
    };
    check_prog("mov imm32 ending in 0f, then add edi, ebp", imm_end, 4, false);
    struct bpf_insn disp_end[] = {
        BPF_LDX_MEM(BPF_W, 0, 1, 15), BPF_ALU32_REG(BPF_ADD, 1, 10), BPF_MOV64_IMM(1, 0),
        BPF_EXIT_INSN(),
    };
    check_prog("load with disp8 0f, then add edi, ebp", disp_end, 4, false);
    /* mov [rdi], ecx is 89 0f: the register operands alone */
    struct bpf_insn modrm_end[] = {
        BPF_MOV64_IMM(4, 77), BPF_STX_MEM(BPF_W, 1, 4, 0), BPF_ALU32_REG(BPF_ADD, 1, 10),
        BPF_MOV64_IMM(1, 0), BPF_MOV64_IMM(0, 5), BPF_EXIT_INSN(),
    };
    check_prog("mov [rdi], ecx (89 0f), then add edi, ebp", modrm_end, 6, false);
    struct bpf_insn imm64_end[] = {
        LD64(0, 0x0f11111111111111ull), BPF_ALU32_REG(BPF_ADD, 1, 10), BPF_MOV64_IMM(1, 0),
        BPF_EXIT_INSN(),
    };
    check_prog("mov imm64 ending in 0f, then add edi, ebp", imm64_end, 5, false);
}

/* ---- jump offsets ---------------------------------------------------- */

static void test_jump_offsets(void)
{
    /* rel8: `je +15` (74 0f) right before `add edi, ebp` (01 ef): the
     * skipped code is 01 ef + 7 + 6 bytes */
    struct bpf_insn rel8[] = {
        BPF_MOV64_IMM(0, 5), BPF_MOV64_IMM(2, 0),
        BPF_JMP_IMM(BPF_JEQ, 0, 5, 3),
        BPF_ALU32_REG(BPF_ADD, 1, 10),
        BPF_ALU64_IMM(BPF_ADD, 2, 0x11111111), BPF_ALU32_IMM(BPF_ADD, 2, 0x11111111),
        BPF_MOV64_IMM(1, 0), BPF_ALU64_REG(BPF_ADD, 0, 2), BPF_EXIT_INSN(),
    };
    check_prog("rel8 jump offset 0f before add edi, ebp", rel8, sizeof(rel8) / sizeof(rel8[0]),
               false);

    /* rel32: `if r0 == 0 goto +1; gotol L` is one `test rax, rax; jne rel32`
     * (3 + 6 bytes); back over 159118 `add rsi, imm32` (7 bytes) and one
     * `add esi, imm32` (6) its offset is -0x10fef1 = 0xffef010f: a WRPKRU in
     * its first three bytes. Never taken (r0 is 0). */
    uint32_t a = 159118, b = 1, n = 1 + a + b + 3;
    struct bpf_insn *p = calloc(n, sizeof(*p));
    CHECK(p != NULL, "calloc");
    if (!p)
        return;
    p[0] = BPF_MOV64_IMM(0, 0);
    for (uint32_t i = 0; i < a; i++)
        p[1 + i] = BPF_ALU64_IMM(BPF_ADD, 2, 0x11111111);
    for (uint32_t i = 0; i < b; i++)
        p[1 + a + i] = BPF_ALU32_IMM(BPF_ADD, 2, 0x11111111);
    p[n - 3] = BPF_JMP_IMM(BPF_JEQ, 0, 0, 1);
    p[n - 2] = BPF_INSN(BPF_JMP32 | BPF_JA, 0, 0, 0, -(int32_t)(n - 2));   /* to insn 1 */
    p[n - 1] = BPF_EXIT_INSN();
    check_prog("rel32 jump offset 0xffef010f", p, n, false);
    free(p);
}

/* ---- call displacements ------------------------------------------------ */

/* The host-call site calling helper 3 in p's code, or NULL. */
static const uint8_t *call_site(const struct gvm_prog *p, uint64_t target)
{
    const uint8_t *code = gvm_prog_code(p);
    size_t len = gvm_prog_code_size(p);
    for (size_t o = 0; o + 6 <= len; o++) {
        int32_t rel;
        memcpy(&rel, code + o + 2, 4);
        if (code[o] == 0x2e && code[o + 1] == 0xe8
            && (uint64_t)(uintptr_t)(code + o + 6) + (uint64_t)(int64_t)rel == target)
            return code + o;
    }
    return NULL;
}

/* A helper placed so that `call rel32` to it would read 0f 01 ef / 0f ae 28
 * in its displacement: the JIT asks for its code near the lowest helper
 * (h_add, h_times3 in this binary), so a first compile shows where the call
 * site lands, and the far helper is mapped at site + 6 + D for a D holding
 * the pattern. The JIT must then call it through the literal pool. */
static void test_call_displacements(void)
{
    static const uint8_t add_code[] = { 0x48, 0x8d, 0x04, 0x37, 0xc3 };   /* lea rax,[rdi+rsi]; ret */
    static const uint32_t patterns32[] = { 0x00ef010f, 0x0028ae0f };
    struct bpf_insn prog[] = {
        BPF_MOV64_IMM(1, 20), BPF_CALL_HELPER(3), BPF_MOV64_REG(1, 0), BPF_MOV64_IMM(2, 2),
        BPF_CALL_HELPER(4), BPF_EXIT_INSN(),
    };
    long page = sysconf(_SC_PAGESIZE);
    for (size_t pi = 0; pi < 2; pi++) {
        int done = 0;
        for (uint32_t hi = 0x02; hi < 0x30 && !done; hi++) {
            helpers[4] = h_add;
            struct gvm_prog *first = check_prog("call layout probe", prog, 6, true);
            if (!first)
                return;
            const uint8_t *site = call_site(first, (uint64_t)(uintptr_t)h_add);
            uintptr_t code = (uintptr_t)gvm_prog_code(first);
            gvm_prog_free(first);
            CHECK(site != NULL, "no direct call to a near helper");
            if (!site)
                return;
            uint64_t d = patterns32[pi] | (uint64_t)hi << 24;
            uintptr_t target = (uintptr_t)site + 6 + d;
            uintptr_t base = target & ~(uintptr_t)(page - 1);
            uint8_t *m = mmap((void *)base, 2 * (size_t)page, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
            if (m == MAP_FAILED || (uintptr_t)m != base) {
                if (m != MAP_FAILED)
                    munmap(m, 2 * (size_t)page);
                continue;                              /* taken: another distance */
            }
            memcpy((void *)target, add_code, sizeof(add_code));
            mprotect(m, 2 * (size_t)page, PROT_READ | PROT_EXEC);
            helpers[4] = (gvm_helper_fn)(void *)target;
            char what[96];
            snprintf(what, sizeof(what), "call rel32 %#" PRIx64, d);
            struct gvm_prog *p = check_prog(what, prog, 6, true);
            if (p && (uintptr_t)gvm_prog_code(p) == code) {
                /* the same layout at the same place: rel32 would be d */
                const uint8_t *s = (const uint8_t *)gvm_prog_code(p) + (site - (const uint8_t *)code);
                const uint8_t *direct = call_site(p, (uint64_t)target);
                CHECK(direct == NULL && s[0] == 0xff && s[1] == 0x15,
                      "%s: the call is not through the literal pool", what);
                done = 1;
            }
            gvm_prog_free(p);
            munmap(m, 2 * (size_t)page);
        }
        CHECK(done, "could not place a helper at a crafted distance (pattern %zu)", pi);
    }
    helpers[4] = NULL;
}

/* A far helper whose address itself holds 0f 01 ef, called with one in
 * this binary: more than 1 GiB apart, so the JIT does not ask for its code
 * near them and both calls go through the literal pool, whose slot for the
 * far one must then not be executable. */
static void test_pool_slot(void)
{
    static const uint8_t add_code[] = { 0x48, 0x8d, 0x04, 0x37, 0xc3 };
    struct bpf_insn prog[] = {
        BPF_MOV64_IMM(1, 20), BPF_MOV64_IMM(2, 22), BPF_CALL_HELPER(4),
        BPF_MOV64_REG(1, 0), BPF_MOV64_IMM(2, 1), BPF_CALL_HELPER(2), BPF_EXIT_INSN(),
    };
    int done = 0;
    for (uint64_t hi = 0x1000; hi < 0x1100 && !done; hi += 0x11) {
        uintptr_t base = (uintptr_t)(hi << 32 | 0xef010000u);
        uint8_t *m = mmap((void *)base, 4096, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
        if (m == MAP_FAILED || (uintptr_t)m != base) {
            if (m != MAP_FAILED)
                munmap(m, 4096);
            continue;
        }
        memcpy(m + 0xf00, add_code, sizeof(add_code));     /* at ..ef010f00 */
        mprotect(m, 4096, PROT_READ | PROT_EXEC);
        helpers[4] = (gvm_helper_fn)(void *)(m + 0xf00);
        struct gvm_prog *p = check_prog("helper address holding 0f 01 ef", prog, 7, true);
        if (p) {
            int64_t dist = (int64_t)((uintptr_t)(m + 0xf00) - (uintptr_t)gvm_prog_code(p));
            done = dist > (3ll << 30) || dist < -(3ll << 30);   /* really far: pooled */
        }
        gvm_prog_free(p);
        munmap(m, 4096);
    }
    CHECK(done, "could not place a helper at an address holding a pattern");
    helpers[4] = h_add;
}

int main(void)
{
    test_imm64();
    test_imm32();
    test_across_boundaries();
    test_jump_offsets();
    test_call_displacements();
    test_pool_slot();
    printf("jit gadget: %d programs\n", n_programs);
    if (g_fails) {
        fprintf(stderr, "%d checks failed\n", g_fails);
        return 1;
    }
    printf("all jit gadget tests passed\n");
    return 0;
}
