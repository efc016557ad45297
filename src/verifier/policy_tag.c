/*
 * policy_tag.c - a fingerprint of a verification policy, for tail calls.
 *
 * A tail call runs the target on the caller's context, at the caller's
 * entry, in the caller's process. The target was verified against its own
 * policy: its context layout (a socket program may read 4096 bytes of a
 * context that, reached from a uprobe, is a 168-byte pt_regs on the host's
 * stack), and its grants (helpers, host functions and globals, argument
 * rights, budgets, return and override ranges). Reached from a caller
 * verified under another policy it could read past the context or use
 * capabilities the caller's class was never granted. The kernel binds a
 * prog array to one program type; graft binds it to one policy: tail calls
 * only go between programs whose policies have equal tags.
 *
 * The tag hashes every field of struct gver_policy that decides what a
 * program may do (not max_states, a search limit), by value: names and
 * numbers, never addresses, so loaders in different processes agree.
 */
#include "verifier/verifier.h"

#include <string.h>

struct tagger {
    uint64_t h;
};

/* FNV-1a, 64 bit. */
static void mix(struct tagger *t, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        t->h ^= b[i];
        t->h *= 0x100000001b3ull;
    }
}

static void mix_u64(struct tagger *t, uint64_t v) { mix(t, &v, sizeof(v)); }

static void mix_str(struct tagger *t, const char *s)
{
    mix(t, s ? s : "", s ? strlen(s) + 1 : 1);
}

static void mix_ctx(struct tagger *t, const struct gver_ctx_layout *c)
{
    mix_u64(t, c != NULL);
    if (!c)
        return;
    mix_str(t, c->name);
    mix_u64(t, c->size);
    mix_u64(t, c->n_fields);
    for (uint32_t i = 0; i < c->n_fields; i++) {
        mix_u64(t, c->fields[i].off);
        mix_u64(t, c->fields[i].size);
        mix_u64(t, c->fields[i].access);
    }
}

static void mix_helpers(struct tagger *t, const struct gver_policy *p)
{
    for (uint32_t id = 0; id < BPF_MAX_HELPER_ID; id++) {
        if (!gver_policy_helper_allowed(p, id))
            continue;
        const struct ghelper_proto *pr = p->helper_proto ? p->helper_proto(id) : ghelper_proto(id);
        mix_u64(t, id);
        mix_u64(t, pr != NULL);
        if (!pr)
            continue;
        mix_u64(t, pr->ret);
        for (int a = 0; a < 5; a++)
            mix_u64(t, pr->args[a]);
        mix_u64(t, pr->flags);
    }
}

static void mix_kfuncs(struct tagger *t, const struct gver_policy *p)
{
    mix_u64(t, p->n_kfuncs);
    for (uint32_t i = 0; i < p->n_kfuncs; i++) {
        const struct gver_kfunc *k = &p->kfuncs[i];
        mix_str(t, k->name);
        mix_u64(t, (uint64_t)(int64_t)k->id);
        for (int a = 0; a < 5; a++) {
            mix_u64(t, k->args[a]);
            mix_u64(t, (uint64_t)k->arg_min[a]);
            mix_u64(t, (uint64_t)k->arg_max[a]);
        }
        mix_u64(t, k->ret);
        mix_u64(t, (uint64_t)k->ret_min);
        mix_u64(t, (uint64_t)k->ret_max);
    }
    mix_u64(t, p->n_ksyms);
    for (uint32_t i = 0; i < p->n_ksyms; i++) {
        mix_str(t, p->ksyms[i].name);
        mix_u64(t, (uint64_t)(int64_t)p->ksyms[i].id);
        mix_u64(t, p->ksyms[i].size);
        mix_u64(t, p->ksyms[i].access);
    }
}

static void mix_host_ptrs(struct tagger *t, const struct gver_policy *p)
{
    mix_u64(t, p->n_host_ptrs);
    for (uint32_t i = 0; i < p->n_host_ptrs; i++) {
        const struct gver_host_ptr *hp = &p->host_ptrs[i];
        mix_u64(t, hp->ctx_off);
        mix_str(t, hp->name);
        mix_u64(t, hp->size);
        mix_u64(t, hp->n_fields);
        for (uint32_t f = 0; f < hp->n_fields; f++) {
            mix_str(t, hp->fields[f].name);
            mix_u64(t, hp->fields[f].off);
            mix_u64(t, hp->fields[f].size);
            mix_u64(t, hp->fields[f].access);
        }
    }
}

uint64_t gver_policy_tag(const struct gver_policy *p)
{
    struct tagger t = { 0xcbf29ce484222325ull };
    mix_ctx(&t, p->ctx);
    mix_helpers(&t, p);
    mix_kfuncs(&t, p);
    mix_host_ptrs(&t, p);
    mix_u64(&t, p->insn_budget);
    mix_u64(&t, p->mem_budget);
    mix_u64(&t, (uint64_t)p->allow_ptr_leaks);
    if (p->spec_bypass)        /* offline only: the others' tags stay as they were */
        mix_u64(&t, 0x5bec);
    mix_u64(&t, (uint64_t)p->ret_min);
    mix_u64(&t, (uint64_t)p->ret_max);
    mix_u64(&t, (uint64_t)p->override_range);
    mix_u64(&t, (uint64_t)p->override_min);
    mix_u64(&t, (uint64_t)p->override_max);
    if (p->kernel_reads_own_mem)   /* set only under graft compat: other tags stay as they were */
        mix_u64(&t, 0x6f776e6d656dull);
    if (p->strict_align)       /* offline only: the others' tags stay as they were */
        mix_u64(&t, 0x616c69676eull);
    if (p->kctx) {             /* kernel contexts only: graft's own tags stay as they were */
        mix_u64(&t, (uint64_t)p->kctx);
        mix_u64(&t, p->kctx_attach);
    }
    return t.h ? t.h : 1;    /* 0 stays "no tag" */
}
