/*
 * tramp_reloc.c - per-site stubs: memory near the target, the choice between
 * the jump and the int3 method, and relocation of the displaced
 * instructions (decoded with Zydis).
 *
 * Stub memory comes from pages mapped twice from one memfd: an RX view
 * within +-2 GB of the hooked code (so `jmp rel32` reaches it and relocated
 * RIP-relative operands keep 32-bit displacements) and an RW view we write
 * through, so no page is ever writable and executable at once and live stubs
 * on a page are never made non-executable.
 *
 * Stub layout (GSTUB_SIZE bytes):
 *    0  lea rsp,[rsp-128]          skip the red zone of the interrupted code
 *    5  push qword [rip+site]      our struct gsite *
 *   11  jmp qword [rip+entry]      graft_tramp_entry_{fn,mid}
 *   17  lea rsp,[rsp+136]          continuation: drop slot and gap
 *   25  relocated instructions
 *       jmp rel32 addr+reloc_len (or jmp qword [rip+0]; .quad addr+reloc_len)
 *  112  .quad site, .quad entry
 *
 * With isolation on, pages are made for gated sites only: the RW view is
 * tagged with the extension key (stubs are written between giso_enter and
 * giso_leave) and the RX view is registered as a gate range for
 * giso_scan().
 *
 * Function-entry sites instead get the entry template (tramp_x86.c) at 0,
 * the relocated instructions right after it (it falls through into them,
 * ending with a jmp rel32 back), `call rel32` to them at GSTUB_CALL (taken
 * when a return probe is armed, see tramp_x86.c) and the return template at
 * GSTUB_RET, all patched with this site's addresses.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <Zydis/Zydis.h>

#include "attach/func_internal.h"

/* One trampoline mapping (memfd, mapped read+execute near the sites and
 * read+write elsewhere): four GSTUB_SIZE stubs, so finding a free range
 * near the code (a read of /proc/self/maps) is paid once per four sites. */
#define PAGE (4u * GSTUB_SIZE)
#define RANGE_LIMIT 0x7fff0000ll      /* keep clear of the rel32 edge */

struct stub_page {
    uint8_t *rx, *rw;
    uint32_t used;                    /* stubs handed out */
    int gated;                        /* rw view keyed, rx registered as gates */
    struct stub_page *next;
};
static struct stub_page *g_pages;

static int near(uint64_t a, uint64_t b)
{
    int64_t d = (int64_t)(a - b);
    return d > -RANGE_LIMIT && d < RANGE_LIMIT;
}

/* A free page-aligned address within range of target, from the gaps in
 * /proc/self/maps, closest first; 0 if none. */
static uint64_t find_gap_near(uint64_t target)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return 0;
    uint64_t prev_end = 0x10000, best = 0, best_dist = UINT64_MAX;
    char line[512];
    for (;;) {
        uint64_t lo, hi;
        int more = fgets(line, sizeof(line), f) != NULL;
        if (more) {
            if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
                continue;
        } else {
            lo = 0x7ffffffff000ull;
            hi = lo;
        }
        if (lo > prev_end + PAGE) {
            /* gap [prev_end, lo): candidate nearest to target */
            uint64_t cand = target < prev_end ? prev_end
                          : target >= lo - PAGE ? lo - PAGE : (target & ~(uint64_t)(PAGE - 1));
            uint64_t dist = cand > target ? cand - target : target - cand;
            if (near(cand, target) && near(cand + PAGE, target) && dist < best_dist) {
                best = cand;
                best_dist = dist;
            }
        }
        if (hi > prev_end)
            prev_end = hi;
        if (!more)
            break;
    }
    fclose(f);
    return best;
}

