/*
 * agent.c - the agent inside a target process; see agent.h.
 *
 * The agent keeps these tables, all written only by the thread that
 * reconciles (the constructor's thread, then the agent thread), under
 * agent->lock:
 *   ids    registry map id  -> this process's struct gmap handle, and
 *          registry prog id -> compiled program (struct agent_ids, keyed:
 *          extensions resolve ids through it)
 *   progs  registry prog id -> compiled instance, with a count of links using it
 *   links  registry link id -> installed hook, or the reason it failed
 * Reconciling compares a registry snapshot with the links table: links that
 * disappeared are unhooked first (gattach_remove waits until no thread runs
 * their program), then new links are installed. A link that failed is not
 * retried until the registry changes it, so a bad link cannot make the agent
 * spin. After `graft detach` the agent removes every hook and idles; `graft
 * attach` on the same process wakes it again (the library is loaded once).
 *
 * Tail calls find their targets through grt_set_prog_resolver(): a table of
 * (id, program) in metadata pages (struct agent_ids), read there without the
 * lock, so entries are published with release stores and never freed while
 * a link that could tail-call them is installed. With isolation on, that
 * table, the programs' descriptors and the map handles carry the extension
 * key: the agent writes them between C gates (giso_enter/giso_leave).
 */
#define _GNU_SOURCE
#include "runtime/agent.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "attach/attach.h"
#include "eim/eim.h"
#include "helpers/helpers.h"
#include "isolation/isolation.h"
#include "runtime/instance.h"
#include "runtime/trace.h"
#include "util/settings.h"

#define AGENT_MAX_PROGS 1024
#define AGENT_MAX_MAPS  1024
#define AGENT_MAX_LINKS 4096

struct agent_prog {
    uint32_t id;               /* published last */
    uint32_t links;            /* links using it */
    int calls_out;             /* calls helpers or host code (may clobber xmm) */
    int keeps_fp;              /* calls only GHELPER_F_FP_FREE helpers (ghelper_prog_fp_free) */
    struct grt_instance *inst;
};

/* JIT code itself only uses integer registers; only a call to a helper, a
 * host function or an unknown callx target can clobber the floating-point
 * argument registers the hooked function still needs. */
static int calls_out_of_program(const struct bpf_insn *insns, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        if (BPF_CLASS(in->code) == BPF_JMP && BPF_OP(in->code) == BPF_CALL &&
            !(BPF_SRC(in->code) == BPF_K && in->src_reg == BPF_PSEUDO_CALL))
            return 1;
    }
    return 0;
}

/* What extensions resolve by registry id at run time: tail-call targets
 * (prog_by_id) and a map-in-map's inner maps (map_by_id). Tables in
 * metadata pages, under the extension key when isolation is on, written
 * between C gates, read on the extension side without the lock (counts
 * published with release stores). The compiled programs' descriptors,
 * which the JIT'd code reads for tail calls, live in such pages too
 * (giso_meta_alloc_cb), and so do the map handles. */
struct agent_ids {
    uint32_t n_progs;
    struct { uint32_t id; uint64_t policy_tag; const struct gvm_prog *prog; } progs[AGENT_MAX_PROGS];
    uint32_t n_maps;
    struct { uint32_t id; struct gmap *map; } maps[AGENT_MAX_MAPS];
};
/* The map resolver is process-wide and takes no argument: the running
 * agent's table (cleared when a stopping agent frees it). */
static const struct agent_ids *g_ids;

static struct gmap *ids_find_map(const struct agent_ids *ids, uint32_t id)
{
    uint32_t n = __atomic_load_n(&ids->n_maps, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++)
        if (ids->maps[i].id == id)
            return ids->maps[i].map;
    return NULL;
}

static struct gmap *map_by_id(uint32_t id)
{
    const struct agent_ids *ids = __atomic_load_n(&g_ids, __ATOMIC_ACQUIRE);
    return ids ? ids_find_map(ids, id) : NULL;
}

struct agent_link {
    uint32_t id;
    uint32_t prog_id;
    struct ghook *hook;        /* function links, NULL when failed or not applicable */
    struct gsys_link *sys;     /* syscall links */
    struct gentry_link **src;  /* source-entry links: one per GRAFT_ENTRY site of the name */
    uint32_t n_src;
    struct gsample *sample;    /* perf_event sampling links (attach/sample.c) */
    struct gevent_link *event; /* sched_process_exit / signal_generate links (attach/sys_events.c) */
    int failed;
};

struct gagent {
    struct greg *reg;          /* mapped read-only */
    struct greg_self *self;    /* this process's status object */
    pthread_mutex_t lock;
    pthread_t thread;
    int thread_running;
    volatile int stopping;
    uint64_t generation;

    struct agent_prog progs[AGENT_MAX_PROGS];
    uint32_t n_progs;
    struct agent_ids *ids;     /* metadata pages; kept while programs may run */
    struct agent_link links[AGENT_MAX_LINKS];
    uint32_t n_links;
    uint32_t installed, failed;
    char message[256];
    struct gmap *trace;        /* bpf_trace_printk output, once it exists */
    int syscalls_installed;    /* gsys_install done (first syscall link) */
    int test_delay_ms;         /* GRAFT_TEST_AGENT_DELAY_MS, see gagent_start */
    int no_facts;              /* GRAFT_JIT_FACTS=0: compile without the verifier's facts */
};

static struct gagent *the_agent;   /* the constructor's agent, for fork and tail calls */

/* ---- maps and programs ---- */

/* A map handle says where the map is and how it is laid out: what every
 * map helper trusts. So it leaves the host's heap for a page of its own,
 * tagged with the extension key when isolation is on (written between C
 * gates). The JIT'd code holds the handle's address as an immediate. */
