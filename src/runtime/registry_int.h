/*
 * registry_int.h - what registry.c and registry_self.c (agents' status
 * objects) share; not part of the runtime's interface.
 */
#ifndef GRAFT_RUNTIME_REGISTRY_INT_H
#define GRAFT_RUNTIME_REGISTRY_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "runtime/registry.h"

struct greg_header;

struct greg {
    struct greg_header *hdr;
    int readonly;              /* mapped PROT_READ: an agent's handle */
    uid_t owner;               /* the registry object's owner */
    char name[GREG_NAME_MAX];
};

/* "<registry>.<kind>.<rest>" into buf; -ENAMETOOLONG if it does not fit. */
int greg_child_name(const struct greg *reg, char kind, const char *rest, char *buf, size_t len);
/* Is name (a field of `field` bytes, maybe unterminated) such a name? */
int greg_is_child(const struct greg *reg, const char *name, size_t field, char kind);
/* A regular file nobody but its owner may write, owned by this user, root
 * or (reg non-NULL) the registry's owner. */
int greg_trusted_owner(const struct greg *reg, const struct stat *st);
/* Unlink this user's "<reg_name>.{m,p,a}.*" objects; 'a' ones of live
 * agents only if everything. Returns how many, or a negative errno. */
int greg_sweep(const char *reg_name, int everything);

uint64_t greg_random64(void);
/* rest = "<pid>.<nonce>" of a status object's name: does that agent's
 * process still run? */
int greg_self_alive(const char *rest);

#endif