static struct stub_page *page_map_near(uint64_t target, struct graft_err *err)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        uint64_t want = find_gap_near(target);
        if (!want)
            break;
        int fd = memfd_create("graft-tramp", MFD_CLOEXEC);
        if (fd < 0)
            return graft_errf(err, -errno, "attach: memfd_create: %s", strerror(errno)), NULL;
        if (ftruncate(fd, PAGE) < 0) {
            close(fd);
            return graft_errf(err, -errno, "attach: ftruncate: %s", strerror(errno)), NULL;
        }
        void *rx = mmap((void *)want, PAGE, PROT_READ | PROT_EXEC,
                        MAP_SHARED | MAP_FIXED_NOREPLACE, fd, 0);
        if (rx == MAP_FAILED || (uint64_t)rx != want) {
            if (rx != MAP_FAILED)
                munmap(rx, PAGE);   /* old kernel ignoring NOREPLACE */
            close(fd);
            continue;               /* raced with another mapping: rescan */
        }
        void *rw = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        close(fd);
        if (rw == MAP_FAILED) {
            munmap(rx, PAGE);
            return graft_errf(err, -errno, "attach: mmap: %s", strerror(errno)), NULL;
        }
        struct stub_page *p = calloc(1, sizeof(*p));
        if (!p) {
            munmap(rx, PAGE);
            munmap(rw, PAGE);
            return graft_errf(err, -ENOMEM, "attach: out of memory"), NULL;
        }
        if (gattach_iso_on() && (giso_protect(rw, PAGE, PROT_READ | PROT_WRITE, err) < 0 ||
                             giso_register_gate_range(rx, PAGE) < 0)) {
            munmap(rx, PAGE);
            munmap(rw, PAGE);
            free(p);
            return graft_errf(err, -ENOMEM, "attach: cannot protect a trampoline page: %s",
                              err && err->msg[0] ? err->msg : "out of memory"), NULL;
        }
        p->rx = rx;
        p->rw = rw;
        p->gated = gattach_iso_on();
        p->next = g_pages;
        g_pages = p;
        return p;
    }
    graft_errf(err, -ENOMEM,
               "attach: no free address within +-2GB of %p for a trampoline",
               (void *)target);
    return NULL;
}

static int stub_alloc(struct gsite *site, struct graft_err *err)
{
    struct stub_page *p;
    for (p = g_pages; p; p = p->next)
        if (p->used < PAGE / GSTUB_SIZE && p->gated == (site->gated != GSITE_PLAIN) &&
            near((uint64_t)p->rx, site->addr) &&
            near((uint64_t)p->rx + PAGE, site->addr))
            break;
    if (!p && !(p = page_map_near(site->addr, err)))
        return err && err->code ? err->code : -ENOMEM;
    site->stub = p->rx + p->used * GSTUB_SIZE;
    site->stub_rw = p->rw + p->used * GSTUB_SIZE;
    p->used++;
    return 0;
}

/* One variant's labels, in struct gtmpl's order; gin/gout/rgin/rgout are
 * the gate slots (NULL in the variant without gates). */
#define GTMPL(sfx, gin, gout, rgin, rgout, exb, rxb)                                        \
    { graft_tmpl_entry##sfx, graft_tmpl_entry_end##sfx, graft_tp_e_addr##sfx,             \
      graft_tp_e_tls##sfx, graft_tp_e_site##sfx, graft_tp_e_gp##sfx, graft_tp_e_ret##sfx, \
      graft_tp_e_site2##sfx, graft_tp_e_slow##sfx, graft_tp_e_push##sfx, gin, gout,       \
      graft_tp_e_ret2##sfx, graft_tp_e_call##sfx, graft_tp_e_site3##sfx,                  \
      graft_tp_e_tls2##sfx, graft_tp_e_call2##sfx, graft_tmpl_ret##sfx,                   \
      graft_tmpl_ret_end##sfx, graft_tp_r_tls##sfx, graft_tp_r_gp##sfx,                   \
      graft_tp_r_missed##sfx, graft_tp_r_slow##sfx, rgin, rgout, graft_tp_r_site##sfx,    \
      exb, rxb }

static const struct gtmpl g_tmpls[3] = {      /* indexed by struct gsite.gated */
    [GSITE_PLAIN] = GTMPL(, NULL, NULL, NULL, NULL, NULL, NULL),
    [GSITE_GATED] = GTMPL(_g, graft_tp_e_gin_g, graft_tp_e_gout_g, graft_tp_r_gin_g,
                          graft_tp_r_gout_g, graft_tp_e_xbase_g, graft_tp_r_xbase_g),
    [GSITE_XSTACK] = GTMPL(_gs, graft_tp_e_gin_gs, graft_tp_e_gout_gs, graft_tp_r_gin_gs,
                           graft_tp_r_gout_gs, graft_tp_e_xbase_gs, graft_tp_r_xbase_gs),
};

