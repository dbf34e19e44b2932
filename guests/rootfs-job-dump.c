/*
 * Host-side harness for the job parser: `rootfs-job-dump FILE` parses FILE as rootfs-init would and
 * prints one line per field, bytes outside '!'..'~' and the backslash as \xHH. On a malformed file
 * it prints "error: REASON" and exits 1. The Java tests (JobTest) compare its output with the job
 * they encoded, so encoder and parser cannot drift apart.
 */
#include "rootfs-job.h"

#include <stdio.h>
#include <stdlib.h>

static void field(const char *name, const char *v)
{
    if (!v) return;
    printf("%s=", name);
    for (const unsigned char *p = (const unsigned char *) v; *p; p++) {
        if (*p < '!' || *p > '~' || *p == '\\') printf("\\x%02x", *p);
        else putchar(*p);
    }
    putchar('\n');
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: rootfs-job-dump FILE\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    static unsigned char buf[JOB_MAX_SIZE + 1];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    struct job job;
    char err[256];
    if (job_parse(buf, n, &job, err, sizeof err)) {
        printf("error: %s\n", err);
        return 1;
    }
    field("root", job.root);
    printf("root-rw=%d\n", job.root_rw);
    for (size_t i = 0; i < job.nmounts; i++) {
        struct job_mount *m = &job.mounts[i];
        if (m->kind == MOUNT_SHARE) {
            field("share-tag", m->tag);
            field("share-path", m->path);
            printf("share-ro=%d\n", m->readonly);
        } else {
            field(m->kind == MOUNT_TMPFS ? "tmpfs" : "overlay", m->path);
        }
    }
    field("hostname", job.hostname);
    field("cwd", job.cwd);
    if (job.uid >= 0) printf("uid=%lld\n", job.uid);
    if (job.gid >= 0) printf("gid=%lld\n", job.gid);
    for (size_t i = 0; i < job.argc; i++) field("arg", job.argv[i]);
    for (size_t i = 0; i < job.envc; i++) field("env", job.envp[i]);
    field("stdin", job.stdin_port);
    field("stdout", job.stdout_port);
    field("stderr", job.stderr_port);
    printf("console-tty=%d\n", job.console_tty);
    for (size_t i = 0; i < job.ndhcp; i++) field("dhcp", job.dhcp[i]);
    return 0;
}
