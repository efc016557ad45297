/*
 * test_settings.c - the settings `graft attach` hands an injected agent
 * (util/settings.h): taken from the file only when it is meant for this
 * process and cannot have been forged; once taken, the environment is never
 * read again (so a host rewriting it cannot race the agent); without a file,
 * gsetting() is getenv.
 *
 * Each case runs in a fresh child: installing is once per process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tcheck.h"
#include "util/procmaps.h"
#include "util/settings.h"

static char g_path[64];

/* Writes TEXT as this process's attach file with MODE. */
static void put_file(const char *text, mode_t mode)
{
    unlink(g_path);
    int fd = open(g_path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        perror(g_path), exit(2);
    fchmod(fd, mode);
    close(fd);
}

static void own_header(char *buf, size_t len)
{
    snprintf(buf, len, "pid=%d\nstart=%llu\n", (int)getpid(),
             (unsigned long long)gproc_start_time(getpid()));
}

static int case_no_file(void)
{
    setenv("GRAFT_REGISTRY", "/from-env", 1);
    CHECK(gsettings_install_attach() == 0, "no file: nothing installed");
    CHECK(gsetting("GRAFT_REGISTRY") && !strcmp(gsetting("GRAFT_REGISTRY"), "/from-env"),
          "no file: gsetting is getenv");
    setenv("GRAFT_REGISTRY", "/changed", 1);
    CHECK(!strcmp(gsetting("GRAFT_REGISTRY"), "/changed"), "no file: later changes are seen");
    return 0;
}

static int case_written_by_attach(void)
{
    /* What `graft attach` does, from its own environment ... */
    setenv("GRAFT_REGISTRY", "/operator", 1);
    setenv("GRAFT_ISOLATION", "gates", 1);
    unsetenv("GRAFT_KTIME");
    CHECK(gsettings_write_attach(getpid()) == 0, "the attach file is written");
    struct stat st;
    CHECK(stat(g_path, &st) == 0 && (st.st_mode & 0777) == 0644, "it is world-readable, ours to write");
    /* ... then the host's environment says otherwise */
    setenv("GRAFT_REGISTRY", "/host", 1);
    setenv("GRAFT_KTIME", "clock", 1);
    CHECK(gsettings_install_attach() == 1, "the file for this process is installed");
    const char *reg = gsetting("GRAFT_REGISTRY"), *iso = gsetting("GRAFT_ISOLATION");
    CHECK(reg && !strcmp(reg, "/operator"), "the operator's registry wins (got %s)", reg ? reg : "NULL");
    CHECK(iso && !strcmp(iso, "gates"), "the operator's isolation mode");
    CHECK(gsetting("GRAFT_KTIME") == NULL, "a setting the operator did not give is unset");
    CHECK(gsetting("HOME") == NULL, "the environment is not read at all");
    CHECK(gsetting("GRAFT") == NULL && gsetting("GRAFT_REGISTR") == NULL, "only whole names match");
    unlink(g_path);
    return 0;
}

static int case_other_process(void)
{
    setenv("GRAFT_REGISTRY", "/from-env", 1);
    char text[256];
    snprintf(text, sizeof(text), "pid=%d\nstart=%llu\nGRAFT_REGISTRY=/stale\n", (int)getpid(),
             (unsigned long long)gproc_start_time(getpid()) + 1);
    put_file(text, 0644);
    CHECK(gsettings_install_attach() == 0, "a file for an earlier process of this pid is ignored");
    CHECK(!strcmp(gsetting("GRAFT_REGISTRY"), "/from-env"), "... and the environment used");
    unlink(g_path);
    return 0;
}

static int case_forgeable(void)
{
    setenv("GRAFT_REGISTRY", "/from-env", 1);
    char text[256];
    own_header(text, sizeof(text));
    strcat(text, "GRAFT_REGISTRY=/forged\n");
    put_file(text, 0666);
    int rc = gsettings_install_attach();
    CHECK(rc == -EPERM, "a file others may write is refused (rc %d)", rc);
    CHECK(gsetting("GRAFT_REGISTRY") == NULL, "... and neither it nor the environment is used");
    unlink(g_path);
    return 0;
}

static int case_symlink(void)
{
    char text[256], target[] = "/tmp/graft-settings-XXXXXX";
    own_header(text, sizeof(text));
    strcat(text, "GRAFT_REGISTRY=/linked\n");
    int fd = mkstemp(target);
    if (fd < 0 || write(fd, text, strlen(text)) < 0)
        return perror("mkstemp"), 2;
    close(fd);
    chmod(target, 0644);
    unlink(g_path);
    if (symlink(target, g_path) < 0)
        return perror("symlink"), 2;
    setenv("GRAFT_REGISTRY", "/from-env", 1);
    CHECK(gsettings_install_attach() == 0, "a symbolic link is not followed");
    CHECK(!strcmp(gsetting("GRAFT_REGISTRY"), "/from-env"), "... and the environment used");
    unlink(g_path);
    unlink(target);
    return 0;
}

static void run(const char *name, int (*fn)(void))
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        gsettings_attach_path(getpid(), g_path, sizeof(g_path));
        int rc = fn();
        fflush(stdout);
        _exit(rc ? rc : (g_fail ? 1 : 0));
    }
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "case %s", name);
}

int main(void)
{
    CHECK(gproc_start_time(getpid()) != 0, "this process's start time is readable");
    CHECK(gproc_start_time(0x7ffffff0) == 0, "a missing process has none");
    run("no file", case_no_file);
    run("written by graft attach", case_written_by_attach);
    run("for another process", case_other_process);
    run("writable by others", case_forgeable);
    run("a symbolic link", case_symlink);
    printf("%d passed, %d failed\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
