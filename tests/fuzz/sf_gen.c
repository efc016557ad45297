/*
 * sf_gen.c - the soundness fuzzer's program generator (see sf_gen.h).
 *
 * Main program's frame:
 *   fp-8 .. fp-64     eight "offset slots", initialised with in-bounds
 *                     offsets (0..56, multiples of 8); snippets spill into
 *                     them, overwrite parts of them, pass pointers to them
 *                     to subprograms, callbacks and helpers, and read them
 *                     back to index the data area or a map value;
 *   fp-128 .. fp-65   the data area, indexed as fp-128 + offset;
 *   fp-136            map keys.
 * Registers: r6 = ctx, r7 = a value of the array map (64 bytes), r8 and r9
 * scalars that live across snippets; r0-r5 are scratch (every call clobbers
 * r1-r5, so each snippet sets what it uses).
 *
 * Functions (subprograms and callbacks) are generated after the main body;
 * each copies its pointer argument to r6 and its scalar arguments to r7/r8,
 * computes values on branching paths and stores them through r6 into the
 * caller's stack - the shape of the caller-stack pruning bug.
 */
#include "sf_gen.h"
#include "vm/vm.h"   /* GVM_SPEC_WINDOW */

#include <stddef.h>
#include <string.h>

#define DATA_BASE  (-128)      /* fp-128: the data area */
#define KEY_OFF    (-136)
#define MAX_LABELS 512
#define MAX_FIXUPS 1024
#define MAX_FUNCS  6

uint64_t sf_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

uint64_t sf_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x ? x : 1;
}

static const struct gmap_def g_maps[SF_N_MAPS] = {
    [SF_MAP_ARRAY] = { .type = GMAP_ARRAY, .key_size = 4, .value_size = 64, .max_entries = 4, .name = "arr" },
    [SF_MAP_HASH] = { .type = GMAP_HASH, .key_size = 4, .value_size = 64, .max_entries = 8, .name = "hash" },
    [SF_MAP_OUTER] = { .type = GMAP_ARRAY_OF_MAPS, .key_size = 4, .value_size = 4, .max_entries = 2,
                       .inner_map_type = GMAP_ARRAY, .inner_key_size = 4, .inner_value_size = 16,
                       .inner_max_entries = 2, .name = "outer" },
    [SF_MAP_PROGS] = { .type = GMAP_PROG_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 2, .name = "progs" },
};

const struct gmap_def *sf_map_defs(void)
{
    return g_maps;
}

/* ---- the builder: instructions, labels, fixups ---- */

enum fix_kind { FIX_JUMP, FIX_CALL, FIX_FUNC };

enum fn_kind { FN_SUBPROG, FN_LOOP_CB, FN_EACH_CB };

struct func {
    int label;
    enum fn_kind kind;
    int depth;                 /* call depth of the frame it runs in */
};

struct gen {
    struct sf_prog *out;
    uint64_t rs;
    const struct sf_gen_opts *opts;
    int32_t label_at[MAX_LABELS];
    int nlabels;
    struct { uint32_t at; int label; enum fix_kind kind; } fix[MAX_FIXUPS];
    int nfix;
    struct func funcs[MAX_FUNCS];
    int nfuncs;
    int nest;                  /* if/else nesting in the body being generated */
    int budget;                /* snippets left for the whole program */
    bool overflow;
};

static uint32_t rn(struct gen *g, uint32_t n)
{
    return (uint32_t)(sf_rand(&g->rs) % n);
}

static bool chance(struct gen *g, uint32_t pct)
{
    return rn(g, 100) < pct;
}

static void emit(struct gen *g, struct bpf_insn in)
{
    if (g->out->n + 2 >= SF_MAX_INSNS) {
        g->overflow = true;
        return;
    }
    g->out->insns[g->out->n++] = in;
}

static int new_label(struct gen *g)
{
    if (g->nlabels == MAX_LABELS) {
        g->overflow = true;
        return 0;
    }
    g->label_at[g->nlabels] = -1;
    return g->nlabels++;
}

static void place(struct gen *g, int l)
{
    g->label_at[l] = (int32_t)g->out->n;
}

static void fixup(struct gen *g, int label, enum fix_kind kind)
{
    if (g->nfix == MAX_FIXUPS || g->out->n == 0) {
        g->overflow = true;
        return;
    }
    g->fix[g->nfix].at = g->out->n - 1;
    g->fix[g->nfix].label = label;
    g->fix[g->nfix++].kind = kind;
}

static void jump_to(struct gen *g, struct bpf_insn in, int label)
{
    emit(g, in);
    fixup(g, label, FIX_JUMP);
}

static void ld_map(struct gen *g, int reg, int map)
{
    struct bpf_insn ld[2] = { BPF_LD_IMM64_RAW(reg, BPF_PSEUDO_MAP_IDX, map) };
    emit(g, ld[0]);
    emit(g, ld[1]);
}

