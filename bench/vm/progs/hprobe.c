/* Hash-table probing: insert param[0] u32 keys from the input into an
 * open-addressed table (linear probing, 4096 slots in scratch), then look
 * up as many other keys and count the hits. */
#include "prog.h"

#define SLOTS 4096

INLINE u32 slot_of(u32 k)
{
    return (k * 0x9e3779b1u) >> 20;
}

PROG(hprobe)
{
    const u32 *in = (const u32 *)CTX_DATA(ctx);
    u32 *t = (u32 *)CTX_SCRATCH(ctx);
    u64 n = CTX_PARAM(ctx, 0), hits = 0, probes = 0;
    for (u32 s = 0; s < SLOTS; s++)
        t[s] = 0;
    for (u64 i = 0; i < n; i++) {
        u32 k = (in[i] & 0xffff) | 1;
        u32 s = slot_of(k);
        while (t[s] != 0 && t[s] != k) {
            s = (s + 1) & (SLOTS - 1);
            probes++;
        }
        t[s] = k;
    }
    for (u64 i = 0; i < n; i++) {
        u32 k = (in[n + i] & 0xffff) | 1;
        u32 s = slot_of(k);
        while (t[s] != 0) {
            if (t[s] == k) {
                hits++;
                break;
            }
            s = (s + 1) & (SLOTS - 1);
            probes++;
        }
    }
    return hits << 32 | probes;
}