static struct gmap *handle_to_meta(struct gmap *map, struct graft_err *err)
{
    void *page = giso_meta_alloc(gmap_handle_size(), err);
    if (!page) {
        gmap_close(map);
        return NULL;
    }
    giso_enter();
    struct gmap *moved = gmap_handle_move(map, page);
    giso_leave();
    return moved;
}

static void handle_close(struct gmap *map)
{
    giso_enter();
    gmap_close(map);
    giso_leave();
    giso_meta_free(map, gmap_handle_size());
}

/* The bpf_printk ring buffer, once it exists and extensions may run here
 * (isolation is set up first: the buffer carries the key). */
static void open_trace(struct gagent *a, const struct greg_snapshot *s)
{
    if (a->ids && !a->trace && greg_snapshot_map_by_name(s, GRT_TRACE_MAP) &&
        grt_trace_open(a->reg, 0, &a->trace, NULL) == 0) {
        if (giso_enabled())
            gmap_protect_key(a->trace, giso_pkey(), NULL);
        if ((a->trace = handle_to_meta(a->trace, NULL)))
            grt_trace_redirect(a->trace);
    }
}

static struct gmap *agent_map(struct gagent *a, const struct greg_snapshot *s, uint32_t id,
                              struct graft_err *err)
{
    giso_enter();
    struct gmap *known = ids_find_map(a->ids, id);
    uint32_t n_maps = a->ids->n_maps;
    giso_leave();
    if (known)
        return known;
    const struct greg_map *rec = greg_snapshot_map(s, id);
    if (!rec) {
        graft_errf(err, -ENOENT, "map id %u is not in the registry", id);
        return NULL;
    }
    if (n_maps == AGENT_MAX_MAPS) {
        graft_errf(err, -ENOSPC, "agent: too many maps");
        return NULL;
    }
    struct gmap *map;
    if (gmap_open(rec->shm, &map, err) < 0)
        return NULL;
    /* With isolation on, only extensions (and helpers they call) may touch
     * map memory in this process; the host's own code faults. */
    if (giso_enabled() && gmap_protect_key(map, giso_pkey(), err) < 0) {
        gmap_close(map);
        return NULL;
    }
    if (!(map = handle_to_meta(map, err)))
        return NULL;
    giso_enter();
    struct agent_ids *ids = a->ids;
    ids->maps[ids->n_maps].id = id;
    ids->maps[ids->n_maps].map = map;
    __atomic_store_n(&ids->n_maps, ids->n_maps + 1, __ATOMIC_RELEASE);
    giso_leave();
    return map;
}

static struct agent_prog *find_prog(struct gagent *a, uint32_t id)
{
    for (uint32_t i = 0; i < a->n_progs; i++)
        if (a->progs[i].id == id)
            return &a->progs[i];
    return NULL;
}

/* Host functions and globals an EIM extension names: the main executable's
 * symbol tables (.symtab, then .dynsym) first, then whatever the dynamic
 * linker exports from the loaded libraries. */
static int resolve_extern(void *arg, const struct greg_extern *x, void **addr,
                          struct graft_err *err)
{
    (void)arg;
    const char *name = x->name;
    struct graft_err sub = {0};
    void *p = NULL;
    if (gattach_resolve(NULL, name, 0, &p, &sub) < 0 && !(p = dlsym(RTLD_DEFAULT, name)))
        return graft_errf(err, -ENOENT, "%s; no loaded library exports it either", sub.msg);
    /* A host function called from an extension runs as host code: behind
     * an exit gate, with the extension key disabled, on the host stack,
     * given copies of the memory its pointer arguments name (identity when
     * off). */
    if (x->kind == GREG_EXTERN_FUNC) {
        gvm_helper_fn thunk = giso_wrap_host_call_mem((gvm_helper_fn)p, x->mem_args, err);
        if (!thunk)
            return graft_err_prefix(err, "host function %s", name);
        p = (void *)thunk;
    }
    *addr = p;
    return 0;
}

static struct agent_prog *load_prog(struct gagent *a, const struct greg_snapshot *s, uint32_t id,
                                    struct graft_err *err);
static int agent_isolation_setup(struct gagent *a, struct graft_err *err);

/* Slots that hold registry ids, and what must exist in this process for
 * them to resolve at run time:
 *  - a prog array's programs: a tail call finds only programs this agent
 *    compiled, and nothing links a program that runs only by tail call;
 *  - a map of maps' inner maps: map_by_id knows only maps this agent opened.
 * So when a program is loaded, the programs and inner maps its maps name
 * now (e.g. the object's declared ones, which graft load wrote) are loaded
 * and opened with it. Failures are reported, not fatal: a tail call to a
 * missing program falls through as to an empty slot, and a missing inner
 * map looks up as NULL, which programs handle anyway. Slots filled later
 * are not followed. */