static void ld_func(struct gen *g, int reg, int label)
{
    struct bpf_insn ld[2] = { BPF_LD_IMM64_RAW(reg, BPF_PSEUDO_FUNC, 0) };
    emit(g, ld[0]);
    fixup(g, label, FIX_FUNC);
    emit(g, ld[1]);
}

static void call_local(struct gen *g, int label)
{
    emit(g, BPF_INSN(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0));
    fixup(g, label, FIX_CALL);
}

/* ---- values ---- */

static const uint8_t jops[] = { BPF_JEQ, BPF_JNE, BPF_JGT, BPF_JGE, BPF_JLT, BPF_JLE,
                                BPF_JSGT, BPF_JSGE, BPF_JSLT, BPF_JSLE, BPF_JSET };
static const uint8_t sizes[] = { BPF_B, BPF_H, BPF_W, BPF_DW };

/* An offset valid for an 8-byte access at DATA_BASE or into a 64-byte map
 * value (0..56), mostly; now and then one that is not. */
static int32_t offset_value(struct gen *g)
{
    static const int32_t wild[] = { 64, 128, 200, 512, -8, -400, -1024, 1 << 20 };
    if (chance(g, 8))
        return wild[rn(g, sizeof(wild) / sizeof(wild[0]))];
    return 8 * (int32_t)rn(g, 8);
}

static int slot_off(struct gen *g)
{
    return -8 * (1 + (int)rn(g, 8));
}

static int scalar_reg(struct gen *g)
{
    return rn(g, 2) ? BPF_R8 : BPF_R9;
}

/* The offset of a context word. Not word 0: a kernel tracepoint program
 * may not read its common fields, and the kernel differential loads these
 * programs as tracepoint programs. */
static int ctx_word(struct gen *g)
{
    return 8 * (1 + (int)rn(g, SF_CTX_SIZE / 8 - 1));
}

/* dst = a context word, maybe bounded */
static void ctx_scalar(struct gen *g, int dst, bool bounded)
{
    emit(g, BPF_LDX_MEM(BPF_DW, dst, BPF_R6, ctx_word(g)));
    if (bounded) {
        static const int32_t masks[] = { 7, 8, 15, 24, 56, 63 };
        emit(g, BPF_ALU64_IMM(BPF_AND, dst, masks[rn(g, 6)]));
    }
}

/* ---- main-program snippets ---- */

static void body(struct gen *g, int nsnips);

static void snip_set_slot(struct gen *g)
{
    int off = slot_off(g);
    int32_t v = offset_value(g);
    if (rn(g, 2)) {
        emit(g, BPF_ST_MEM(BPF_DW, BPF_R10, off, v));
    } else {
        emit(g, BPF_MOV64_IMM(BPF_R1, v));
        emit(g, BPF_STX_MEM(BPF_DW, BPF_R10, BPF_R1, off));
    }
}

static void snip_reg_slot(struct gen *g)
{
    int r = scalar_reg(g), off = slot_off(g);
    switch (rn(g, 3)) {
    case 0: emit(g, BPF_MOV64_IMM(r, offset_value(g))); break;
    case 1: emit(g, BPF_STX_MEM(BPF_DW, BPF_R10, r, off)); break;
    default: emit(g, BPF_LDX_MEM(BPF_DW, r, BPF_R10, off)); break;
    }
}

/* Overwrite part of an offset slot: the spill there no longer holds. */
static void snip_partial(struct gen *g)
{
    int off = slot_off(g);
    uint8_t sz = sizes[rn(g, 3)];
    int w = sz == BPF_B ? 1 : sz == BPF_H ? 2 : 4;
    int at = off + (int)rn(g, (uint32_t)(8 - w + 1));
    if (rn(g, 2))
        emit(g, BPF_ST_MEM(sz, BPF_R10, at, (int32_t)rn(g, 4) * 8));
    else
        emit(g, BPF_STX_MEM(sz, BPF_R10, scalar_reg(g), at));
}

/* A narrow (1-, 2- or 4-byte) spill at the start of an offset slot: of a
 * constant (an immediate store or a register), or of r8/r9 (maybe bounded
 * to fit, maybe not: a store that cuts the value). The verifier keeps the
 * value when it fits; snip_partial overwrites parts of it, snip_use fills
 * it back whole, narrower or wider. */
