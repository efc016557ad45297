/* A switch-heavy tokenizer state machine over param[0] input bytes:
 * counts identifiers, numbers, operators, strings and comments. */
#include "prog.h"

enum { S_START, S_IDENT, S_NUMBER, S_HEX, S_STRING, S_ESCAPE, S_SLASH, S_COMMENT, S_OP };

PROG(fsm)
{
    const u8 *p = CTX_DATA(ctx);
    u64 n = CTX_PARAM(ctx, 0);
    u64 idents = 0, numbers = 0, strings = 0, comments = 0, ops = 0, value = 0;
    int state = S_START;
    for (u64 i = 0; i < n; i++) {
        u8 c = p[i] & 0x7f;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        int digit = c >= '0' && c <= '9';
        switch (state) {
        case S_START:
            if (alpha) { state = S_IDENT; idents++; }
            else if (c == '0') state = S_HEX;
            else if (digit) { state = S_NUMBER; value = c - '0'; }
            else if (c == '"') state = S_STRING;
            else if (c == '/') state = S_SLASH;
            else if (c == '+' || c == '-' || c == '*' || c == '=') { state = S_OP; ops++; }
            break;
        case S_IDENT:
            if (!alpha && !digit) state = S_START;
            break;
        case S_NUMBER:
            if (digit) value = value * 10 + (c - '0');
            else { numbers += value & 0xff; state = S_START; }
            break;
        case S_HEX:
            if (c == 'x' || digit) value = value * 16 + (c & 15);
            else { numbers++; state = S_START; }
            break;
        case S_STRING:
            if (c == '\\') state = S_ESCAPE;
            else if (c == '"') { strings++; state = S_START; }
            break;
        case S_ESCAPE:
            state = S_STRING;
            break;
        case S_SLASH:
            if (c == '/') { state = S_COMMENT; comments++; }
            else { ops++; state = S_START; }
            break;
        case S_COMMENT:
            if (c == '\n' || c == ';') state = S_START;
            break;
        case S_OP:
            if (c == '=') ops++;
            state = S_START;
            break;
        }
    }
    return idents | numbers << 16 | strings << 32 | comments << 40 | ops << 48;
}
