/*
 * tguest.h - what a test program booted as /init of the QEMU guest
 * (scripts/qemu/run-initramfs.sh) sets up first and does last: there is no
 * other userland, so it opens the console, mounts /proc, /dev (devtmpfs:
 * /dev/null and friends) and /dev/shm (the maps' shared memory), makes /tmp
 * usable by any uid, and at the end powers the guest off.
 */
#ifndef GRAFT_TESTS_TGUEST_H
#define GRAFT_TESTS_TGUEST_H

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <unistd.h>

static inline void tguest_init(void)
{
    int fd = open("/dev/console", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    mkdir("/proc", 0555);
    mkdir("/dev", 0755);
    mkdir("/tmp", 01777);
    mount("proc", "/proc", "proc", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    mkdir("/dev/shm", 01777);
    mount("tmpfs", "/dev/shm", "tmpfs", 0, NULL);
    /* No tmpfs over /tmp: the build tree the harness copied in may itself
     * live under /tmp (a CI clone), which a mount there would hide. */
    chmod("/tmp", 01777);
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
}

static inline void tguest_poweroff(void)
{
    fflush(stdout);
    sync();
    reboot(RB_POWER_OFF);
    for (;;)
        pause();
}

#endif