static void snip_narrow_spill(struct gen *g)
{
    int off = slot_off(g);
    uint8_t sz = sizes[rn(g, 3)];
    switch (rn(g, 3)) {
    case 0:
        emit(g, BPF_ST_MEM(sz, BPF_R10, off, offset_value(g)));
        break;
    case 1:
        emit(g, BPF_MOV64_IMM(BPF_R1, offset_value(g)));
        emit(g, BPF_STX_MEM(sz, BPF_R10, BPF_R1, off));
        break;
    default: {
        int r = scalar_reg(g);
        if (chance(g, 50))
            emit(g, BPF_ALU64_IMM(BPF_AND, r, chance(g, 70) ? 56 : 0x1ff));
        emit(g, BPF_STX_MEM(sz, BPF_R10, r, off));
        if (chance(g, 50)) {   /* a bound learnt on r after the spill */
            int l = new_label(g);
            /* r in 0..56, or in 256..312 and the fill less 256 (if the
             * store cut r, the fill is not r: the kernel's clear_id shape) */
            bool high = rn(g, 2);
            if (high)
                jump_to(g, BPF_JMP_IMM(BPF_JLT, r, 256, 0), l);
            jump_to(g, BPF_JMP_IMM(BPF_JGT, r, high ? 256 + 56 : 56, 0), l);
            emit(g, BPF_LDX_MEM(sz, BPF_R1, BPF_R10, off));
            if (high)
                emit(g, BPF_ALU64_IMM(BPF_SUB, BPF_R1, 256));
            emit(g, BPF_MOV64_REG(BPF_R2, BPF_R10));
            emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, DATA_BASE));
            emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R2, BPF_R1));
            emit(g, BPF_ST_MEM(BPF_DW, BPF_R2, 0, 1));
            place(g, l);
        }
        break;
    }
    }
}

/* Use a value (an offset slot, r8/r9 or a ctx word) as an offset into the
 * data area or the map value in r7, raw or bounded first. */
static void snip_use(struct gen *g)
{
    int src = rn(g, 4);
    if (src == 0)
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R1, BPF_R10, slot_off(g)));
    else if (src == 1)
        emit(g, BPF_MOV64_REG(BPF_R1, scalar_reg(g)));
    else if (src == 2)
        ctx_scalar(g, BPF_R1, chance(g, 70));
    else                       /* a sub-slot read: part of a spill */
        emit(g, BPF_LDX_MEM(sizes[rn(g, 3)], BPF_R1, BPF_R10,
                            slot_off(g) + (chance(g, 80) ? 0 : 2 * (int)rn(g, 3))));
    if (chance(g, 25))
        emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R1, 56));
    if (rn(g, 2)) {
        emit(g, BPF_MOV64_REG(BPF_R2, BPF_R10));
        emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, DATA_BASE));
    } else {
        emit(g, BPF_MOV64_REG(BPF_R2, BPF_R7));
    }
    emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R2, BPF_R1));
    uint8_t sz = chance(g, 70) ? BPF_DW : sizes[rn(g, 4)];
    if (rn(g, 2))
        emit(g, BPF_LDX_MEM(sz, BPF_R0, BPF_R2, 0));
    else
        emit(g, BPF_ST_MEM(sz, BPF_R2, 0, (int32_t)rn(g, 64)));
}

/* probe_read_user / probe_read_kernel into the stack, at a constant or
 * variable offset, with a constant or variable size, from ctx or NULL. */
static void snip_helper_write(struct gen *g)
{
    int base = -8 * (2 + (int)rn(g, 8));          /* fp-16 .. fp-72 */
    bool var_off = chance(g, 50), var_size = chance(g, 50);
    if (var_off) {
        ctx_scalar(g, BPF_R4, false);
        emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R4, rn(g, 2) ? 7 : 15));
    }
    emit(g, BPF_MOV64_REG(BPF_R1, BPF_R10));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R1, base));
    if (var_off)
        emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R1, BPF_R4));
    if (var_size) {
        ctx_scalar(g, BPF_R2, false);
        emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R2, 7));
        if (rn(g, 2))
            emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, 1 + (int32_t)rn(g, 8)));
    } else {
        static const int32_t sz[] = { 1, 4, 8, 8, 16 };
        emit(g, BPF_MOV64_IMM(BPF_R2, sz[rn(g, 5)]));
    }
    if (rn(g, 3))
        emit(g, BPF_MOV64_REG(BPF_R3, BPF_R6));
    else
        emit(g, BPF_MOV64_IMM(BPF_R3, 0));
    static const int32_t ids[] = { 112, 113, 4 };
    emit(g, BPF_CALL_HELPER(ids[rn(g, 3)]));
}

static int get_func(struct gen *g, enum fn_kind kind, int depth);

