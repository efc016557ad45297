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

/* Tracepoint names (syscalls/sys_enter_NAME) that are not the call's name on
 * x86-64: the kernel's SYSCALL_DEFINE name differs from the __NR_ name. */
static const struct {
    const char *event, *call;
} tracepoint_aliases[] = {
    { "newstat", "stat" },   { "newfstat", "fstat" },    { "newlstat", "lstat" },
    { "newuname", "uname" }, { "umount", "umount2" },    { "sendfile64", "sendfile" },
};

int gsyscall_tracepoint_nr(const char *name)
{
    for (size_t i = 0; i < sizeof(tracepoint_aliases) / sizeof(tracepoint_aliases[0]); i++)
        if (strcmp(tracepoint_aliases[i].event, name) == 0)
            return gsyscall_nr(tracepoint_aliases[i].call);
    return gsyscall_nr(name);
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