static void follow_slots(struct gagent *a, const struct greg_snapshot *s,
                         const struct greg_prog *rec, struct gmap *map, int progs)
{
    char name[sizeof(((struct gmap_def *)0)->name)];
    giso_enter();
    const struct gmap_def *d = gmap_get_def(map);
    uint32_t type = d->type, ks = d->key_size;
    memcpy(name, d->name, sizeof(name));
    giso_leave();
    if ((progs ? type != GMAP_PROG_ARRAY
               : type != GMAP_ARRAY_OF_MAPS && type != GMAP_HASH_OF_MAPS) || ks > 64)
        return;
    unsigned char key[64], next[64];
    const void *prev = NULL;
    for (;;) {
        uint32_t id = 0;
        giso_enter();                 /* the map's memory carries the key */
        int rc = gmap_get_next_key(map, prev, next);
        if (rc == 0 && gmap_lookup_copy(map, next, &id) < 0)
            id = 0;
        giso_leave();
        if (rc < 0)
            break;
        memcpy(key, next, ks);
        prev = key;
        struct graft_err e = {0};
        if (progs && id) {
            /* Said here, where it is found; tail_call_target refuses it at
             * every call (the slot is shared memory: it is not trusted). */
            const struct greg_prog *t = greg_snapshot_prog(s, id);
            if (t && t->policy_tag != rec->policy_tag)
                fprintf(stderr, "graft-agent[%d]: program %s: tail calls to program %s (id %u, slot of "
                                "map %s) are refused: it was verified for another context or policy "
                                "(section %s, not %s)\n",
                        getpid(), rec->name, t->name, id, name, t->section, rec->section);
        }
        if (!id || (progs ? find_prog(a, id) || load_prog(a, s, id, &e) != NULL
                          : agent_map(a, s, id, &e) != NULL))
            continue;
        fprintf(stderr, "graft-agent[%d]: program %s: %s id %u (a slot of map %s) not %s: %s\n",
                getpid(), rec->name, progs ? "tail-call target program" : "inner map", id,
                name, progs ? "loaded" : "opened", e.msg);
    }
}

static struct agent_prog *load_prog(struct gagent *a, const struct greg_snapshot *s, uint32_t id,
                                    struct graft_err *err)
{
    struct agent_prog *p = find_prog(a, id);
    if (p)
        return p;
    const struct greg_prog *rec = greg_snapshot_prog(s, id);
    if (!rec) {
        graft_errf(err, -ENOENT, "program id %u is not in the registry", id);
        return NULL;
    }
    if (a->n_progs == AGENT_MAX_PROGS) {
        graft_errf(err, -ENOSPC, "agent: too many programs");
        return NULL;
    }
    struct gmap *maps[GREG_PROG_MAPS];
    for (uint32_t i = 0; i < rec->n_maps; i++)
        if (!(maps[i] = agent_map(a, s, rec->map_ids[i], err))) {
            graft_err_prefix(err, "program %s", rec->name);
            return NULL;
        }
    for (uint32_t i = 0; i < rec->n_maps; i++)      /* inner maps: before compiling */
        follow_slots(a, s, rec, maps[i], 0);
    struct bpf_insn *insns;
    struct gvm_insn_fact *facts;
    if (greg_prog_code(a->reg, rec, &insns, &facts, err) < 0)
        return NULL;
    /* The facts are the verifier's for exactly these bytes: the loader
     * stored both under the one hash greg_prog_code checked. */
    struct grt_instance *inst;
    struct grt_instance_opts io = {
        .sz = sizeof(io), .engine = GVM_ENGINE_JIT,
        .externs = rec->externs, .n_externs = rec->n_externs,
        .resolve = resolve_extern,
        .desc_alloc = giso_meta_alloc_cb, .desc_free = giso_meta_free_cb,
        .facts = a->no_facts ? NULL : facts, .n_facts = a->no_facts || !facts ? 0 : rec->n_facts,
    };
    /* Relocating map values reads map memory: do it with the key open. */
    if (giso_enabled())
        giso_enter();
    int rc = grt_instance_create_opts(insns, rec->n_insns, maps, rec->n_maps, &io, &inst, err);
    if (giso_enabled())
        giso_leave();
    int calls_out = calls_out_of_program(insns, rec->n_insns);
    int keeps_fp = ghelper_prog_fp_free(insns, rec->n_insns);
    free(insns);
    free(facts);
    if (rc < 0) {
        graft_err_prefix(err, "program %s", rec->name);
        return NULL;
    }
    inst->id = id;
    inst->policy_tag = rec->policy_tag;    /* what tail calls from it must match */
    p = &a->progs[a->n_progs];
    p->inst = inst;
    p->links = 0;
    p->calls_out = calls_out;
    p->keeps_fp = keeps_fp;
    p->id = id;
    a->n_progs++;
    giso_enter();
    struct agent_ids *ids = a->ids;
    ids->progs[ids->n_progs].id = id;
    ids->progs[ids->n_progs].policy_tag = rec->policy_tag;
    ids->progs[ids->n_progs].prog = inst->prog;
    __atomic_store_n(&ids->n_progs, ids->n_progs + 1, __ATOMIC_RELEASE);
    giso_leave();
    /* after publishing: a prog array may name this very program */
    for (uint32_t i = 0; i < rec->n_maps; i++)
        follow_slots(a, s, rec, maps[i], 1);
    return p;
}

static const struct gvm_prog *prog_by_id(uint32_t id, void *arg, uint64_t *policy_tag)
{
    const struct agent_ids *ids = arg;
    uint32_t n = __atomic_load_n(&ids->n_progs, __ATOMIC_ACQUIRE);
    for (uint32_t i = 0; i < n; i++)
        if (ids->progs[i].id == id) {
            *policy_tag = ids->progs[i].policy_tag;
            return ids->progs[i].prog;
        }
    return NULL;
}

/* The JIT'd entry, read from the keyed descriptor. */
static gvm_native_fn prog_entry(const struct agent_prog *p)
{
    giso_enter();
    gvm_native_fn fn = gvm_prog_native(p->inst->prog);
    giso_leave();
    return fn;
}

/* ---- which links apply here ---- */

/* Is binary (a path, or a library name like "libc.so.6") mapped in this
 * process? The empty name is the main executable, always mapped. */