/* Call a subprogram: r1 = a pointer to an offset slot, r2/r3 scalars. */
static void snip_call(struct gen *g, int depth)
{
    int f = get_func(g, FN_SUBPROG, depth + 1);
    if (f < 0)
        return;
    emit(g, BPF_MOV64_REG(BPF_R1, BPF_R10));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R1, slot_off(g)));
    for (int r = BPF_R2; r <= BPF_R3; r++) {
        switch (rn(g, 4)) {
        case 0: emit(g, BPF_MOV64_IMM(r, offset_value(g))); break;
        case 1: emit(g, BPF_MOV64_REG(r, scalar_reg(g))); break;
        case 2: emit(g, BPF_LDX_MEM(BPF_DW, r, BPF_R10, slot_off(g))); break;
        default: ctx_scalar(g, r, chance(g, 50)); break;
        }
    }
    call_local(g, g->funcs[f].label);
    if (chance(g, 40)) {       /* the result as an offset */
        if (chance(g, 30))
            emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R0, 56));
        emit(g, BPF_MOV64_REG(BPF_R2, BPF_R10));
        emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, DATA_BASE));
        emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R2, BPF_R0));
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R0, BPF_R2, 0));
    }
}

static void snip_loop_cb(struct gen *g, int depth)
{
    int f = get_func(g, FN_LOOP_CB, depth + 1);
    if (f < 0)
        return;
    if (rn(g, 3))
        emit(g, BPF_MOV64_IMM(BPF_R1, 1 + (int32_t)rn(g, 4)));
    else
        ctx_scalar(g, BPF_R1, true);
    ld_func(g, BPF_R2, g->funcs[f].label);
    emit(g, BPF_MOV64_REG(BPF_R3, BPF_R10));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R3, slot_off(g)));
    emit(g, BPF_MOV64_IMM(BPF_R4, 0));
    emit(g, BPF_CALL_HELPER(181));
}

static void snip_each_cb(struct gen *g, int depth)
{
    int f = get_func(g, FN_EACH_CB, depth + 1);
    if (f < 0)
        return;
    ld_map(g, BPF_R1, rn(g, 2) ? SF_MAP_ARRAY : SF_MAP_HASH);
    ld_func(g, BPF_R2, g->funcs[f].label);
    emit(g, BPF_MOV64_REG(BPF_R3, BPF_R10));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R3, slot_off(g)));
    emit(g, BPF_MOV64_IMM(BPF_R4, 0));
    emit(g, BPF_CALL_HELPER(164));
}

/* if (ctx word or r8/r9 op imm) { ... } else { ... } */
static void snip_if(struct gen *g, int depth)
{
    int l_else = new_label(g), l_end = new_label(g);
    int r = BPF_R1;
    if (rn(g, 3))
        ctx_scalar(g, BPF_R1, chance(g, 30));
    else
        r = scalar_reg(g);
    uint8_t op = jops[rn(g, sizeof(jops))];
    int32_t imm = chance(g, 70) ? (int32_t)rn(g, 64) : offset_value(g);
    jump_to(g, BPF_INSN((rn(g, 4) ? BPF_JMP : BPF_JMP32) | op | BPF_K, r, 0, 0, imm), l_else);
    g->nest++;
    body(g, 1 + (int)rn(g, 3));
    if (rn(g, 4)) {
        jump_to(g, BPF_JMP_A(0), l_end);
        place(g, l_else);
        body(g, 1 + (int)rn(g, 3));
    } else {
        place(g, l_else);
    }
    place(g, l_end);
    g->nest--;
    (void)depth;
}

/* A bounded loop writing the data area (or the offset slots) at a
 * variable offset. */
static void snip_loop(struct gen *g)
{
    int top = new_label(g);
    int cnt = 1 + (int)rn(g, 8);
    int base = rn(g, 3) ? DATA_BASE : -64;
    emit(g, BPF_MOV64_IMM(BPF_R1, 0));
    place(g, top);
    emit(g, BPF_MOV64_REG(BPF_R2, BPF_R1));
    emit(g, BPF_ALU64_IMM(BPF_LSH, BPF_R2, 3));
    emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R2, BPF_R10));
    if (rn(g, 2))
        emit(g, BPF_ST_MEM(BPF_DW, BPF_R2, base, 8 * (int32_t)rn(g, 8)));
    else
        emit(g, BPF_STX_MEM(BPF_DW, BPF_R2, BPF_R1, base));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R1, 1));
    jump_to(g, BPF_JMP_IMM(BPF_JLT, BPF_R1, cnt, 0), top);
}

/* Look up the hash map with a key from the context; use the value. */
static void snip_hash(struct gen *g)
{
    int l_skip = new_label(g);
    ctx_scalar(g, BPF_R1, false);
    emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R1, 7));
    emit(g, BPF_STX_MEM(BPF_W, BPF_R10, BPF_R1, KEY_OFF));
    emit(g, BPF_MOV64_REG(BPF_R2, BPF_R10));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, KEY_OFF));
    ld_map(g, BPF_R1, SF_MAP_HASH);
    emit(g, BPF_CALL_HELPER(1));
    jump_to(g, BPF_JMP_IMM(BPF_JEQ, BPF_R0, 0, 0), l_skip);
    switch (rn(g, 3)) {
    case 0:                    /* value -> offset slot */
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R1, BPF_R0, 8 * (int)rn(g, 8)));
        if (chance(g, 50))
            emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R1, 56));
        emit(g, BPF_STX_MEM(BPF_DW, BPF_R10, BPF_R1, slot_off(g)));
        break;
    case 1:                    /* offset slot -> value */
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R1, BPF_R10, slot_off(g)));
        emit(g, BPF_STX_MEM(BPF_DW, BPF_R0, BPF_R1, 8 * (int)rn(g, 8)));
        break;
    default:                   /* index the value with an offset slot */
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R1, BPF_R10, slot_off(g)));
        emit(g, BPF_ALU64_REG(BPF_ADD, BPF_R0, BPF_R1));
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R1, BPF_R0, 0));
        break;
    }
    place(g, l_skip);
}

