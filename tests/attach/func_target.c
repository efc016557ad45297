/*
 * func_target.c - functions hooked by func_hook_test, built by gcc and clang
 * at -O0 and -O2, with and without -fcf-protection (endbr64), as shared
 * libraries the test dlopen()s. Each is noinline with an asm barrier so its
 * body survives optimisation.
 */
#include <stdint.h>

volatile int tgt_global = 7;
volatile long tgt_fib_calls;

__attribute__((noinline)) long tgt_add(long a, long b)
{
    __asm__ volatile("");
    return a + b;
}

__attribute__((noinline)) long tgt_fib(long n)
{
    tgt_fib_calls++;
    if (n < 2)
        return n;
    /* the asm makes each result opaque so -O2 can't turn a call into a loop */
    long a = tgt_fib(n - 1);
    __asm__ volatile("" : "+r"(a));
    long b = tgt_fib(n - 2);
    __asm__ volatile("" : "+r"(b));
    return a + b;
}

/* Reads a global first: RIP-relative in PIC code. */
__attribute__((noinline)) long tgt_global_plus(long x)
{
    return tgt_global + x;
}

/* Starts with a test and a conditional branch at -O2. */
__attribute__((noinline)) long tgt_branchy(long x)
{
    if (x == 0)
        return 100;
    __asm__ volatile("");
    return x * 3;
}
