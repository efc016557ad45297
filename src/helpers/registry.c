/*
 * registry.c - every helper graft provides, by the kernel's helper number,
 * with the prototype the verifier checks calls against.
 *
 * The prototypes follow the kernel's bpf_func_proto for each helper
 * (kernel/bpf/helpers.c, kernel/trace/bpf_trace.c, kernel/bpf/ringbuf.c,
 * ...), mapped to graft's argument kinds; where the kernel marks memory
 * MEM_RDONLY it is GARG_PTR_TO_MEM here, ARG_PTR_TO_UNINIT_MEM is
 * GARG_PTR_TO_UNINIT_MEM. Invariant: g_protos[id].id == id for every entry
 * with a name; the table handed to the VM is derived from it once.
 */
#include <pthread.h>
#include <string.h>

#include "helpers/helpers_internal.h"

#define A(...) { __VA_ARGS__ }
#define P(num, nm, rk, args_, fl) \
    [num] = { .name = #nm, .id = num, .fn = gh_##nm, .ret = rk, .args = args_, .flags = fl }

#define ANY        GARG_ANYTHING
#define MAPP       GARG_CONST_MAP_PTR
#define KEY        GARG_PTR_TO_MAP_KEY
#define VAL        GARG_PTR_TO_MAP_VALUE
#define UVAL       GARG_PTR_TO_UNINIT_MAP_VALUE
#define MEM        GARG_PTR_TO_MEM
#define MEM0       GARG_PTR_TO_MEM_OR_NULL
#define UMEM       GARG_PTR_TO_UNINIT_MEM
#define SZ         GARG_CONST_SIZE
#define SZ0        GARG_CONST_SIZE_OR_ZERO
#define CTX        GARG_PTR_TO_CTX
#define FUNC       GARG_PTR_TO_FUNC
#define STK0       GARG_PTR_TO_STACK_OR_NULL
#define ALLOC      GARG_PTR_TO_ALLOC_MEM
#define LOCK       GARG_PTR_TO_SPIN_LOCK
#define LONG       GARG_PTR_TO_LONG
#define CSTR       GARG_PTR_TO_CONST_STR
#define ASZ        GARG_CONST_ALLOC_SIZE
#define FPF        GHELPER_F_FP_FREE

static const struct ghelper_proto g_protos[BPF_MAX_HELPER_ID] = {
    P(1,   map_lookup_elem,       GRET_MAP_VALUE_OR_NULL, A(MAPP, KEY), FPF),
    P(2,   map_update_elem,       GRET_INTEGER, A(MAPP, KEY, VAL, ANY), FPF),
    P(3,   map_delete_elem,       GRET_INTEGER, A(MAPP, KEY), FPF),
    P(4,   probe_read,            GRET_INTEGER, A(UMEM, SZ0, ANY), 0),
    P(5,   ktime_get_ns,          GRET_INTEGER, A(0), FPF),
    P(6,   trace_printk,          GRET_INTEGER, A(MEM, SZ, ANY, ANY, ANY), 0),
    P(7,   get_prandom_u32,       GRET_INTEGER, A(0), 0),
    P(8,   get_smp_processor_id,  GRET_INTEGER, A(0), 0),
    P(12,  tail_call,             GRET_VOID,    A(CTX, MAPP, ANY), GHELPER_F_NORETURN_OK),
    P(14,  get_current_pid_tgid,  GRET_INTEGER, A(0), FPF),
    P(15,  get_current_uid_gid,   GRET_INTEGER, A(0), 0),
    P(16,  get_current_comm,      GRET_INTEGER, A(UMEM, SZ), FPF),
    P(25,  perf_event_output,     GRET_INTEGER, A(CTX, MAPP, ANY, MEM, SZ0), 0),
    P(27,  get_stackid,           GRET_INTEGER, A(CTX, MAPP, ANY), 0),
    P(35,  get_current_task,      GRET_INTEGER, A(0), 0),
    P(36,  probe_write_user,      GRET_INTEGER, A(ANY, MEM, SZ), 0),
    P(37,  current_task_under_cgroup, GRET_INTEGER, A(MAPP, ANY), 0),
    P(45,  probe_read_str,        GRET_INTEGER, A(UMEM, SZ0, ANY), 0),
    P(58,  override_return,       GRET_INTEGER, A(CTX, ANY), 0),
    P(67,  get_stack,             GRET_INTEGER, A(CTX, UMEM, SZ0, ANY), 0),
    P(87,  map_push_elem,         GRET_INTEGER, A(MAPP, VAL, ANY), 0),
    P(88,  map_pop_elem,          GRET_INTEGER, A(MAPP, UVAL), 0),
    P(89,  map_peek_elem,         GRET_INTEGER, A(MAPP, UVAL), 0),
    P(93,  spin_lock,             GRET_VOID,    A(LOCK), 0),
    P(94,  spin_unlock,           GRET_VOID,    A(LOCK), 0),
    P(109, send_signal,           GRET_INTEGER, A(ANY), 0),
    P(112, probe_read_user,       GRET_INTEGER, A(UMEM, SZ0, ANY), 0),
    P(113, probe_read_kernel,     GRET_INTEGER, A(UMEM, SZ0, ANY), 0),
    P(114, probe_read_user_str,   GRET_INTEGER, A(UMEM, SZ0, ANY), 0),
    P(115, probe_read_kernel_str, GRET_INTEGER, A(UMEM, SZ0, ANY), 0),
    P(117, send_signal_thread,    GRET_INTEGER, A(ANY), 0),
    P(125, ktime_get_boot_ns,     GRET_INTEGER, A(0), 0),
    P(130, ringbuf_output,        GRET_INTEGER, A(MAPP, MEM, SZ0, ANY), 0),
    P(131, ringbuf_reserve,       GRET_ALLOC_MEM_OR_NULL, A(MAPP, ASZ, ANY), GHELPER_F_ACQUIRE),
    P(132, ringbuf_submit,        GRET_VOID,    A(ALLOC, ANY), GHELPER_F_RELEASE),
    P(133, ringbuf_discard,       GRET_VOID,    A(ALLOC, ANY), GHELPER_F_RELEASE),
    P(134, ringbuf_query,         GRET_INTEGER, A(MAPP, ANY), 0),
    P(158, get_current_task_btf,  GRET_TASK_IMAGE, A(0), 0),
    P(160, ktime_get_coarse_ns,   GRET_INTEGER, A(0), 0),
    P(164, for_each_map_elem,     GRET_INTEGER, A(MAPP, FUNC, STK0, ANY), 0),
    P(165, snprintf,              GRET_INTEGER, A(UMEM, SZ0, CSTR, MEM0, SZ0), 0),
    P(173, get_func_ip,           GRET_INTEGER, A(CTX), 0),
    P(174, get_attach_cookie,     GRET_INTEGER, A(CTX), 0),
    P(181, loop,                  GRET_INTEGER, A(ANY, FUNC, STK0, ANY), 0),
    P(182, strncmp,               GRET_INTEGER, A(MEM, SZ, CSTR), 0),
    P(183, get_func_arg,          GRET_INTEGER, A(CTX, ANY, LONG), 0),
    P(184, get_func_ret,          GRET_INTEGER, A(CTX, LONG), 0),
    P(185, get_func_arg_cnt,      GRET_INTEGER, A(CTX), 0),
};

int ghelper_prog_fp_free(const struct bpf_insn *insns, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        if (BPF_CLASS(in->code) != BPF_JMP || BPF_OP(in->code) != BPF_CALL)
            continue;
        if (BPF_SRC(in->code) == BPF_K && in->src_reg == BPF_PSEUDO_CALL)
            continue;
        if (BPF_SRC(in->code) != BPF_K || in->src_reg != 0 || in->imm < 0 ||
            in->imm >= BPF_MAX_HELPER_ID || !g_protos[in->imm].name ||
            !(g_protos[in->imm].flags & GHELPER_F_FP_FREE))
            return 0;
    }
    return 1;
}

