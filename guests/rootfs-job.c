/* The job file parser of rootfs-init; the format is described in rootfs-job.h. */
#include "rootfs-job.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 32
#define LIST_MAX 65536   /* args, env entries, mounts: far above ARG_MAX's reach, below overflow */

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static char *copy(const unsigned char *v, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, v, n);
        s[n] = 0;
    }
    return s;
}

/* Appends s to a NULL-terminated list of *n entries. */
static int append(char ***list, size_t *n, char *s)
{
    if (*n >= LIST_MAX) return -1;
    char **l = realloc(*list, (*n + 2) * sizeof **list);
    if (!l) return -1;
    l[(*n)++] = s;
    l[*n] = NULL;
    *list = l;
    return 0;
}

static int decimal_id(const char *s, long long *out)
{
    if (!*s || strlen(s) > 10) return -1;
    long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > 4294967294LL) return -1;   /* (uid_t)-1 means "no change" to setuid's relatives */
    *out = v;
    return 0;
}

int job_parse(const unsigned char *buf, size_t len, struct job *job, char *err, size_t errlen)
{
    memset(job, 0, sizeof *job);
    job->uid = job->gid = -1;
    if (len > JOB_MAX_SIZE) return bad(err, errlen, "job file is %zu bytes, more than %u", len, JOB_MAX_SIZE);
    /* once-only keys seen so far, by name */
    static const char *const once[] = {"root", "root-rw", "hostname", "cwd", "uid", "gid", "stdin", "stdout",
                                       "stderr", "console-tty", "jvmm-job"};
    int seen[sizeof once / sizeof *once] = {0};
    size_t off = 0;
    int first = 1;
    while (off < len) {
        size_t klen = 0;
        while (off + klen < len && buf[off + klen] != 0 && klen <= KEY_MAX) klen++;
        if (off + klen >= len) return bad(err, errlen, "job file truncated in a key at offset %zu", off);
        if (klen == 0 || klen > KEY_MAX) return bad(err, errlen, "bad key length at offset %zu", off);
        char key[KEY_MAX + 1];
        memcpy(key, buf + off, klen);
        key[klen] = 0;
        for (size_t i = 0; i < klen; i++) {
            char c = key[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                return bad(err, errlen, "bad character in key at offset %zu", off);
        }
        off += klen + 1;
        if (len - off < 4) return bad(err, errlen, "job file truncated in the length of '%s'", key);
        uint32_t vlen = (uint32_t) buf[off] | (uint32_t) buf[off + 1] << 8 | (uint32_t) buf[off + 2] << 16
                        | (uint32_t) buf[off + 3] << 24;
        off += 4;
        if (vlen > len - off) return bad(err, errlen, "value of '%s' (%u bytes) runs past the end of the job file", key, vlen);
        const unsigned char *v = buf + off;
        off += vlen;

        if (first != (strcmp(key, "jvmm-job") == 0))
            return bad(err, errlen, first ? "job file does not start with a 'jvmm-job' record" : "second 'jvmm-job' record");
        for (size_t i = 0; i < sizeof once / sizeof *once; i++) {
            if (strcmp(key, once[i]) == 0 && seen[i]++) return bad(err, errlen, "'%s' given twice", key);
        }
        int shares = strcmp(key, "share") == 0;   /* the only value with NULs inside */
        if (!shares && memchr(v, 0, vlen)) return bad(err, errlen, "value of '%s' contains a NUL byte", key);
        char *s = copy(v, vlen);
        if (!s) return bad(err, errlen, "out of memory");
        int is_path = !strcmp(key, "tmpfs") || !strcmp(key, "overlay") || !strcmp(key, "cwd");
        if (is_path && s[0] != '/') return bad(err, errlen, "'%s' is not an absolute path", key);

        if (first) {
            if (strcmp(s, JOB_VERSION) != 0) return bad(err, errlen, "job format version '%s', this init reads " JOB_VERSION, s);
            free(s);
            first = 0;
        } else if (!strcmp(key, "root")) {
            if (!*s) return bad(err, errlen, "empty root tag");
            job->root = s;
        } else if (!strcmp(key, "root-rw") || !strcmp(key, "console-tty")) {
            if (strcmp(s, "0") && strcmp(s, "1")) return bad(err, errlen, "'%s' must be 0 or 1", key);
            *(key[0] == 'r' ? &job->root_rw : &job->console_tty) = s[0] == '1';
            free(s);
        } else if (!strcmp(key, "tmpfs") || !strcmp(key, "overlay") || shares) {
            struct job_mount m = {.kind = shares ? MOUNT_SHARE : key[0] == 't' ? MOUNT_TMPFS : MOUNT_OVERLAY};
            if (shares) {
                /* tag NUL path NUL ro|rw: exactly two NULs, three non-empty fields */
                const char *tag = s, *path, *mode;
                size_t taglen = strnlen(s, vlen);
                if (taglen == 0 || taglen >= vlen) return bad(err, errlen, "share without a tag and a path");
                path = s + taglen + 1;
                size_t pathlen = strnlen(path, vlen - taglen - 1);
                if (taglen + 1 + pathlen >= vlen) return bad(err, errlen, "share '%s' has no ro/rw field", tag);
                mode = path + pathlen + 1;
                if (strlen(mode) != vlen - taglen - pathlen - 2) return bad(err, errlen, "share '%s' has extra fields", tag);
                if (path[0] != '/') return bad(err, errlen, "share '%s': '%s' is not an absolute path", tag, path);
                if (strcmp(mode, "ro") && strcmp(mode, "rw")) return bad(err, errlen, "share '%s': mode must be ro or rw", tag);
                m.tag = copy((const unsigned char *) tag, taglen);
                m.path = copy((const unsigned char *) path, pathlen);
                m.readonly = mode[1] == 'o';
                free(s);
                if (!m.tag || !m.path) return bad(err, errlen, "out of memory");
            } else {
                m.path = s;
            }
            if (job->nmounts >= LIST_MAX) return bad(err, errlen, "too many mounts");
            struct job_mount *ms = realloc(job->mounts, (job->nmounts + 1) * sizeof *ms);
            if (!ms) return bad(err, errlen, "out of memory");
            ms[job->nmounts++] = m;
            job->mounts = ms;
        } else if (!strcmp(key, "hostname")) {
            job->hostname = s;
        } else if (!strcmp(key, "cwd")) {
            job->cwd = s;
        } else if (!strcmp(key, "uid") || !strcmp(key, "gid")) {
            if (decimal_id(s, key[0] == 'u' ? &job->uid : &job->gid))
                return bad(err, errlen, "'%s' is not a decimal id below 4294967295", key);
            free(s);
        } else if (!strcmp(key, "arg")) {
            if (append(&job->argv, &job->argc, s)) return bad(err, errlen, "too many args");
        } else if (!strcmp(key, "env")) {
            if (s[0] == '=' || !strchr(s, '=')) return bad(err, errlen, "env entry without NAME=");
            if (append(&job->envp, &job->envc, s)) return bad(err, errlen, "too many env entries");
        } else if (!strcmp(key, "dhcp")) {
            int mac = strlen(s) == 17;
            for (size_t i = 0; mac && i < 17; i++) {
                mac = i % 3 == 2 ? s[i] == ':' : (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f');
            }
            if (!mac) return bad(err, errlen, "dhcp '%s' is not a MAC address like 52:54:00:12:34:56", s);
            if (append(&job->dhcp, &job->ndhcp, s)) return bad(err, errlen, "too many dhcp interfaces");
        } else if (!strcmp(key, "stdin") || !strcmp(key, "stdout") || !strcmp(key, "stderr")) {
            if (!*s || strchr(s, '/')) return bad(err, errlen, "bad port name for %s", key);
            *(key[3] == 'i' ? &job->stdin_port : key[3] == 'o' ? &job->stdout_port : &job->stderr_port) = s;
        } else {
            return bad(err, errlen, "unknown key '%s'", key);
        }
    }
    if (first) return bad(err, errlen, "empty job file");
    if (!job->root) return bad(err, errlen, "job file names no root tag");
    return 0;
}