/* Where an entry site's relocated instructions start: right after the
 * entry template, which falls through into them. */
static uint32_t site_cont_off(const struct gsite *site)
{
    const struct gtmpl *t = &g_tmpls[site->gated];
    return (uint32_t)(t->entry_end - t->entry);
}

/* ---- decoding ------------------------------------------------------------- */

static ZydisDecoder g_dec;
static int g_dec_ready;

static int decode(const uint8_t *p, size_t avail, ZydisDecodedInstruction *in)
{
    if (!g_dec_ready) {
        ZydisDecoderInit(&g_dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
        g_dec_ready = 1;
    }
    return ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&g_dec, NULL, p, avail, in)) ? 0 : -1;
}

static int is_rip_relative(const ZydisDecodedInstruction *in)
{
    return (in->attributes & ZYDIS_ATTRIB_HAS_MODRM) && in->raw.modrm.mod == 0 &&
           in->raw.modrm.rm == 5;
}

static int is_terminator(const ZydisDecodedInstruction *in)
{
    switch (in->mnemonic) {
    case ZYDIS_MNEMONIC_RET:
    case ZYDIS_MNEMONIC_JMP:
    case ZYDIS_MNEMONIC_UD2:
    case ZYDIS_MNEMONIC_HLT:
    case ZYDIS_MNEMONIC_INT3:
        return 1;
    default:
        return 0;
    }
}

/* Target of a relative branch at ip. */
static uint64_t branch_target(const ZydisDecodedInstruction *in, uint64_t ip)
{
    return ip + in->length + (uint64_t)in->raw.imm[0].value.s;
}

/* Scan [addr, addr+size) for relative branches into (addr, addr+patch_len).
 * Returns the branch's address or 0. Linear sweep: stops at undecodable
 * bytes (data or padding), which is conservative only for what was seen. */
static uint64_t scan_branch_into(uint64_t addr, uint64_t size, uint32_t patch_len)
{
    const uint8_t *p = (const uint8_t *)addr;
    uint64_t off = 0;
    while (off < size) {
        ZydisDecodedInstruction in;
        if (decode(p + off, size - off, &in) < 0)
            break;
        if (in.attributes & ZYDIS_ATTRIB_IS_RELATIVE && in.raw.imm[0].is_relative) {
            uint64_t t = branch_target(&in, addr + off);
            if (t > addr && t < addr + patch_len)
                return addr + off;
        }
        off += in.length;
    }
    return 0;
}

/* ---- relocation ----------------------------------------------------------- */

struct emit {
    uint8_t *buf;        /* RW view */
    uint64_t base;       /* RX address of buf[0] */
    uint32_t len, cap;
};

static int put(struct emit *e, const void *b, uint32_t n)
{
    if (e->len + n > e->cap)
        return -1;
    memcpy(e->buf + e->len, b, n);
    e->len += n;
    return 0;
}

static int put_rel32(struct emit *e, const uint8_t *op, uint32_t oplen, uint64_t target)
{
    uint64_t end = e->base + e->len + oplen + 4;
    int64_t d = (int64_t)(target - end);
    if (d < INT32_MIN || d > INT32_MAX)
        return -2;
    int32_t d32 = (int32_t)d;
    if (put(e, op, oplen) < 0 || put(e, &d32, 4) < 0)
        return -1;
    return 0;
}

/* Copy one instruction from ip into e, fixing what depends on its address.
 * Returns 0, or a static string saying why it can't be moved. */