/* outer[key] -> inner map -> inner[key] -> 16-byte value */
static void snip_map_in_map(struct gen *g)
{
    int l_skip = new_label(g);
    emit(g, BPF_ST_MEM(BPF_W, BPF_R10, KEY_OFF, (int32_t)rn(g, 2)));
    emit(g, BPF_MOV64_REG(BPF_R2, BPF_R10));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, KEY_OFF));
    ld_map(g, BPF_R1, SF_MAP_OUTER);
    emit(g, BPF_CALL_HELPER(1));
    jump_to(g, BPF_JMP_IMM(BPF_JEQ, BPF_R0, 0, 0), l_skip);
    emit(g, BPF_MOV64_REG(BPF_R1, BPF_R0));
    emit(g, BPF_ST_MEM(BPF_W, BPF_R10, KEY_OFF, (int32_t)rn(g, 2)));
    emit(g, BPF_MOV64_REG(BPF_R2, BPF_R10));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, KEY_OFF));
    emit(g, BPF_CALL_HELPER(1));
    jump_to(g, BPF_JMP_IMM(BPF_JEQ, BPF_R0, 0, 0), l_skip);
    int off = chance(g, 90) ? 8 * (int)rn(g, 2) : 16;
    if (rn(g, 2))
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R1, BPF_R0, off));
    else
        emit(g, BPF_STX_MEM(BPF_DW, BPF_R0, scalar_reg(g), off));
    place(g, l_skip);
}

static void snip_tail_call(struct gen *g)
{
    emit(g, BPF_MOV64_REG(BPF_R1, BPF_R6));
    ld_map(g, BPF_R2, SF_MAP_PROGS);
    emit(g, BPF_MOV64_IMM(BPF_R3, (int32_t)rn(g, 3)));
    emit(g, BPF_CALL_HELPER(12));
}

static void snip_alu_slot(struct gen *g)
{
    int off = slot_off(g);
    emit(g, BPF_LDX_MEM(BPF_DW, BPF_R1, BPF_R10, off));
    switch (rn(g, 4)) {
    case 0: emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R1, 8)); break;
    case 1: emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R1, 56)); break;
    case 2: emit(g, BPF_ALU64_IMM(BPF_LSH, BPF_R1, 1)); break;
    default: emit(g, BPF_ALU64_IMM(BPF_SUB, BPF_R1, 8)); break;
    }
    emit(g, BPF_STX_MEM(BPF_DW, BPF_R10, BPF_R1, off));
}

/* An atomic read-modify-write on an offset slot or the map value, now and
 * then at an address that is not naturally aligned (which the verifier
 * must refuse: a split lock). */
static void snip_atomic(struct gen *g)
{
    static const int32_t ops[] = { BPF_ADD, BPF_OR, BPF_AND, BPF_XOR, BPF_ADD | BPF_FETCH,
                                   BPF_XCHG, BPF_CMPXCHG };
    bool dw = rn(g, 3) != 0;
    int base = rn(g, 2) ? BPF_R10 : BPF_R7;
    int off = base == BPF_R10 ? slot_off(g) : 8 * (int)rn(g, 8);
    if (chance(g, 10))
        off += dw ? 4 : 2;
    emit(g, BPF_MOV64_IMM(BPF_R1, (int32_t)rn(g, 16)));
    emit(g, BPF_MOV64_IMM(BPF_R0, (int32_t)rn(g, 16)));
    emit(g, BPF_INSN(BPF_STX | BPF_ATOMIC | (dw ? BPF_DW : BPF_W), base, BPF_R1, off,
                     ops[rn(g, sizeof(ops) / sizeof(ops[0]))]));
}

static void snip_ranged(struct gen *g)
{
    int r = scalar_reg(g);
    ctx_scalar(g, r, true);
    if (rn(g, 2))
        emit(g, BPF_STX_MEM(BPF_DW, BPF_R10, r, slot_off(g)));
}

