/*
 * fuzz_loader.c - libFuzzer target: gobj_open_mem() on arbitrary bytes must
 * fail cleanly or succeed, never crash, leak or read out of bounds. Seeded
 * with the fixture objects so mutations reach sections, relocations, BTF and
 * CO-RE records. The built-in target BTF keeps each run fast.
 */
#include <stddef.h>
#include <stdint.h>

#include "loader/loader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gobj_opts o = { .sz = sizeof(o), .use_builtin_btf = true };
    struct gobj *obj = NULL;
    struct graft_err err;
    if (gobj_open_mem(data, size, "fuzz.o", &o, &obj, &err) == 0)
        gobj_free(obj);
    /* graft verify's way: broken programs kept with their error */
    o.keep_broken_progs = true;
    obj = NULL;
    if (gobj_open_mem(data, size, "fuzz.o", &o, &obj, &err) == 0)
        gobj_free(obj);
    return 0;
}
