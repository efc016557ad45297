/*
 * func_inject_payload.c - injected library: its constructor proves it ran
 * inside the target by writing the target's pid to $GRAFT_INJECT_MARKER.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void payload_init(void)
{
    const char *path = getenv("GRAFT_INJECT_MARKER");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f) {
        fprintf(f, "%d\n", (int)getpid());
        fclose(f);
    }
}