static int binary_mapped(const char *binary)
{
    if (!binary[0])
        return 1;
    char want[PATH_MAX];
    int by_path = strchr(binary, '/') != NULL;
    if (by_path && !realpath(binary, want))
        return 0;
    FILE *f = fopen("/proc/self/maps", "re");
    if (!f)
        return 0;
    char line[PATH_MAX + 128];
    int found = 0;
    while (!found && fgets(line, sizeof(line), f)) {
        char *path = strchr(line, '/');
        if (!path)
            continue;
        path[strcspn(path, "\n")] = '\0';
        if (by_path) {
            found = strcmp(path, want) == 0;
        } else {
            const char *base = strrchr(path, '/') + 1;
            found = strncmp(base, binary, strlen(binary)) == 0;
        }
    }
    fclose(f);
    return found;
}

static int link_wanted(const struct gagent *a, const struct greg_link *l)
{
    return l->pid == 0 || l->pid == getpid();
    (void)a;
}

static enum ghook_kind hook_kind(uint32_t kind)
{
    switch (kind) {
    case GREG_LINK_URETPROBE: return GHOOK_RETURN;
    case GREG_LINK_OVERRIDE: return GHOOK_OVERRIDE;
    case GREG_LINK_REPLACE: return GHOOK_REPLACE;
    default: return GHOOK_ENTRY;
    }
}

static enum gsys_kind sys_kind(uint32_t kind)
{
    switch (kind) {
    case GREG_LINK_SYS_EXIT: return GSYS_EXIT;
    case GREG_LINK_RAW_SYS_ENTER: return GSYS_RAW_ENTER;
    case GREG_LINK_RAW_SYS_EXIT: return GSYS_RAW_EXIT;
    default: return GSYS_ENTER;
    }
}

/* Syscall hooks are installed in the process on the first syscall link, so
 * a process that never gets one pays nothing. */
static int ensure_syscall_hooks(struct gagent *a, struct graft_err *err)
{
    if (!a->syscalls_installed) {
        if (gsys_install(NULL, err) < 0)
            return -1;
        a->syscalls_installed = 1;
        const char *note = gsys_install_note();
        snprintf(a->message, sizeof(a->message), "%s; syscalls: %s%s%s; %s", giso_status(),
                 gsys_method(), note[0] ? ", " : "", note, ghelper_ktime_source());
    }
    return 0;
}

static int install_syscall_link(struct gagent *a, gvm_native_fn fn, const struct agent_prog *p,
                                const struct greg_link *l, struct agent_link *slot,
                                struct graft_err *err)
{
    if (ensure_syscall_hooks(a, err) < 0)
        return -1;
    int nr = l->kind == GREG_LINK_RAW_SYS_ENTER || l->kind == GREG_LINK_RAW_SYS_EXIT ? -1 : l->syscall_nr;
    /* A program that calls nothing can run from the dispatcher's assembly
     * fast path (no C frame, no saved vector state); one that calls only
     * helpers that leave the vector registers alone, from the assembly
     * paths that set the run state, without saving them. */
    struct gsys_attach_opts o = { .sz = sizeof(o), .cookie = l->cookie,
                                  .handler_preserves_fp = !p->calls_out,
                                  .handler_keeps_fp = p->keeps_fp };
    return gsys_attach_opts(sys_kind(l->kind), nr, (gsys_handler)fn, &o, &slot->sys, err) < 0 ? -1 : 1;
}

static void release_src(struct agent_link *slot, char *msg, size_t msg_len)
{
    for (uint32_t i = 0; i < slot->n_src; i++) {
        struct graft_err err = {0};
        if (gattach_entry_remove(slot->src[i], &err) < 0 && msg) {
            graft_err_prefix(&err, "detach of link %u", slot->id);
            graft_copy_str(msg, msg_len, err.msg);
        }
    }
    free(slot->src);
    slot->src = NULL;
    slot->n_src = 0;
}

/* A source-entry link: every GRAFT_ENTRY() site named l->symbol in the
 * binary's .note.graft. Returns 1 installed, -1 failed. */
static int install_src_link(gvm_native_fn fn, const struct greg_link *l, struct agent_link *slot,
                            struct graft_err *err)
{
    char path[PATH_MAX];
    uint64_t bias;
    if (gattach_binary_info(l->binary[0] ? l->binary : NULL, path, sizeof(path), &bias, err) < 0)
        return -1;
    struct geim_src_entry *ents = NULL;
    uint32_t n = 0;
    if (geim_list_src_entries(path, &ents, &n, err) < 0)
        return -1;
    uint32_t want = 0;
    for (uint32_t i = 0; i < n; i++)
        want += strcmp(ents[i].name, l->symbol) == 0;
    if (!want) {
        free(ents);
        graft_errf(err, -ENOENT, "%s has no GRAFT_ENTRY(%s, ...) site (.note.graft lists %u entries)",
                   path, l->symbol, n);
        return -1;
    }
    if (!(slot->src = calloc(want, sizeof(*slot->src)))) {
        free(ents);
        graft_errf(err, -ENOMEM, "agent: out of memory");
        return -1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (strcmp(ents[i].name, l->symbol) != 0)
            continue;
        void *addr = (void *)(uintptr_t)(ents[i].addr + bias);
        rc = gattach_entry_install(addr, ents[i].args, (ghook_handler)fn, l->cookie,
                                   &slot->src[slot->n_src], err);
        if (rc == 0)
            slot->n_src++;
    }
    free(ents);
    if (rc < 0) {
        release_src(slot, NULL, 0);
        return -1;
    }
    return 1;
}