static void snippet(struct gen *g, int depth)
{
    g->budget--;
    for (;;) {
        switch (rn(g, 32)) {
        case 0: case 1: case 2: snip_set_slot(g); return;
        case 3: case 4: snip_reg_slot(g); return;
        case 5: snip_partial(g); return;
        case 6: case 7: case 8: case 9: snip_use(g); return;
        case 10: case 11: case 12:
            if (g->opts->no_helper_writes)
                continue;
            snip_helper_write(g);
            return;
        case 13: case 14: case 15:
            if (g->opts->no_subprogs)
                continue;
            snip_call(g, depth);
            return;
        case 16: case 17:
            if (g->opts->no_callbacks)
                continue;
            snip_loop_cb(g, depth);
            return;
        case 18:
            if (g->opts->no_callbacks)
                continue;
            snip_each_cb(g, depth);
            return;
        case 19: case 20: case 21: case 22:
            if (g->nest >= 2 || g->budget <= 0)
                continue;
            snip_if(g, depth);
            return;
        case 23: snip_loop(g); return;
        case 24: snip_hash(g); return;
        case 25:
            if (g->opts->no_map_in_map)
                continue;
            snip_map_in_map(g);
            return;
        case 26:
            if (g->opts->no_tail_calls)
                continue;
            snip_tail_call(g);
            return;
        case 27: snip_alu_slot(g); return;
        case 28: snip_atomic(g); return;
        case 29: snip_narrow_spill(g); return;
        default: snip_ranged(g); return;
        }
    }
}

static void body(struct gen *g, int nsnips)
{
    for (int i = 0; i < nsnips && !g->overflow; i++)
        snippet(g, 0);
}

/* ---- functions ---- */

/* An existing function of that kind (reuse makes several call sites meet in
 * one callee), or a new one; -1 when there is no room. */
static int get_func(struct gen *g, enum fn_kind kind, int depth)
{
    if (depth >= BPF_MAX_CALL_DEPTH - 2)
        return -1;
    int have = -1;
    for (int i = 0; i < g->nfuncs; i++)
        if (g->funcs[i].kind == kind && g->funcs[i].depth >= depth)
            have = i;
    if (have >= 0 && (chance(g, 60) || g->nfuncs == MAX_FUNCS))
        return have;
    if (g->nfuncs == MAX_FUNCS)
        return -1;
    g->funcs[g->nfuncs] = (struct func){ new_label(g), kind, depth };
    return g->nfuncs++;
}

/* One operation of a function body. r6 = pointer into the caller's stack,
 * r7/r8 scalars, r9 a value being computed. */
static void fn_op(struct gen *g, const struct func *f, int fdepth)
{
    switch (rn(g, 10)) {
    case 0: case 1:            /* store the value through the pointer */
        emit(g, BPF_STX_MEM(BPF_DW, BPF_R6, rn(g, 3) ? BPF_R9 : BPF_R7 + (int)rn(g, 2), 0));
        break;
    case 2:
        emit(g, BPF_ST_MEM(BPF_DW, BPF_R6, 0, offset_value(g)));
        break;
    case 3: {                  /* the value differs by path */
        int l_else = new_label(g), l_end = new_label(g);
        uint8_t op = jops[rn(g, sizeof(jops))];
        jump_to(g, BPF_JMP_IMM(op, BPF_R7 + (int)rn(g, 2), (int32_t)rn(g, 16), 0), l_else);
        emit(g, BPF_MOV64_IMM(BPF_R9, offset_value(g)));
        jump_to(g, BPF_JMP_A(0), l_end);
        place(g, l_else);
        emit(g, BPF_MOV64_IMM(BPF_R9, offset_value(g)));
        place(g, l_end);
        break;
    }
    case 4:
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R9, BPF_R6, 0));
        break;
    case 5:
        switch (rn(g, 3)) {
        case 0: emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R9, 56)); break;
        case 1: emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R9, 8)); break;
        default: emit(g, BPF_MOV64_REG(BPF_R9, BPF_R7 + (int)rn(g, 2))); break;
        }
        break;
    case 6:                    /* a helper writes the caller's slot */
        if (g->opts->no_helper_writes)
            break;
        emit(g, BPF_MOV64_REG(BPF_R1, BPF_R6));
        if (rn(g, 2)) {
            emit(g, BPF_MOV64_REG(BPF_R2, BPF_R7 + (int)rn(g, 2)));
            emit(g, BPF_ALU64_IMM(BPF_AND, BPF_R2, 7));
        } else {
            emit(g, BPF_MOV64_IMM(BPF_R2, 8));
        }
        emit(g, BPF_MOV64_IMM(BPF_R3, 0));
        emit(g, BPF_CALL_HELPER(113));
        break;
    case 7:                    /* spill and fill in the function's own frame */
        emit(g, BPF_STX_MEM(BPF_DW, BPF_R10, BPF_R9, -8));
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R9, BPF_R10, -8));
        break;
    case 8:                    /* pass the pointer on to another subprogram */
        if (!g->opts->no_subprogs && (f->kind == FN_SUBPROG || chance(g, 50))) {
            int c = get_func(g, FN_SUBPROG, fdepth + 1);
            if (c >= 0 && c > (int)(f - g->funcs)) {
                emit(g, BPF_MOV64_REG(BPF_R1, BPF_R6));
                emit(g, BPF_MOV64_REG(BPF_R2, BPF_R9));
                emit(g, BPF_MOV64_REG(BPF_R3, BPF_R7));
                call_local(g, g->funcs[c].label);
                if (rn(g, 2))
                    emit(g, BPF_MOV64_REG(BPF_R9, BPF_R0));
            }
        }
        break;
    default:
        emit(g, BPF_MOV64_IMM(BPF_R9, offset_value(g)));
        break;
    }
}

