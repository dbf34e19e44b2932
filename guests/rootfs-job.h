/*
 * The job file of rootfs-init (/jvmm/job in the initramfs): what `jvmm run --rootfs` asks the guest
 * to do. Written by dev.jvmm.loader.initramfs.Job on the host, read by rootfs-init.c (and by
 * rootfs-job-dump.c, the host-side harness the Java tests run).
 *
 * Format: a sequence of records, nothing before, between or after them:
 *     key     1-32 bytes of [a-z0-9-], then one NUL byte
 *     length  4 bytes, unsigned little-endian
 *     value   `length` bytes (any bytes; the key says what may be in them)
 * The first record must be "jvmm-job" with value "1" (the format version). Unknown keys are an
 * error: the init and the encoder ship in the same jar, so a mismatch is a bug to report, not to skip.
 * "Text" below means a value without NUL bytes (it need not be UTF-8); a "path" is text starting
 * with '/'. Keys marked once may appear at most once.
 *
 *   root      once, required  text: virtio-fs tag of the root file system
 *   root-rw   once            "1": mount the root read-write ("0" or absent: read-only)
 *   tmpfs     repeated        path: an empty tmpfs there (mode and owner of the directory under it)
 *   overlay   repeated        path: that directory made writable, an overlayfs whose upper layer is
 *                             on a tmpfs (writes are discarded when the VM ends); "/" makes the whole
 *                             root such an overlay (mounted with the root, wherever the record is)
 *   share     repeated        tag NUL path NUL ("ro" | "rw"): another virtio-fs tag mounted at path;
 *                             a mount point missing in a read-only directory D (not "/") is made in
 *                             an overlay put on D
 *             (tmpfs, overlay and share are mounted in the order they appear, after the root)
 *   hostname  once            text
 *   cwd       once            path (default "/"; if missing in the guest: "/" and a console note)
 *   uid, gid  once            decimal 0-4294967294: setgroups({gid}), setgid, setuid before exec
 *   arg       repeated        text: one argv element, in order; none: an interactive shell
 *                             (/bin/sh -i) on the console
 *   env       repeated        text NAME=VALUE (NAME non-empty): the whole environment, in order
 *   stdin, stdout, stderr  once  text: name of the virtio-serial port to connect it to (absent:
 *                             stdin is /dev/null, stdout and stderr the console)
 *   console-tty  once         "1": the command runs on the console as its controlling terminal
 *                             (stdin, stdout and stderr the console; implied when there is no arg)
 *   dhcp      repeated        text: the MAC address (six lower-case hex pairs with ':') of a network
 *                             interface to configure by DHCP before the command starts
 */
#ifndef ROOTFS_JOB_H
#define ROOTFS_JOB_H

#include <stddef.h>

#define JOB_MAX_SIZE (4u << 20)   /* the Java encoder refuses more */
#define JOB_VERSION "1"

enum mount_kind { MOUNT_TMPFS, MOUNT_OVERLAY, MOUNT_SHARE };

struct job_mount {
    enum mount_kind kind;
    char *tag;      /* MOUNT_SHARE only */
    char *path;
    int readonly;   /* MOUNT_SHARE only */
};

struct job {
    char *root;
    int root_rw;
    struct job_mount *mounts;
    size_t nmounts;
    char *hostname;      /* NULL: unchanged */
    char *cwd;           /* NULL: "/" */
    long long uid, gid;  /* -1: unchanged */
    char **argv;         /* argc entries and a NULL */
    size_t argc;
    char **envp;         /* envc entries and a NULL */
    size_t envc;
    char *stdin_port, *stdout_port, *stderr_port;   /* NULL: see above */
    int console_tty;
    char **dhcp;         /* ndhcp MAC addresses ("52:54:00:12:34:56") and a NULL */
    size_t ndhcp;
};

/*
 * Parses buf[0..len) into *job (strings are fresh copies, NUL-terminated). Returns 0, or -1 with
 * a one-line reason in err (errlen bytes) on any malformed input.
 */
int job_parse(const unsigned char *buf, size_t len, struct job *job, char *err, size_t errlen);

#endif