/* Install one link; on failure record why. Returns 1 installed, 0 not
 * applicable here, -1 failed. */
static int install_link(struct gagent *a, const struct greg_snapshot *s, const struct greg_link *l,
                        struct agent_link *slot, struct graft_err *err)
{
    slot->id = l->id;
    slot->prog_id = l->prog_id;
    slot->hook = NULL;
    slot->sys = NULL;
    slot->src = NULL;
    slot->n_src = 0;
    slot->sample = NULL;
    slot->event = NULL;
    slot->failed = 0;
    int is_sys = l->kind >= GREG_LINK_SYS_ENTER && l->kind <= GREG_LINK_RAW_SYS_EXIT;
    if (!is_sys && !binary_mapped(l->binary))
        return 0;
    /* The first extension for this process: isolation before its state. */
    if (!a->ids) {
        if (agent_isolation_setup(a, err) < 0) {
            slot->failed = 1;
            return -1;
        }
        open_trace(a, s);
    }
    struct agent_prog *p = load_prog(a, s, l->prog_id, err);
    if (!p) {
        slot->failed = 1;
        return -1;
    }
    gvm_native_fn fn = prog_entry(p);
    void *addr;
    if (fn && is_sys) {
        if (install_syscall_link(a, fn, p, l, slot, err) == 1) {
            p->links++;
            return 1;
        }
        graft_err_prefix(err, "link %u (%s %d)", l->id, greg_link_kind_name(l->kind), l->syscall_nr);
        slot->failed = 1;
        return -1;
    }
    if (fn && l->kind == GREG_LINK_PERF_SAMPLE) {
        /* a CPU-time timer per thread, the program in its signal handler */
        if (gsample_start((gsys_handler)fn, l->cookie, l->offset, l->syscall_nr, &slot->sample, err) == 0) {
            p->links++;
            return 1;
        }
        graft_err_prefix(err, "link %u (perf_sample every %llu ns)", l->id, (unsigned long long)l->offset);
        slot->failed = 1;
        return -1;
    }
    if (fn && (l->kind == GREG_LINK_PROC_EXIT || l->kind == GREG_LINK_SIGNAL_GENERATE)) {
        enum gevent_kind ek = l->kind == GREG_LINK_PROC_EXIT ? GEVENT_PROC_EXIT : GEVENT_SIGNAL_GENERATE;
        if (ensure_syscall_hooks(a, err) == 0 &&
            gevent_attach(ek, (gsys_handler)fn, l->cookie, &slot->event, err) == 0) {
            p->links++;
            return 1;
        }
        graft_err_prefix(err, "link %u (%s)", l->id, greg_link_kind_name(l->kind));
        slot->failed = 1;
        return -1;
    }
    if (fn && l->kind == GREG_LINK_SRC_ENTRY) {
        if (install_src_link(fn, l, slot, err) == 1) {
            p->links++;
            return 1;
        }
    } else if (!fn) {
        graft_errf(err, -EINVAL, "program %u has no native code", l->prog_id);
    } else if (gattach_resolve(l->binary[0] ? l->binary : NULL, l->symbol, l->offset, &addr, err) == 0 &&
               gattach_install(addr, hook_kind(l->kind), (ghook_handler)fn, l->cookie,
                               &(struct gattach_opts){ .sz = sizeof(struct gattach_opts),
                                                       .handler_preserves_fp = !p->calls_out,
                                                       .handler_keeps_fp = p->keeps_fp },
                               &slot->hook, err) == 0) {
        p->links++;
        if (gattach_hook_method(slot->hook) == GATTACH_METHOD_TRAP) {
            /* Correct but slower: say so where `graft list` shows it. */
            snprintf(a->message, sizeof(a->message), "%s; link %u at %s: int3 hook (%s)",
                     giso_status(), l->id, l->symbol, gattach_hook_note(slot->hook));
            fprintf(stderr, "graft-agent[%d]: link %u at %s: int3 hook (%s)\n", getpid(), l->id,
                    l->symbol, gattach_hook_note(slot->hook));
        }
        return 1;
    }
    graft_err_prefix(err, "link %u (%s %s:%s)", l->id, greg_link_kind_name(l->kind),
                     l->binary[0] ? l->binary : "<main>", l->symbol);
    slot->failed = 1;
    return -1;
}

static void release_link(struct gagent *a, struct agent_link *slot)
{
    if (slot->sample || slot->event) {
        gsample_stop(slot->sample);
        gevent_detach(slot->event);
        struct agent_prog *p = find_prog(a, slot->prog_id);
        if (p && p->links)
            p->links--;
        slot->sample = NULL;
        slot->event = NULL;
    }
    if (slot->sys) {
        gsys_detach(slot->sys);
        struct agent_prog *p = find_prog(a, slot->prog_id);
        if (p && p->links)
            p->links--;
        slot->sys = NULL;
    }
    if (slot->n_src) {
        release_src(slot, a->message, sizeof(a->message));
        struct agent_prog *p = find_prog(a, slot->prog_id);
        if (p && p->links)
            p->links--;
    }
    if (slot->hook) {
        struct graft_err err = {0};
        if (gattach_remove(slot->hook, &err) < 0) {
            graft_err_prefix(&err, "detach of link %u", slot->id);
            graft_copy_str(a->message, sizeof(a->message), err.msg);
        }
        struct agent_prog *p = find_prog(a, slot->prog_id);
        if (p && p->links)
            p->links--;
    }
    slot->hook = NULL;
}

/* ---- reconciling ---- */