static void gen_func(struct gen *g, int idx)
{
    struct func *f = &g->funcs[idx];
    place(g, f->label);
    switch (f->kind) {
    case FN_SUBPROG:           /* (ptr, a, b) */
        emit(g, BPF_MOV64_REG(BPF_R6, BPF_R1));
        emit(g, BPF_MOV64_REG(BPF_R7, BPF_R2));
        emit(g, BPF_MOV64_REG(BPF_R8, BPF_R3));
        break;
    case FN_LOOP_CB:           /* (index, ctx) */
        emit(g, BPF_MOV64_REG(BPF_R6, BPF_R2));
        emit(g, BPF_MOV64_REG(BPF_R7, BPF_R1));
        emit(g, BPF_MOV64_REG(BPF_R8, BPF_R1));
        break;
    case FN_EACH_CB:           /* (map, key, value, ctx) */
        emit(g, BPF_MOV64_REG(BPF_R6, BPF_R4));
        emit(g, BPF_LDX_MEM(BPF_DW, BPF_R7, BPF_R3, 8 * (int)rn(g, 8)));
        emit(g, BPF_LDX_MEM(BPF_W, BPF_R8, BPF_R2, 0));
        break;
    }
    emit(g, BPF_MOV64_IMM(BPF_R9, offset_value(g)));
    int nops = 1 + (int)rn(g, 5);
    for (int i = 0; i < nops && !g->overflow; i++)
        fn_op(g, f, f->depth);
    if (f->kind == FN_SUBPROG)
        emit(g, rn(g, 2) ? BPF_MOV64_REG(BPF_R0, BPF_R9) : BPF_MOV64_IMM(BPF_R0, 0));
    else
        emit(g, BPF_MOV64_IMM(BPF_R0, chance(g, 80) ? 0 : 1));
    emit(g, BPF_EXIT_INSN());
}

