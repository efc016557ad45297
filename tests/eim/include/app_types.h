/* app_types.h - the test host's structs, shared by the host (tests/eim/host)
 * and the BPF extensions (tests/eim/ext) so both agree on the layout. */
#ifndef EIM_APP_TYPES_H
#define EIM_APP_TYPES_H

struct request {
    unsigned long long id;     /* 0 */
    unsigned int len;          /* 8 */
    unsigned int flags;        /* 12 */
    char path[48];             /* 16 */
};                             /* 64 bytes */

#endif