static int snapshot_has_link(const struct greg_snapshot *s, uint32_t id, int detaching,
                             const struct gagent *a)
{
    if (detaching)
        return 0;
    for (uint32_t i = 0; i < s->n_links; i++)
        if (s->links[i].id == id && link_wanted(a, &s->links[i]))
            return 1;
    return 0;
}

static int reconcile(struct gagent *a)
{
    struct greg_snapshot s;
    if (greg_snapshot(a->reg, &s) < 0)
        return -ENOMEM;
    /* asked to detach (until `graft attach` withdraws the request) */
    int detaching = greg_snapshot_detach_requested(&s, getpid(), greg_self_nonce(a->self));
    /* With extension stacks, graft's SIGSEGV handler is what lets a host
     * signal handler run on one (giso_xstack_fault): put it back on top if
     * the host installed its own since the last change. */
    if (gattach_ext_stacks())
        ghelper_safe_mem_init(NULL);
    open_trace(a, &s);
    /* Code mapped since isolation was set up (a dlopen): scanned once. */
    if (a->ids && giso_enabled()) {
        char fresh[sizeof(a->message)];
        struct graft_err serr = {0};
        if (giso_scan_summary_new(fresh, sizeof(fresh), &serr) > 0) {
            fprintf(stderr, "graft-agent[%d]: %s\n", getpid(), fresh);
            graft_copy_str(a->message, sizeof(a->message), fresh);
        }
    }

    /* 1. Unhook what is gone. */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < a->n_links; i++) {
        if (snapshot_has_link(&s, a->links[i].id, detaching, a)) {
            a->links[kept++] = a->links[i];
        } else {
            release_link(a, &a->links[i]);
        }
    }
    a->n_links = kept;

    /* 2. Hook what is new. */
    for (uint32_t i = 0; i < s.n_links && !detaching; i++) {
        const struct greg_link *l = &s.links[i];
        if (!link_wanted(a, l))
            continue;
        int known = 0;
        for (uint32_t j = 0; j < a->n_links && !known; j++)
            known = a->links[j].id == l->id;
        if (known || a->n_links == AGENT_MAX_LINKS)
            continue;
        struct graft_err err = {0};
        struct agent_link *slot = &a->links[a->n_links];
        int rc = install_link(a, &s, l, slot, &err);
        a->n_links++;
        if (rc < 0) {
            graft_copy_str(a->message, sizeof(a->message), err.msg);
            fprintf(stderr, "graft-agent[%d]: %s\n", getpid(), err.msg);
        }
    }

    a->installed = a->failed = 0;
    for (uint32_t i = 0; i < a->n_links; i++) {
        a->installed += a->links[i].hook != NULL || a->links[i].sys != NULL || a->links[i].n_src ||
                        a->links[i].sample || a->links[i].event;
        a->failed += a->links[i].failed;
    }
    uint32_t facts_progs = 0, rewritten = 0;
    for (uint32_t i = 0; i < a->n_progs; i++) {
        facts_progs += a->progs[i].inst->facts_rewritten > 0;
        rewritten += a->progs[i].inst->facts_rewritten;
    }
    greg_self_set_facts(a->self, facts_progs, rewritten);
    a->generation = s.generation;
    greg_self_set(a->self, detaching ? GREG_PROC_DETACHED : GREG_PROC_RUNNING, s.generation,
                  a->installed, a->failed, a->message);
    greg_snapshot_free(&s);
    return 0;
}

