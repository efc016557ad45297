/*
 * func_inject_target.c - the process func_inject_test injects into: it
 * sleeps in a loop (so it is usually inside nanosleep when stopped, which
 * exercises syscall restart) until killed or 20 s pass.
 */
#include <time.h>
#include <unistd.h>

int main(void)
{
    for (int i = 0; i < 2000; i++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return 0;
}
