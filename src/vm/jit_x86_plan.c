/*
 * jit_x86_plan.c - which registers the JIT's stack slots and held
 * constants get (docs/jit.md, "Stack slots in registers"): the free
 * registers of each function, by kind of program, and an allocation over
 * the slots' live intervals (jit_slots.c) in which slots never live at
 * once share a register.
 */
#include "vm/jit_x86_enc.h"

/* Does insn i need the scratch registers r9-r11 (TMP1-3), or may it
 * clobber them: a call of any kind (helpers are C functions, callees keep
 * their own slots there, callx and tail calls use them), division, shifts
 * by a register without BMI2, atomics, fill loops, hardened insns? */
static bool insn_clobbers_scratch(const struct gvm_prog *p, const uint8_t *hard,
                                  const uint8_t *is_target, uint32_t i)
{
    const struct bpf_insn *in = &p->insns[i];
    struct gvm_fill fill;
    uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
    if (hard[i] & HARD_LEVEL)
        return true;                     /* its constants may go through TMP1 */
    if ((cls == BPF_JMP || cls == BPF_JMP32) && op == BPF_CALL)
        return true;
    if (gvm_jit_fill_loop(p, is_target, i, &fill))
        return true;
    if ((cls == BPF_ALU || cls == BPF_ALU64) && (op == BPF_DIV || op == BPF_MOD))
        return true;
    if ((cls == BPF_ALU || cls == BPF_ALU64) && BPF_SRC(in->code) == BPF_X && !gvm_jit_cpu.bmi2
        && (op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH))
        return true;
    return cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC;
}

/* Does any instruction of a leaf need the scratch registers? */
static bool leaf_needs_scratch(const struct gvm_prog *p, const uint8_t *hard,
                               const uint8_t *is_target)
{
    for (uint32_t i = 0; i < p->n; i++) {
        if (insn_clobbers_scratch(p, hard, is_target, i))
            return true;
        if (bpf_is_ld_imm64(&p->insns[i]))
            i++;
    }
    return false;
}

static bool is_callee_saved(int r)
{
    return r == RBX || r == RBP || r == R12 || r == R13 || r == R14 || r == R15;
}

/* Give the promotable slots of function f registers from
 * free_regs[0..n_free): the hottest first, each the first register in that
 * order whose slots so far all have live intervals disjoint from its own
 * (gvm_slot_intervals), so slots never live at once share a register.
 * Registers are opened in order: those used are free_regs[0..returned).
 * *n_given counts the slots that got a register. Bit q of scratch set:
 * free_regs[q] does not survive insn_clobbers_scratch insns, so only a
 * slot whose interval holds none may take it (tried first: such a slot
 * leaves the registers that survive calls to slots that need them). */
static int assign_slots(struct jit *j, uint32_t f, struct gvm_slot_use *u,
                        const int *free_regs, int n_free, uint32_t scratch, int *n_given)
{
    const struct gvm_prog *p = j->prog;
    uint32_t lo = p->func_starts[f], hi = f + 1 < p->n_funcs ? p->func_starts[f + 1] : p->n;
    int8_t *sr = j->slot_reg[f];
    uint32_t start[GVM_SLOTS], end[GVM_SLOTS];
    int8_t reg_of[GVM_SLOTS];           /* index into free_regs, -1: none yet */
    bool done[GVM_SLOTS] = { false };
    int n_prom = 0, n_used = 0;
    for (int k = 0; k < GVM_SLOTS; k++) {
        n_prom += u->promotable[k];
        sr[k] = -1;
    }
    *n_given = 0;
    if (n_prom == 0)
        return 0;
    if (n_prom > n_free)
        gvm_slot_weigh(p->insns, p->n, lo, hi, u);
    gvm_slot_intervals(p->insns, lo, hi, u, start, end);
    bool calm[GVM_SLOTS] = { false };   /* no scratch clobber in the interval */
    if (scratch) {
        uint32_t *clobbers = malloc((hi - lo + 1) * sizeof(*clobbers));
        if (clobbers) {                 /* prefix counts; none: no slot is calm */
            clobbers[0] = 0;
            for (uint32_t i = lo; i < hi; i++)
                clobbers[i - lo + 1] = clobbers[i - lo]
                    + (!(i > lo && bpf_is_ld_imm64(&p->insns[i - 1]))
                       && insn_clobbers_scratch(p, j->hard, j->is_target, i));
            for (int k = 0; k < GVM_SLOTS; k++)
                calm[k] = start[k] <= end[k]
                          && clobbers[end[k] - lo + 1] == clobbers[start[k] - lo];
            free(clobbers);
        }
    }
    for (int k = 0; k < GVM_SLOTS; k++)
        reg_of[k] = -1;
    for (;;) {
        int best = -1;
        for (int k = 0; k < GVM_SLOTS; k++)
            if (u->promotable[k] && !done[k] && (best < 0 || u->weight[k] > u->weight[best]))
                best = k;
        if (best < 0)
            break;
        done[best] = true;
        for (int t = 0; t < n_free * 2; t++) {
            /* the scratch registers first (calm slots only), then the rest */
            int q = t % n_free;
            if ((t < n_free) != ((scratch >> q) & 1) || (((scratch >> q) & 1) && !calm[best]))
                continue;
            bool clash = false;
            for (int k = 0; k < GVM_SLOTS && !clash; k++)
                clash = reg_of[k] == q && start[k] <= end[best] && start[best] <= end[k];
            if (clash)
                continue;
            reg_of[best] = (int8_t)q;
            sr[best] = (int8_t)free_regs[q];
            n_used = q + 1 > n_used ? q + 1 : n_used;
            (*n_given)++;
            break;
        }
    }
    return n_used;
}