static const char *relocate_one(struct emit *e, const ZydisDecodedInstruction *in,
                                uint64_t ip, uint64_t lo, uint64_t hi)
{
    const uint8_t *src = (const uint8_t *)ip;

    if (in->attributes & ZYDIS_ATTRIB_IS_RELATIVE && in->raw.imm[0].is_relative) {
        uint64_t t = branch_target(in, ip);
        int rc;
        if (t >= lo && t < hi && t != ip)
            return "a branch inside the displaced bytes";
        if (in->mnemonic == ZYDIS_MNEMONIC_JMP) {
            rc = put_rel32(e, (const uint8_t[]){ 0xE9 }, 1, t);
        } else if (in->mnemonic == ZYDIS_MNEMONIC_CALL) {
            rc = put_rel32(e, (const uint8_t[]){ 0xE8 }, 1, t);
        } else if (in->meta.category == ZYDIS_CATEGORY_COND_BR &&
                   in->mnemonic != ZYDIS_MNEMONIC_JRCXZ && in->mnemonic != ZYDIS_MNEMONIC_JECXZ &&
                   in->mnemonic != ZYDIS_MNEMONIC_LOOP && in->mnemonic != ZYDIS_MNEMONIC_LOOPE &&
                   in->mnemonic != ZYDIS_MNEMONIC_LOOPNE) {
            uint8_t cc = in->opcode & 0x0F;
            rc = put_rel32(e, (const uint8_t[]){ 0x0F, (uint8_t)(0x80 | cc) }, 2, t);
        } else {
            return "a relative branch that has no rel32 form (loop/jrcxz/xbegin)";
        }
        if (rc == -2)
            return "a branch target out of rel32 range from the trampoline";
        return rc < 0 ? "too much relocated code" : NULL;
    }
    if (is_rip_relative(in)) {
        uint64_t t = ip + in->length + (uint64_t)in->raw.disp.value;
        uint64_t new_end = e->base + e->len + in->length;
        int64_t d = (int64_t)(t - new_end);
        if (in->raw.disp.size != 32)
            return "a RIP-relative operand without disp32";
        if (t >= lo && t < hi)
            return "a RIP-relative operand pointing into the displaced bytes";
        if (d < INT32_MIN || d > INT32_MAX)
            return "a RIP-relative operand out of rel32 range from the trampoline";
        uint32_t at = e->len;
        if (put(e, src, in->length) < 0)
            return "too much relocated code";
        int32_t d32 = (int32_t)d;
        memcpy(e->buf + at + in->raw.disp.offset, &d32, 4);
        return NULL;
    }
    if (in->mnemonic == ZYDIS_MNEMONIC_INT3 || in->mnemonic == ZYDIS_MNEMONIC_INT1 ||
        in->mnemonic == ZYDIS_MNEMONIC_SYSCALL)
        return "an instruction that must stay in place (int3/syscall)";
    if (put(e, src, in->length) < 0)
        return "too much relocated code";
    return NULL;
}

/* Relocate the instructions covering at least need bytes at site->addr into
 * the stub. func_size (0 = unknown) bounds what may be overwritten. */
static const char *relocate(struct gsite *site, uint32_t need, uint64_t func_size,
                            uint32_t *covered)
{
    uint32_t at = site->is_entry ? site_cont_off(site) : GSTUB_RELOC;
    uint32_t cap = site->is_entry ? GSTUB_ERELOC_MAX - 14 : GSTUB_RELOC_MAX;
    struct emit e = { site->stub_rw + at, (uint64_t)site->stub + at, 0, cap };
    uint64_t ip = site->addr;
    uint32_t off = 0;
    ZydisDecodedInstruction ins[8];
    int n = 0;

    while (off < need) {
        if (n == 8 || decode((const uint8_t *)ip + off, 15, &ins[n]) < 0)
            return "undecodable instructions at the entry";
        if (is_terminator(&ins[n]) && off + ins[n].length < need &&
            (func_size == 0 || func_size < need))
            return "the function is shorter than the 5-byte jump";
        off += ins[n].length;
        n++;
    }
    if (func_size && off > func_size && need > 1)
        return "the function is shorter than the 5-byte jump";
    uint64_t cur = ip;
    site->n_inner = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0) {
            site->inner_off[site->n_inner] = (uint8_t)(cur - ip);
            site->inner_stub[site->n_inner] = (uint16_t)(at + e.len);
            site->n_inner++;
        }
        const char *why = relocate_one(&e, &ins[i], cur, ip + 1, ip + off);
        if (why)
            return why;
        cur += ins[i].length;
    }
    /* Back to the rest of the function: jmp rel32 (the stub is within
     * +-2GB of it), else jmp qword [rip+0]; .quad back. Room for either is
     * reserved by the caps above. */
    uint64_t back = ip + off;
    int64_t d = (int64_t)(back - (e.base + e.len + 5));
    if (d >= INT32_MIN && d <= INT32_MAX) {
        uint8_t jb[5] = { 0xE9 };
        int32_t d32 = (int32_t)d;
        memcpy(jb + 1, &d32, 4);
        memcpy(e.buf + e.len, jb, sizeof(jb));
    } else {
        uint8_t jb[14] = { 0xFF, 0x25, 0, 0, 0, 0 };
        memcpy(jb + 6, &back, 8);
        memcpy(e.buf + e.len, jb, sizeof(jb));
    }
    *covered = off;
    return NULL;
}