int sf_gen_without(struct sf_gen_opts *o, const char *name)
{
    static const struct { const char *name; size_t off; } flags[] = {
        { "callbacks", offsetof(struct sf_gen_opts, no_callbacks) },
        { "subprogs", offsetof(struct sf_gen_opts, no_subprogs) },
        { "helper_writes", offsetof(struct sf_gen_opts, no_helper_writes) },
        { "map_in_map", offsetof(struct sf_gen_opts, no_map_in_map) },
        { "tail_calls", offsetof(struct sf_gen_opts, no_tail_calls) },
        { "packet", offsetof(struct sf_gen_opts, no_packet) },
        { "spec_join", offsetof(struct sf_gen_opts, no_spec_join) },
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (!strcmp(name, flags[i].name)) {
            *(bool *)((char *)o + flags[i].off) = true;
            return 0;
        }
    return -1;
}

int sf_gen_with(struct sf_gen_opts *o, const char *name)
{
    if (!strcmp(name, "packet_only")) {
        o->packet_only = true;
        return 0;
    }
    if (strcmp(name, "misaligned_atomics"))
        return -1;
    o->misaligned_atomics = true;
    return 0;
}

/* ---- the program ---- */

static void prologue(struct gen *g)
{
    emit(g, BPF_MOV64_REG(BPF_R6, BPF_R1));
    for (int s = 1; s <= 8; s++)
        emit(g, BPF_ST_MEM(BPF_DW, BPF_R10, -8 * s, 8 * (int32_t)rn(g, 8)));
    for (int off = DATA_BASE; off < -64; off += 8) {
        if (rn(g, 2)) {
            emit(g, BPF_ST_MEM(BPF_DW, BPF_R10, off, (int32_t)rn(g, 64)));
        } else {
            emit(g, BPF_LDX_MEM(BPF_DW, BPF_R1, BPF_R6, ctx_word(g)));
            emit(g, BPF_STX_MEM(BPF_DW, BPF_R10, BPF_R1, off));
        }
    }
    /* r7 = arr[key] (array lookups of keys < max_entries still need the check) */
    int l_ok = new_label(g);
    emit(g, BPF_ST_MEM(BPF_W, BPF_R10, KEY_OFF, (int32_t)rn(g, 4)));
    emit(g, BPF_MOV64_REG(BPF_R2, BPF_R10));
    emit(g, BPF_ALU64_IMM(BPF_ADD, BPF_R2, KEY_OFF));
    ld_map(g, BPF_R1, SF_MAP_ARRAY);
    emit(g, BPF_CALL_HELPER(1));
    jump_to(g, BPF_JMP_IMM(BPF_JNE, BPF_R0, 0, 0), l_ok);
    emit(g, BPF_MOV64_IMM(BPF_R0, 0));
    emit(g, BPF_EXIT_INSN());
    place(g, l_ok);
    emit(g, BPF_MOV64_REG(BPF_R7, BPF_R0));
    emit(g, BPF_MOV64_IMM(BPF_R8, 8 * (int32_t)rn(g, 8)));
    emit(g, BPF_MOV64_IMM(BPF_R9, 8 * (int32_t)rn(g, 8)));
}

/* Two jumps the verifier knows are not taken, whose mispredictions meet at
 * a join: A after a straight run of most of the speculative window, B after
 * one jump; then a tail that A's window does not reach and B's does, ending
 * in a load through the compared register (any number on those paths) or,
 * half the time, through the map value (safe). Stored at the join, A's
 * state must not stand for B's (test_verifier_speculation; the checked
 * interpreter's speculative mode sees B's load). Off a misprediction the
 * block is skipped. */
static void spec_join(struct gen *g)
{
    int l_a = new_label(g), l_b = new_label(g), l_join = new_label(g), l_cont = new_label(g);
    int32_t k = (int32_t)rn(g, 64);
    int tail = 2 + (int)rn(g, 100);
    int run_a = GVM_SPEC_WINDOW + 1 - tail + (int)rn(g, 50);
    static const struct { uint8_t op; int32_t delta; } never[] = {
        { BPF_JEQ, 1 }, { BPF_JGT, 0 }, { BPF_JNE, 0 }, { BPF_JLT, 0 },
    };
    emit(g, BPF_MOV64_IMM(BPF_R2, k));
    for (int i = 0; i < 2; i++) {      /* B's jump pushed first: explored last */
        int j = (int)rn(g, sizeof(never) / sizeof(never[0]));
        jump_to(g, BPF_JMP_IMM(never[j].op, BPF_R2, k + never[j].delta, 0), i ? l_a : l_b);
    }
    jump_to(g, BPF_JMP_A(0), l_cont);
    place(g, l_a);
    for (int i = 0; i < run_a; i++)
        emit(g, BPF_MOV64_IMM(BPF_R0, (int32_t)i));
    place(g, l_join);
    for (int i = 0; i < tail; i++)
        emit(g, BPF_MOV64_IMM(BPF_R0, (int32_t)i));
    emit(g, BPF_LDX_MEM(BPF_B, BPF_R0, rn(g, 2) ? BPF_R2 : BPF_R7, 0));
    emit(g, BPF_EXIT_INSN());
    place(g, l_b);
    jump_to(g, BPF_JMP_A(0), l_join);
    place(g, l_cont);
}

static void resolve_fixups(struct gen *g)
{
    for (int i = 0; i < g->nfix; i++) {
        int32_t t = g->label_at[g->fix[i].label];
        struct bpf_insn *in = &g->out->insns[g->fix[i].at];
        int32_t rel = t - (int32_t)g->fix[i].at - 1;
        if (t < 0) {
            g->overflow = true;
            return;
        }
        if (g->fix[i].kind == FIX_JUMP)
            in->off = (int16_t)rel;
        else
            in->imm = rel;
    }
}

void sf_generate(uint64_t seed, const struct sf_gen_opts *opts, struct sf_prog *out)
{
    static struct gen g;       /* large; one generator at a time */
    memset(&g, 0, sizeof(g));
    g.out = out;
    g.opts = opts;
    g.rs = sf_mix(seed);
    out->n = 0;
    prologue(&g);
    /* decided by the seed alone, so that other programs stay as they were */
    if (!opts->no_spec_join && sf_mix(seed ^ 0x5bec) % 32 == 0)
        spec_join(&g);
    g.budget = 4 + (int)rn(&g, 14);
    while (g.budget > 0 && !g.overflow)
        snippet(&g, 0);
    emit(&g, BPF_MOV64_IMM(BPF_R0, 0));
    emit(&g, BPF_EXIT_INSN());
    for (int i = 0; i < g.nfuncs && !g.overflow; i++)
        gen_func(&g, i);
    resolve_fixups(&g);
    if (g.overflow) {          /* cannot happen with these limits; keep it valid anyway */
        out->n = 0;
        out->insns[out->n++] = BPF_MOV64_IMM(BPF_R0, 0);
        out->insns[out->n++] = BPF_EXIT_INSN();
    }
}