int gagent_sync(struct gagent *a)
{
    /* No sample (attach/sample.c) runs a program on this thread while it
     * changes the agent's tables (the constructor's thread is a host one). */
    sigset_t smp, old;
    sigemptyset(&smp);
    sigaddset(&smp, GSAMPLE_SIGNAL);
    pthread_sigmask(SIG_BLOCK, &smp, &old);
    pthread_mutex_lock(&a->lock);
    int rc = a->stopping ? 0 : reconcile(a);
    pthread_mutex_unlock(&a->lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

static void *agent_thread(void *arg)
{
    struct gagent *a = arg;
    gsys_ignore_this_thread();     /* the agent's syscalls are not the host's */
    gattach_ignore_this_thread();  /* nor its calls of hooked functions (malloc) */
    prctl(PR_SET_NAME, "graft-agent", 0, 0, 0);    /* own name: no /proc write */
    /* This thread's wake-ups are the comm cache's ticks: a rename graft
     * does not see (a write to /proc/.../comm) is seen within about 100 ms
     * (or the time a sync takes), as with the coarse clock before. */
    ghelper_comm_watch(GHELPER_COMM_TICKS, 1);
    uint64_t seen = a->generation;
    while (!a->stopping) {
        uint64_t now = greg_wait(a->reg, seen, 100);
        if (now != seen && !a->stopping) {
            if (a->test_delay_ms > 0)
                usleep((useconds_t)a->test_delay_ms * 1000);
            gagent_sync(a);
            seen = now;
        }
        ghelper_comm_tick();
    }
    ghelper_comm_watch(GHELPER_COMM_TICKS, 0);
    return NULL;
}

static int start_thread(struct gagent *a)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* The agent's thread takes no signal meant for the application: the
     * kernel gives a process-directed signal to any thread not blocking
     * it, so an application that blocks one to read it from a signalfd or
     * sigwait() (script(1) so waits for SIGCHLD) lost it to this thread.
     * Faults and traps stay open (gattach_async_signals): they are this
     * thread's own (safe copies, int3 hooks, the seccomp SIGSYS). */
    sigset_t all, old;
    gattach_async_signals(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&a->thread, &attr, agent_thread, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc == 0)
        a->thread_running = 1;
    return -rc;
}

/* The process's name, as /proc/self/comm has it, without opening it:
 * one prctl per agent start instead of open/read/close (every program run
 * under `graft start` pays this). */
static void read_comm(char *buf, size_t len)
{
    char name[16] = "";
    prctl(PR_GET_NAME, name, 0, 0, 0);
    name[sizeof(name) - 1] = '\0';
    snprintf(buf, len, "%s", name);
}

/* Print the isolation verdict once per process tree: children of a `graft
 * start`ed program inherit the preload and the variable (setenv only while
 * the program is still single-threaded, i.e. preloaded, not injected into a
 * running one). A process that sets isolation up says so in any case. */
static void say_isolation(const struct gagent *a, int always)
{
    if (!gsetting("GRAFT_ISOLATION_SAID") || always) {
        fprintf(stderr, "graft-agent[%d]: %s\n", getpid(), a->message);
        const char *pre = gsetting("LD_PRELOAD");
        if (pre && strstr(pre, "libgraft-agent") && !a->thread_running)
            setenv("GRAFT_ISOLATION_SAID", "1", 1);
    }
}

static struct giso_opts isolation_opts(void)
{
    const char *req = gsetting("GRAFT_REQUIRE_ISOLATION");
    return (struct giso_opts){ .sz = sizeof(struct giso_opts),
                               .require = req && strcmp(req, "0") != 0 };
}

/* At start: only decide whether isolation can be on. Where it cannot (no
 * PKU, GRAFT_ISOLATION=off) giso_init() decides "off" now, which costs
 * nothing, and GRAFT_REQUIRE_ISOLATION=1 (graft start/load
 * --require-isolation) turns that into a refusal. Where it can, the key,
 * the gates and the scan of the process wait for the first extension
 * (agent_isolation_setup): a process nothing is attached to pays nothing
 * for them, and every program started under `graft start` inherits the
 * agent. */
static int agent_isolation_decide(struct gagent *a, struct graft_err *err)
{
    if (giso_available()) {
        snprintf(a->message, sizeof(a->message),
                 "isolation: on (CPU has PKU; key and scan at the first extension)");
        say_isolation(a, 0);
        return 0;
    }
    struct giso_opts o = isolation_opts();
    if (giso_init(&o, err) < 0)
        return graft_err_prefix(err, "agent");
    graft_copy_str(a->message, sizeof(a->message), giso_status());
    say_isolation(a, 0);
    return 0;
}

/* Before the first extension state exists in this process (a map opened, a
 * program compiled, a hook built): memory protection keys, decided once
 * (sites keep the gate variant they were built with), the tables
 * extensions resolve ids through (keyed), and the one-line verdict with a
 * scan of the process for stray WRPKRU/XRSTOR, to stderr and the registry
 * (graft list). Idempotent; on failure no extension may be installed. */
static int agent_isolation_setup(struct gagent *a, struct graft_err *err)
{
    if (a->ids)
        return 0;
    struct giso_opts o = isolation_opts();
    int rc = giso_init(&o, err);
    if (rc < 0)
        return graft_err_prefix(err, "agent");
    if (giso_enabled()) {
        if ((rc = gattach_set_isolation(1, err)) < 0)
            return graft_err_prefix(err, "agent: isolation");
        /* Extensions run on per-thread stacks under the key too, unless
         * GRAFT_ISOLATION=gates asks for the gates alone (extension frames
         * on the hooked thread's stack; see docs/isolation.md). */
        const char *mode = gsetting("GRAFT_ISOLATION");
        int gates_only = mode && !strcmp(mode, "gates");
        if (!gates_only && (rc = gattach_set_ext_stacks(1, err)) < 0)
            return graft_err_prefix(err, "agent: isolation");
        struct graft_err serr = {0};
        char scan[sizeof(a->message) - 64];
        giso_scan_summary(scan, sizeof(scan), &serr);
        const char *st = giso_status();
        size_t n = strlen(st);
        snprintf(a->message, sizeof(a->message), "%s, extension stacks %s%s", st,
                 gates_only ? "not keyed (GRAFT_ISOLATION=gates)" : "keyed",
                 strncmp(scan, st, n) == 0 ? scan + n : "");
        say_isolation(a, 1);
    } else {
        graft_copy_str(a->message, sizeof(a->message), giso_status());
    }
    if (!(a->ids = giso_meta_alloc(sizeof(*a->ids), err)))
        return graft_err_prefix(err, "agent");
    grt_set_prog_resolver(prog_by_id, a->ids);
    __atomic_store_n(&g_ids, a->ids, __ATOMIC_RELEASE);
    gmap_set_resolver(map_by_id);
    return 0;
}

int gagent_start(const char *reg_name, struct gagent **out, struct graft_err *err)
{
    struct gagent *a = calloc(1, sizeof(*a));
    if (!a)
        return graft_errf(err, -ENOMEM, "agent: out of memory");
    pthread_mutex_init(&a->lock, NULL);
    /* Fault injection for tests: the agent thread waits this long before
     * each reconcile, like a slow agent on a busy machine, which must not
     * make `graft load` claim too early that its programs run. Read here,
     * never from the agent thread: in a preloaded agent gsetting() is
     * getenv, and a host rewriting its environment (redis's process title
     * does) races with a concurrent getenv. */
    const char *delay = gsetting("GRAFT_TEST_AGENT_DELAY_MS");
    a->test_delay_ms = delay ? atoi(delay) : 0;
    /* For diagnosis: a program that behaves differently with and without
     * the facts its loader stored (docs/jit.md) points at them. */
    const char *facts = gsetting("GRAFT_JIT_FACTS");
    a->no_facts = facts && strcmp(facts, "0") == 0;
    char name[GREG_NAME_MAX];
    /* Read-only: nothing this process does to its memory reaches what the
     * other processes of the registry trust. */
    int rc = greg_open_named(reg_name ? reg_name : greg_default_name(name, sizeof(name)),
                             GREG_OPEN_CREATE | GREG_OPEN_READONLY, &a->reg, err);
    if (rc < 0) {
        free(a);
        return rc;
    }
    char comm[16];
    read_comm(comm, sizeof(comm));
    if ((rc = greg_self_register(a->reg, getpid(), comm, &a->self, err)) < 0) {
        greg_close(a->reg);
        free(a);
        return rc;
    }
    if ((rc = agent_isolation_decide(a, err)) < 0) {
        greg_self_gone(a->self);
        greg_self_close(a->self);
        greg_close(a->reg);
        free(a);
        return rc;
    }
    gagent_sync(a);
    if ((rc = start_thread(a)) < 0) {
        gagent_stop(a);
        return graft_errf(err, rc, "agent: cannot start its thread");
    }
    *out = a;
    return 0;
}

static void remove_all(struct gagent *a)
{
    for (uint32_t i = 0; i < a->n_links; i++)
        release_link(a, &a->links[i]);
    a->n_links = 0;
}

void gagent_stop(struct gagent *a)
{
    if (!a)
        return;
    a->stopping = 1;
    if (a->thread_running && !pthread_equal(pthread_self(), a->thread))
        pthread_join(a->thread, NULL);
    pthread_mutex_lock(&a->lock);
    remove_all(a);
    greg_self_gone(a->self);
    pthread_mutex_unlock(&a->lock);
    /* gattach_remove waited until no thread runs an unhooked program, but
     * gsys_detach does not: a thread may still be inside a syscall
     * program. So with syscall hooks the compiled programs and their maps
     * are kept (a bounded leak at stop); otherwise they are freed. */
    if (!a->syscalls_installed && a->ids) {
        giso_enter();
        for (uint32_t i = 0; i < a->n_progs; i++)
            grt_instance_free(a->progs[i].inst);
        giso_leave();
        grt_set_prog_resolver(NULL, NULL);
        __atomic_compare_exchange_n(&g_ids, &(const struct agent_ids *){ a->ids }, NULL, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        for (uint32_t i = 0;; i++) {
            giso_enter();
            struct gmap *m = i < a->ids->n_maps ? a->ids->maps[i].map : NULL;
            giso_leave();
            if (!m)
                break;
            handle_close(m);
        }
        giso_meta_free(a->ids, sizeof(*a->ids));
    }
    if (a->trace) {
        grt_trace_redirect(NULL);
        handle_close(a->trace);
    }
    if (the_agent == a)
        the_agent = NULL;
    greg_self_close(a->self);
    greg_close(a->reg);
    free(a);
}

void gagent_get_stats(struct gagent *a, struct gagent_stats *st)
{
    pthread_mutex_lock(&a->lock);
    st->links_installed = a->installed;
    st->links_failed = a->failed;
    st->generation = a->generation;
    pthread_mutex_unlock(&a->lock);
}

/* ---- the library's entry points ---- */

/* In a forked child only the forking thread exists: give the child its own
 * registry entry and agent thread. Its hooks are the parent's, copied. */
static void agent_atfork_child(void)
{
    struct gagent *a = the_agent;
    if (!a)
        return;
    pthread_mutex_init(&a->lock, NULL);
    a->thread_running = 0;
    /* no ticks for the comm cache until the child's thread runs */
    ghelper_comm_watch(GHELPER_COMM_TICKS, 0);
    char comm[16];
    read_comm(comm, sizeof(comm));
    /* The parent's handle writes the parent's object: drop our copy. */
    struct greg_self *parents = a->self;
    a->self = NULL;
    if (greg_self_register(a->reg, getpid(), comm, &a->self, NULL) == 0 && !a->stopping)
        start_thread(a);
    greg_self_close(parents);
}

__attribute__((constructor)) static void agent_constructor(void)
{
    /* Injected by `graft attach`: take its settings, before anything reads
     * one, and never read this process's environment (util/settings.h). */
    int injected = gsettings_install_attach();
    if (injected < 0)
        fprintf(stderr, "graft-agent[%d]: the settings `graft attach` left are not usable (%s); "
                "using the defaults\n", getpid(), strerror(-injected));
    if (gsetting("GRAFT_AGENT_OFF"))
        return;
    struct graft_err err = {0};
    if (gagent_start(NULL, &the_agent, &err) < 0) {
        /* Never take the host down: say why and let it run unextended. */
        fprintf(stderr, "graft-agent[%d]: not active: %s\n", getpid(), err.msg);
        return;
    }
    pthread_atfork(NULL, NULL, agent_atfork_child);
    /* Preloaded, so this image was just exec'd: the execve that made it
     * succeeded and returns here, where the kernel runs sys_exit_execve;
     * its programs (installed above) run now. An injected agent (graft
     * attach) comes long after any exec and fires nothing. */
    const char *pre = gsetting("LD_PRELOAD");
    if (pre && strstr(pre, "libgraft-agent")) {
        pthread_mutex_lock(&the_agent->lock);
        if (the_agent->syscalls_installed)
            gsys_fire_exec_exit();
        pthread_mutex_unlock(&the_agent->lock);
    }
}

__attribute__((destructor)) static void agent_destructor(void)
{
    struct gagent *a = the_agent;
    if (!a)
        return;
    /* Leave the hooks in place (other atexit handlers may still call hooked
     * functions); just tell the registry this process is going. */
    a->stopping = 1;
    greg_self_gone(a->self);
}