/* Copy template [t, end) to off in the stub; return its length. */
static uint32_t copy_tmpl(struct gsite *site, uint32_t off, const uint8_t *t,
                          const uint8_t *end)
{
    memcpy(site->stub_rw + off, t, (size_t)(end - t));
    return (uint32_t)(end - t);
}

/* Patch the operand that ends at label (imm64 or disp32) in a template
 * copied from t to off. */
static void patch64(struct gsite *site, uint32_t off, const uint8_t *t, const uint8_t *label,
                    uint64_t v)
{
    memcpy(site->stub_rw + off + (label - t) - 8, &v, 8);
}

static void patch32(struct gsite *site, uint32_t off, const uint8_t *t, const uint8_t *label,
                    int32_t v)
{
    memcpy(site->stub_rw + off + (label - t) - 4, &v, 4);
}

/* Fill the gate slot that ends at label with a gate loading pkru. */
static void patch_gate(struct gsite *site, uint32_t off, const uint8_t *t, const uint8_t *label,
                       uint32_t pkru)
{
    uint8_t *at = site->stub_rw + off + (label - t) - GGATE_LEN;
    size_t n = giso_emit_gate(at, GGATE_LEN, pkru);
    (void)n;    /* == GGATE_LEN: checked by gattach_set_isolation() */
}

static void write_templates(struct gsite *site)
{
    int32_t tls = (int32_t)(int64_t)gthread_tls_offset();
    const struct gtmpl *T = &g_tmpls[site->gated];
    const uint8_t *e = T->entry, *r = T->ret;
    copy_tmpl(site, 0, e, T->entry_end);
    patch64(site, 0, e, T->e_addr, site->addr);
    patch32(site, 0, e, T->e_tls, tls);
    patch64(site, 0, e, T->e_site, (uint64_t)site);
    patch64(site, 0, e, T->e_site2, (uint64_t)site);
    patch64(site, 0, e, T->e_gp, gthread_gp_addr());
    patch64(site, 0, e, T->e_ret, (uint64_t)site->stub + GSTUB_RET);
    patch64(site, 0, e, T->e_ret2, (uint64_t)site->stub + GSTUB_RET);
    /* jmp rel32 (its operand ends at e_call) to GSTUB_CALL, where
     * `call rel32` enters the relocated code with the return template's
     * address as return address: the function's `ret` then matches a
     * `call` for the return-stack predictor, and so does the return
     * template's own `ret` to the real caller. */
    patch32(site, 0, e, T->e_call, (int32_t)(GSTUB_CALL - (T->e_call - e)));
    patch32(site, 0, e, T->e_call2, (int32_t)(GSTUB_CALL - (T->e_call2 - e)));
    patch64(site, 0, e, T->e_site3, (uint64_t)site);
    patch32(site, 0, e, T->e_tls2, tls);
    uint8_t call[5] = { 0xE8 };
    int32_t rel = (int32_t)site_cont_off(site) - GSTUB_RET;
    memcpy(call + 1, &rel, 4);
    memcpy(site->stub_rw + GSTUB_CALL, call, sizeof(call));
    patch64(site, 0, e, T->e_slow, (uint64_t)graft_tramp_enter_slow);
    patch64(site, 0, e, T->e_push, (uint64_t)graft_tramp_push_slow);
    copy_tmpl(site, GSTUB_RET, r, T->ret_end);
    patch32(site, GSTUB_RET, r, T->r_tls, tls);
    patch64(site, GSTUB_RET, r, T->r_gp, gthread_gp_addr());
    patch64(site, GSTUB_RET, r, T->r_missed, ghit_missed_addr());
    patch64(site, GSTUB_RET, r, T->r_slow, (uint64_t)graft_hook_return);
    patch64(site, GSTUB_RET, r, T->r_site, (uint64_t)site);
    if (site->gated) {
        patch_gate(site, 0, e, T->e_gin, giso_pkru_ext());
        patch_gate(site, 0, e, T->e_gout, giso_pkru_host());
        patch_gate(site, GSTUB_RET, r, T->r_gin, giso_pkru_ext());
        patch_gate(site, GSTUB_RET, r, T->r_gout, giso_pkru_host());
        patch64(site, 0, e, T->e_xbase, giso_xctl_base());
        patch64(site, GSTUB_RET, r, T->r_xbase, giso_xctl_base());
    }
    site->ret_tramp = (uint64_t)site->stub + GSTUB_RET;
}

