/* syscalls.c - lookups over the generated syscall table; see syscalls.h. */
#include "util/syscalls.h"

#include <string.h>

struct syscall_entry {
    const char *name;
    int nr;
};

/* Generated: { "read", 0 }, ... in number order. */
static const struct syscall_entry table[] = {
#include "syscall_table.inc"
};
#define N_ENTRIES ((int)(sizeof(table) / sizeof(table[0])))

int gsyscall_nr(const char *name)
{
    for (int i = 0; i < N_ENTRIES; i++)
        if (strcmp(table[i].name, name) == 0)
            return table[i].nr;
    return -1;
}

const char *gsyscall_name(int nr)
{
    for (int i = 0; i < N_ENTRIES; i++)
        if (table[i].nr == nr)
            return table[i].name;
    return NULL;
}

int gsyscall_count(void)
{
    int max = -1;
    for (int i = 0; i < N_ENTRIES; i++)
        if (table[i].nr > max)
            max = table[i].nr;
    return max + 1;
}
