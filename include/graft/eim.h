/*
 * graft/eim.h - for host developers: declare extension entries and
 * capabilities in the application's source.
 *
 *   #include <graft/eim.h>
 *
 *   GRAFT_STATE uint64_t g_requests;                 // a global extensions may name
 *   GRAFT_FUNCTION int app_log(const char *m, int n) // a host function they may call
 *   { ... }
 *
 *   void serve(struct request *r, int n)
 *   {
 *       ...
 *       GRAFT_ENTRY(after_parse, r, n);              // an entry at this line
 *   }
 *
 * GRAFT_ENTRY(name, args...) (0 to 6 scalar or pointer arguments) costs a
 * single 5-byte NOP (0f 1f 44 00 00) while no extension uses it: a concealed
 * entry. Like <sys/sdt.h>, it records in the non-allocated ELF note section
 * .note.graft (note name "graft", type GRAFT_NOTE_ENTRY) the link-time
 * address of the NOP, the entry's name and where each argument lives at that
 * point, as "SIZE@OPERAND" separated by spaces, SIZE negative for signed
 * values and OPERAND in AT&T syntax (a register or an immediate): "-4@%edi 8@%rsi 4@$7". The attach
 * layer patches the NOP into a call to run the extension; `graft eim check`
 * lists the entries (src/eim: geim_list_src_entries).
 *
 * The entry must also be declared in the EIM spec with `kind: source`.
 */
#ifndef GRAFT_EIM_PUBLIC_H
#define GRAFT_EIM_PUBLIC_H

#define GRAFT_NOTE_ENTRY 1

/* Keep a host function callable by name: in the symbol table, not inlined
 * away, not removed by --gc-sections. */
#define GRAFT_FUNCTION __attribute__((used, noinline, visibility("default")))
/* Keep a host global in the symbol table. */
#define GRAFT_STATE __attribute__((used, visibility("default")))

/* Argument size as the note records it: negative when signed. */
#define GRAFT__SIZE(x)                                                              \
    (__builtin_choose_expr(__builtin_classify_type(x) == 5, 1,                      \
                           ((__typeof__(x))-1 > (__typeof__(x))0)) ? (int)sizeof(x) \
                                                                   : -(int)sizeof(x))

#define GRAFT__NOTE(name, args)                              \
    "990: .byte 0x0f, 0x1f, 0x44, 0x00, 0x00\n"              \
    ".pushsection .note.graft, \"?\", \"note\"\n"            \
    ".balign 4\n"                                            \
    ".4byte 992f-991f, 994f-993f, 1\n"                       \
    "991: .asciz \"graft\"\n"                                \
    "992: .balign 4\n"                                       \
    "993: .8byte 990b\n"                                     \
    ".asciz \"" #name "\"\n"                                 \
    ".asciz \"" args "\"\n"                                  \
    "994: .balign 4\n"                                       \
    ".popsection\n"

#define GRAFT__A(x) "n"(GRAFT__SIZE(x)), "nr"(x)

#define GRAFT__E0(n) __asm__ __volatile__(GRAFT__NOTE(n, "") ::)
#define GRAFT__E1(n, a) __asm__ __volatile__(GRAFT__NOTE(n, "%c0@%1") :: GRAFT__A(a))
#define GRAFT__E2(n, a, b) \
    __asm__ __volatile__(GRAFT__NOTE(n, "%c0@%1 %c2@%3") :: GRAFT__A(a), GRAFT__A(b))
#define GRAFT__E3(n, a, b, c)                                                \
    __asm__ __volatile__(GRAFT__NOTE(n, "%c0@%1 %c2@%3 %c4@%5")              \
                         :: GRAFT__A(a), GRAFT__A(b), GRAFT__A(c))
#define GRAFT__E4(n, a, b, c, d)                                             \
    __asm__ __volatile__(GRAFT__NOTE(n, "%c0@%1 %c2@%3 %c4@%5 %c6@%7")       \
                         :: GRAFT__A(a), GRAFT__A(b), GRAFT__A(c), GRAFT__A(d))
#define GRAFT__E5(n, a, b, c, d, e)                                               \
    __asm__ __volatile__(GRAFT__NOTE(n, "%c0@%1 %c2@%3 %c4@%5 %c6@%7 %c8@%9")     \
                         :: GRAFT__A(a), GRAFT__A(b), GRAFT__A(c), GRAFT__A(d),   \
                            GRAFT__A(e))
#define GRAFT__E6(n, a, b, c, d, e, f)                                                  \
    __asm__ __volatile__(GRAFT__NOTE(n, "%c0@%1 %c2@%3 %c4@%5 %c6@%7 %c8@%9 %c10@%11")  \
                         :: GRAFT__A(a), GRAFT__A(b), GRAFT__A(c), GRAFT__A(d),         \
                            GRAFT__A(e), GRAFT__A(f))

#define GRAFT__PICK(_0, _1, _2, _3, _4, _5, _6, M, ...) M
#define GRAFT_ENTRY(...)                                                        \
    GRAFT__PICK(__VA_ARGS__, GRAFT__E6, GRAFT__E5, GRAFT__E4, GRAFT__E3,        \
                GRAFT__E2, GRAFT__E1, GRAFT__E0, unused)(__VA_ARGS__)

#endif