static gvm_helper_fn g_table[BPF_MAX_HELPER_ID];
static pthread_once_t g_table_once = PTHREAD_ONCE_INIT;

static void build_table(void)
{
    for (uint32_t id = 0; id < BPF_MAX_HELPER_ID; id++)
        g_table[id] = g_protos[id].name ? g_protos[id].fn : NULL;
}

const gvm_helper_fn *ghelper_table(void)
{
    pthread_once(&g_table_once, build_table);
    return g_table;
}

static struct gvm_helper_inline g_inline[BPF_MAX_HELPER_ID];
static pthread_once_t g_inline_once = PTHREAD_ONCE_INIT;

static void build_inline(void)
{
    gh_ktime_inline(&g_inline[5]);                     /* ktime_get_ns */
    gh_pid_tgid_inline(&g_inline[14]);                 /* get_current_pid_tgid */
}

const struct gvm_helper_inline *ghelper_inline_table(void)
{
    pthread_once(&g_inline_once, build_inline);
    return g_inline;
}

const struct ghelper_proto *ghelper_proto(uint32_t id)
{
    if (id >= BPF_MAX_HELPER_ID || !g_protos[id].name)
        return NULL;
    return &g_protos[id];
}

const struct ghelper_proto *ghelper_by_name(const char *name)
{
    if (!name)
        return NULL;
    if (strncmp(name, "bpf_", 4) == 0)
        name += 4;                 /* accept libbpf's spelling too */
    for (uint32_t id = 0; id < BPF_MAX_HELPER_ID; id++)
        if (g_protos[id].name && strcmp(g_protos[id].name, name) == 0)
            return &g_protos[id];
    return NULL;
}