/* A direct program (one function, host calls only) is entered from C and
 * nothing unwinds through its frame, so it saves only the callee-saved
 * homes of the BPF registers it names and those its slots took (rbp, the
 * frame pointer, always). Entered with rsp = 8 mod 16, it pushes
 * n_saved_regs + 1 registers; an odd count of saved ones needs 8 more
 * bytes below the BPF stack for helper calls to see rsp 16-aligned. */
static void plan_direct_frame(struct jit *j, uint16_t named)
{
    j->n_saved_regs = 0;
    for (int r = BPF_R6; r <= BPF_R9; r++) {
        bool used = named & (1u << r);
        for (int k = 0; k < GVM_SLOTS && !used; k++)
            used = j->slot_reg[0][k] == reg_map[r];
        if (used)
            j->saved_regs[j->n_saved_regs++] = reg_map[r];
    }
    j->frame_pad = j->n_saved_regs % 2 == 1;
}

/* Decide which stack slots live in which registers, per function.
 * Leaf programs: every register the program does not name is free (r12,
 * the scratch registers when no instruction needs them, the x86 homes of
 * unnamed BPF registers, and rbp when the whole frame fits in registers);
 * callee-saved ones are pushed by the lean prologue. Other programs: the
 * homes of r6-r9 when no function names them (every frame but a direct
 * program's saves them; that one saves those its slots take). */
int gvm_jit_plan_slots(struct jit *j, struct graft_err *err)
{
    const struct gvm_prog *p = j->prog;
    uint16_t named = 0;
    for (uint32_t i = 0; i < p->n; i++)
        if (p->insns[i].dst_reg <= BPF_R10 && p->insns[i].src_reg <= BPF_R10)
            named |= (uint16_t)(1u << p->insns[i].dst_reg | 1u << p->insns[i].src_reg);

    free(j->slot_reg);
    j->tmp1_taken = false;
    j->n_consts = 0;
    j->slot_reg = malloc(p->n_funcs * sizeof(*j->slot_reg));
    if (!j->slot_reg)
        return graft_errf(err, -ENOMEM, "JIT: out of memory for %u functions", p->n_funcs);
    for (uint32_t f = 0; f < p->n_funcs; f++) {
        uint32_t lo = p->func_starts[f];
        uint32_t hi = f + 1 < p->n_funcs ? p->func_starts[f + 1] : p->n;
        struct gvm_slot_use u;
        int free_regs[16], n_free = 0;

        gvm_slot_scan(p->insns, p->n, lo, hi, &u);
        if (j->leaf) {
            bool scratch_free = !leaf_needs_scratch(p, j->hard, j->is_target);
            if (scratch_free) {
                free_regs[n_free++] = TMP2;
                free_regs[n_free++] = TMP3;
            }
            for (int r = BPF_R0; r <= BPF_R5; r++)
                if (!(named & (1u << r)))
                    free_regs[n_free++] = reg_map[r];
            free_regs[n_free++] = R12;
            for (int r = BPF_R6; r <= BPF_R9; r++)
                if (!(named & (1u << r)))
                    free_regs[n_free++] = reg_map[r];
            bool all_fit = !u.escapes;
            int n_prom = 0;
            for (int k = 0; k < GVM_SLOTS; k++) {
                all_fit = all_fit && (!u.used[k] || u.promotable[k]);
                n_prom += u.promotable[k];
            }
            /* rbp too when every slot may get a register (then no frame
             * is needed); tried first, dropped if some slot then has none */
            int n_base = n_free, n_given = 0, given = 0;
            for (int with_rbp = all_fit; with_rbp >= 0; with_rbp--) {
                n_free = n_base;
                if (with_rbp)
                    free_regs[n_free++] = RBP;
                /* TMP1 last: while no slot takes it, cmov can load
                 * constants into it (cmov_source) */
                if (scratch_free)
                    free_regs[n_free++] = TMP1;
                given = assign_slots(j, f, &u, free_regs, n_free, 0, &n_given);
                if (n_given == n_prom)
                    break;
            }
            /* registers no slot took (TMP1 stays for cmov) hold the hottest
             * 64-bit constants */
            uint64_t cv[6];
            int n_left = n_free - given - scratch_free, nc = 0;
            if (n_left > 0)
                nc = gvm_hot_consts(p->insns, lo, hi, cv, n_left < 6 ? n_left : 6);
            for (int k = 0; k < nc; k++) {
                j->const_val[k] = cv[k];
                j->const_reg[k] = (int8_t)free_regs[given + k];
            }
            j->n_consts = nc;
            j->leaf_frame = (named & (1u << BPF_R10)) && !(all_fit && n_given == n_prom);
            j->n_saved_regs = 0;
            for (int r = BPF_R6; r <= BPF_R9; r++)
                if (named & (1u << r))
                    j->saved_regs[j->n_saved_regs++] = reg_map[r];
            for (int k = 0; k < given + nc; k++)
                if (is_callee_saved(free_regs[k]))
                    j->saved_regs[j->n_saved_regs++] = free_regs[k];
        } else {
            for (int r = BPF_R6; r <= BPF_R9; r++)
                if (!(named & (1u << r)))
                    free_regs[n_free++] = reg_map[r];
            /* TMP2 and TMP3 for slots live only between calls */
            uint32_t scratch = 3u << n_free;
            free_regs[n_free++] = TMP2;
            free_regs[n_free++] = TMP3;
            int n_given;
            assign_slots(j, f, &u, free_regs, n_free, scratch, &n_given);
            if (j->direct)
                plan_direct_frame(j, named);
        }
        for (int k = 0; k < GVM_SLOTS; k++)
            j->tmp1_taken = j->tmp1_taken || j->slot_reg[f][k] == TMP1;
    }
    return 0;
}
