/*
 * func_inject_exit.c - injected library whose constructor makes the target
 * exit in the middle of the injection, to test that the injector notices.
 */
#include <unistd.h>

__attribute__((constructor)) static void exit_init(void)
{
    _exit(3);
}