static void write_stub_head(struct gsite *site)
{
    if (site->is_entry) {
        write_templates(site);
        return;
    }
    site->ret_tramp = (uint64_t)graft_tramp_ret;
    uint8_t *w = site->stub_rw;
    static const uint8_t head[GSTUB_RELOC] = {
        0x48, 0x8D, 0x64, 0x24, 0x80,                   /* lea rsp,[rsp-128] */
        0xFF, 0x35, 0, 0, 0, 0,                         /* push [rip+site] */
        0xFF, 0x25, 0, 0, 0, 0,                         /* jmp [rip+entry] */
        0x48, 0x8D, 0xA4, 0x24, 0x88, 0x00, 0x00, 0x00, /* lea rsp,[rsp+136] */
    };
    memcpy(w, head, sizeof(head));
    int32_t d_site = GSTUB_DATA_SITE - 11, d_entry = GSTUB_DATA_ENTRY - 17;
    memcpy(w + 7, &d_site, 4);
    memcpy(w + 13, &d_entry, 4);
    uint64_t sp = (uint64_t)site;
    uint64_t ep = site->is_entry ? (uint64_t)graft_tramp_entry_fn
                                 : (uint64_t)graft_tramp_entry_mid;
    memcpy(w + GSTUB_DATA_SITE, &sp, 8);
    memcpy(w + GSTUB_DATA_ENTRY, &ep, 8);
}

static int build_stub(struct gsite *site, uint64_t func_size, int force_trap, int no_trap,
                      struct graft_err *err);

/* The stub page is a registered gate range, which the process scan skips:
 * so no byte pattern of WRPKRU/XRSTOR/XRSTORS may be in it but the WRPKRUs
 * of its own gates - not in an address it holds as an immediate, a rel32,
 * nor in the hooked function's relocated instructions (their bytes are the
 * host's; a pattern inside them was hidden in an instruction there and is
 * still usable here). A stub with one is wiped (int3) and the hook refused:
 * its addresses and the host's bytes are what they are, so building it
 * again would give the same bytes. */
static int check_stub(struct gsite *site, struct graft_err *err)
{
    size_t ok[4], n = 0, bad = 0;
    const struct gtmpl *T = &g_tmpls[site->gated];
    if (site->gated && site->is_entry) {
        ok[n++] = (size_t)(T->e_gin - T->entry) - GGATE_LEN + GISO_GATE_WRPKRU_OFF;
        ok[n++] = (size_t)(T->e_gout - T->entry) - GGATE_LEN + GISO_GATE_WRPKRU_OFF;
        ok[n++] = GSTUB_RET + (size_t)(T->r_gin - T->ret) - GGATE_LEN + GISO_GATE_WRPKRU_OFF;
        ok[n++] = GSTUB_RET + (size_t)(T->r_gout - T->ret) - GGATE_LEN + GISO_GATE_WRPKRU_OFF;
    }
    if (giso_check_emitted(site->stub_rw, GSTUB_SIZE, ok, n, &bad) == 0)
        return 0;
    memset(site->stub_rw, 0xcc, GSTUB_SIZE);
    __builtin___clear_cache((char *)site->stub, (char *)site->stub + GSTUB_SIZE);
    return graft_errf(err, -ENOTSUP, "attach: the trampoline for %p would hold a WRPKRU/XRSTOR "
                      "byte pattern at stub offset %zu (in %s), which could change PKRU; not "
                      "installed", (void *)site->addr, bad,
                      bad >= (size_t)site_cont_off(site) &&
                      bad < (size_t)site_cont_off(site) + GSTUB_ERELOC_MAX && site->is_entry
                          ? "the hooked function's relocated instructions"
                          : "an address or offset it holds");
}

int gtramp_build(struct gsite *site, uint64_t func_size, int force_trap,
                 int no_trap, struct graft_err *err)
{
    for (int v = 0; v < 3; v++)
        if ((g_tmpls[v].entry_end - g_tmpls[v].entry) + GSTUB_ERELOC_MAX > GSTUB_CALL ||
            GSTUB_RET + (g_tmpls[v].ret_end - g_tmpls[v].ret) > GSTUB_SIZE)
            return graft_errf(err, -EOVERFLOW, "attach: internal: trampoline templates exceed "
                              "GSTUB_SIZE (func_internal.h); enlarge it");
    site->gated = gattach_iso_mode();
    int rc = stub_alloc(site, err);
    if (rc < 0)
        return rc;
    /* With isolation on the stub pages' writable views carry the extension
     * key: the host cannot rewrite a gate's PKRU immediate through them. */
    giso_enter();
    rc = build_stub(site, func_size, force_trap, no_trap, err);
    if (rc == 0)
        rc = check_stub(site, err);
    giso_leave();
    return rc;
}

static int build_stub(struct gsite *site, uint64_t func_size, int force_trap, int no_trap,
                      struct graft_err *err)
{
    write_stub_head(site);

    const char *why = NULL;
    uint32_t covered = 0;
    char note[160] = "";
    if (force_trap) {
        snprintf(note, sizeof(note), "int3 requested by options");
    } else {
        uint64_t br = func_size ? scan_branch_into(site->addr, func_size, GPATCH_LEN) : 0;
        if (br) {
            snprintf(note, sizeof(note),
                     "the branch at %p jumps into the first %d bytes", (void *)br, GPATCH_LEN);
        } else if ((why = relocate(site, GPATCH_LEN, func_size, &covered)) != NULL) {
            snprintf(note, sizeof(note), "cannot relocate the entry: %s", why);
        } else {
            site->method = GATTACH_METHOD_JUMP;
            site->patch_len = GPATCH_LEN;
            site->reloc_len = covered;
        }
    }
    if (site->method != GATTACH_METHOD_JUMP) {
        if (no_trap)
            return graft_errf(err, -ENOTSUP,
                              "attach: cannot put a jump at %p: %s (int3 fallback disabled)",
                              (void *)site->addr, note);
        why = relocate(site, 1, func_size, &covered);
        if (why)
            return graft_errf(err, -ENOTSUP,
                              "attach: cannot hook %p: first instruction has %s",
                              (void *)site->addr, why);
        site->method = GATTACH_METHOD_TRAP;
        site->patch_len = 1;
        site->reloc_len = covered;
        memcpy(site->note, note, sizeof(site->note));
    }
    memcpy(site->orig, (void *)site->addr, site->patch_len);
    memcpy(site->orig_long, (void *)site->addr, sizeof(site->orig_long));
    site->cont = (uint64_t)site->stub + (site->is_entry ? site_cont_off(site) : GSTUB_CONT);
    __builtin___clear_cache((char *)site->stub, (char *)site->stub + GSTUB_SIZE);
    return 0;
}
