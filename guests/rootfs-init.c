/*
 * rootfs-init: PID 1 of `jvmm run --rootfs DIR KERNEL -- COMMAND...`, run from the initramfs that
 * dev.jvmm.loader.initramfs.InitramfsBuilder writes. It boots the guest into DIR (shared by
 * virtio-fs) and runs COMMAND there, then powers the VM off. In order:
 *
 *  1. mounts devtmpfs on /dev, /proc, /sys, cgroup2 on /sys/fs/cgroup, devpts, /dev/shm;
 *  2. loads the kernel modules /jvmm/modules/order lists (one file name a line, dependencies first;
 *     the files beside it, uncompressed) with finit_module, passing the MODULE.PARAM=VALUE words
 *     of the kernel command line as modprobe would; EEXIST (built in, already loaded) is fine, any
 *     other failure is one console line and the boot goes on;
 *  3. reads /jvmm/job (format: rootfs-job.h) and opens the stdin/stdout/stderr virtio-serial ports
 *     it names, waiting up to 10 s for them to appear;
 *  4. mounts the root tag on /newroot (read-only unless root-rw; under an overlay if the job has one
 *     on "/"), then the job's tmpfs, overlay and share mounts in order (paths resolved inside the
 *     new root, so its absolute symlinks such as /var/run -> /run point where they should; a
 *     share's missing mount point in a read-only directory gets an overlay on that directory);
 *     moves /dev, /proc and /sys into it; frees the initramfs's files; moves /newroot onto / and
 *     chroots (switch_root: pivot_root cannot leave the initramfs rootfs);
 *  5. sets the hostname, brings up lo, configures by DHCP each interface whose MAC the job names
 *     (rootfs-dhcp.c; its name servers go to a file bind-mounted on /etc/resolv.conf, so the host's
 *     own file is never written; a failure is a console line, and the command runs without it), forks the command (new session; setgroups/setgid/setuid;
 *     chdir cwd, falling back to / with a console note), reaps every process until it ends, then
 *     kills what it left running;
 *  6. syncs, reports the status on the status port, powers off.
 *
 * Channels: the command's stdin, stdout and stderr are virtio-serial ports (one MULTIPORT
 * virtio-console device, ports found by name in /sys/class/virtio-ports/vportNpM/name, opened as
 * /dev/vportNpM): raw byte streams, never the kernel console's, and no tty (isatty() is false, no
 * ONLCR or echo to undo, as with docker run without -t). The host ends stdin by closing its side
 * (PORT_OPEN 0): reads then return 0. With console-tty, or no command, the command gets the
 * console (/sys/class/tty/console/active's last entry, e.g. ttyS0) as its controlling terminal.
 *
 * Phase port: `outb(N, 0x524)` at each milestone, for the VMM's timeline: 1 init started, 2 the new root
 * is mounted and entered, 3 the command was exec'ed, 4 it ended. A VMM without the port ignores the writes.
 *
 * Status port: `outl(status, 0x520)` (32-bit write to I/O port 0x520, after ioperm) once, just
 * before power-off, after sync(). status is the command's exit status 0-255, 128+N if signal N
 * killed it, or one of init's own (the container-runtime convention):
 *     125  the guest could not be set up (no job, root or share not mountable, port missing, ...)
 *     126  the command exists but cannot be executed (permissions, format, missing interpreter)
 *     127  the command was not found
 * Values above 255 are never written. A VMM that ends the run on this write loses nothing: the file
 * systems are synced before it.
 *
 * Messages: init's own lines go to /dev/kmsg as "jvmm-init: ..." (errors at level 3, so they show
 * on the console even with `quiet`; notes such as the final "exit status N" at 5; "running CMD" at
 * 6), so they reach the kernel console (ttyS0) in order with the kernel's, and never the command's
 * stdout or stderr. A failure to start the command (125, 126, 127) is also written to the stderr
 * port: the command never ran, so that line is all its stderr carries.
 *
 * What the VMM must provide (devices, port protocol, modules): see
 * dev.jvmm.loader.initramfs.RootfsInit.
 */
#define _GNU_SOURCE
#include "rootfs-job.h"
#include "rootfs-dhcp.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define STATUS_PORT 0x520
#define PHASE_PORT 0x524             /* one byte per milestone, for the VMM's timeline (--stats-json) */
enum { PHASE_INIT = 1, PHASE_ROOT = 2, PHASE_COMMAND_STARTED = 3, PHASE_COMMAND_EXITED = 4 };
#define EXIT_SETUP 125
#define EXIT_CANNOT_EXEC 126
#define EXIT_NOT_FOUND 127

#define MODULES_DIR "/jvmm/modules"
#define JOB_FILE "/jvmm/job"
#define NEWROOT "/newroot"
#define RW_DIR "/jvmm/rw"            /* the tmpfs holding the overlays' upper and work directories */
#define LOWER_DIR "/jvmm/lower"      /* the virtio-fs root, when an overlay on / covers it */
#define PORT_WAIT_MS 10000
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int kmsg_fd = -1;
static int console_fd = -1;          /* init's messages go here directly once the console is a tty job's */
static int stderr_fd = -1;           /* the command's stderr, once open: failures are reported there too */
static int stderr_is_console;

/* ------------------------------------------------------------------ messages and the end */

static void vsay(int level, const char *fmt, va_list ap)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "<%d>jvmm-init: ", level);
    vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    if (kmsg_fd >= 0 && console_fd < 0) {
        if (write(kmsg_fd, line, len) >= 0) return;
    }
    /* no /dev/kmsg (or the console belongs to an interactive job): the console, without "<N>" */
    const char *text = strchr(line, '>') + 1;
    if (write(console_fd >= 0 ? console_fd : 2, text, len - (size_t) (text - line)) < 0) { /* nowhere left */ }
}

static void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(5, fmt, ap);
    va_end(ap);
}

static void info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(6, fmt, ap);
    va_end(ap);
}

static void error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsay(3, fmt, ap);
    va_end(ap);
}

static int phase_port_ok;

/* Tells the VMM a milestone was reached: an outb, which costs one exit (a VMM without the port ignores it). */
static void phase(int which)
{
    if (phase_port_ok) outb((unsigned char) which, PHASE_PORT);
}

/* Reports status to the VMM and powers off. Never returns: PID 1 must not exit (the kernel panics). */
static _Noreturn void finish(int status)
{
    note("exit status %d", status);
    /* what went to the console as a tty (not printk) sits in the UART driver's buffer: let it out first */
    if (console_fd >= 0) tcdrain(console_fd);
    if (isatty(1)) tcdrain(1);
    sync();
    if (ioperm(STATUS_PORT, 4, 1) == 0) outl((unsigned) status, STATUS_PORT);
    else error("ioperm(0x%x): %s: the exit status cannot reach the VMM", STATUS_PORT, strerror(errno));
    reboot(RB_POWER_OFF);
    error("power-off failed: %s", strerror(errno));
    for (;;) pause();
}

/* A setup failure: one line on the console and on the stderr port, then the end with status. */
static _Noreturn void fail(int status, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    error("%s", msg);
    if (stderr_fd >= 0 && !stderr_is_console) dprintf(stderr_fd, "jvmm-init: %s\n", msg);
    finish(status);
}

/* ------------------------------------------------------------------ small helpers */

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) && errno == EINTR) { }
}

/* Reads a whole file of at most max bytes into a fresh NUL-terminated buffer; NULL with errno. */
static char *read_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    char *buf = malloc(max + 1);
    size_t n = 0;
    while (buf && n <= max) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            free(buf);
            buf = NULL;
            break;
        }
        if (r == 0) break;
        n += (size_t) r;
    }
    int saved = errno;
    close(fd);
    if (buf && n > max) {
        free(buf);
        buf = NULL;
        saved = EFBIG;
    }
    errno = buf ? 0 : saved ? saved : ENOMEM;
    if (buf) {
        buf[n] = 0;
        if (len) *len = n;
    }
    return buf;
}

static void mount_or_note(const char *src, const char *dst, const char *type, unsigned long flags, const char *opts)
{
    mkdir(dst, 0755);
    if (mount(src, dst, type, flags, opts) && errno != EBUSY) note("cannot mount %s on %s: %s", type, dst, strerror(errno));
}

/* ------------------------------------------------------------------ 1. the initramfs's own mounts */

static void early_mounts(void)
{
    mkdir("/dev", 0755);
    if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755") && errno != EBUSY) { /* noted below */ }
    if (fcntl(0, F_GETFD) < 0) {
        /* the kernel found no /dev/console before init: give init one now */
        int fd = open("/dev/console", O_RDWR | O_NOCTTY);
        if (fd >= 0) {
            dup2(fd, 0), dup2(fd, 1), dup2(fd, 2);
            if (fd > 2) close(fd);
        }
    }
    kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
    mount_or_note("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_or_note("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_or_note("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    mount_or_note("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "gid=5,mode=0620,ptmxmode=0666");
    mount_or_note("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
    /* what udev would add, and what shells' process substitution and many programs expect */
    symlink("/proc/self/fd", "/dev/fd");
    symlink("/proc/self/fd/0", "/dev/stdin");
    symlink("/proc/self/fd/1", "/dev/stdout");
    symlink("/proc/self/fd/2", "/dev/stderr");
}

/* ------------------------------------------------------------------ 2. kernel modules */

/* Module names treat '-' and '_' alike: the kernel's own spelling uses '_'. */
static void module_name(const char *file, char *name, size_t size)
{
    size_t n = strcspn(file, ".");
    if (n >= size) n = size - 1;
    for (size_t i = 0; i < n; i++) name[i] = file[i] == '-' ? '_' : file[i];
    name[n] = 0;
}

/*
 * The parameters the kernel command line gives module `name` (words "name.param=value", where the
 * value may be double-quoted), as one "param=value param2=value2" string: modprobe's job for
 * modules that are not built in.
 */
static char *cmdline_params(const char *name)
{
    static char *cmdline;
    if (!cmdline && !(cmdline = read_file("/proc/cmdline", 65536, NULL))) cmdline = "";
    size_t cap = strlen(cmdline) + 1;
    char *out = calloc(1, cap);
    if (!out) return NULL;
    size_t namelen = strlen(name);
    const char *p = cmdline;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        const char *start = p;
        int quoted = 0;
        while (*p && (quoted || (*p != ' ' && *p != '\t' && *p != '\n'))) {
            if (*p == '"') quoted = !quoted;
            p++;
        }
        size_t wlen = (size_t) (p - start);
        if (wlen > namelen + 1 && start[namelen] == '.') {
            int same = 1;
            for (size_t i = 0; i < namelen && same; i++) {
                char c = start[i] == '-' ? '_' : start[i];
                same = c == name[i];
            }
            if (same) {
                if (*out) strcat(out, " ");
                strncat(out, start + namelen + 1, wlen - namelen - 1);
            }
        }
    }
    return out;
}

static void load_modules(void)
{
    size_t len;
    char *order = read_file(MODULES_DIR "/order", 1 << 16, &len);
    if (!order) {
        if (errno != ENOENT) error("cannot read " MODULES_DIR "/order: %s", strerror(errno));
        return;
    }
    for (char *line = order, *next; *line; line = next) {
        next = line + strcspn(line, "\n");
        if (*next) *next++ = 0;
        if (!*line) continue;
        if (strchr(line, '/')) {
            error("bad module file name '%s' in " MODULES_DIR "/order", line);
            continue;
        }
        char path[512], name[128];
        snprintf(path, sizeof path, MODULES_DIR "/%s", line);
        module_name(line, name, sizeof name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            error("module %s: cannot open %s: %s", name, path, strerror(errno));
            continue;
        }
        char *params = cmdline_params(name);
        if (syscall(SYS_finit_module, fd, params ? params : "", 0) && errno != EEXIST)
            error("module %s: cannot load: %s (see the kernel's message above)", name, strerror(errno));
        free(params);
        close(fd);
    }
    free(order);
}

/* ------------------------------------------------------------------ 3. job and ports */

static struct job job;

static void read_job(void)
{
    size_t len;
    char *buf = read_file(JOB_FILE, JOB_MAX_SIZE, &len);
    if (!buf) fail(EXIT_SETUP, "cannot read the job file " JOB_FILE ": %s", strerror(errno));
    char err[256];
    if (job_parse((unsigned char *) buf, len, &job, err, sizeof err)) fail(EXIT_SETUP, "bad job file " JOB_FILE ": %s", err);
    free(buf);
}

/* The /dev node of the virtio-serial port named name ("vport1p2"), or NULL while there is none. */
static char *find_port(const char *name)
{
    DIR *d = opendir("/sys/class/virtio-ports");
    if (!d) return NULL;
    char *found = NULL;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[300];
        snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
        char *n = read_file(path, 4096, NULL);
        if (!n) continue;
        n[strcspn(n, "\n")] = 0;
        if (!strcmp(n, name) && asprintf(&found, "/dev/%s", e->d_name) < 0) found = NULL;
        free(n);
    }
    closedir(d);
    return found;
}

/* Opens the ports the job names (the ones not found yet), waiting for virtio-serial to announce them. */
static void open_ports(int *in, int *out, int *err)
{
    const char *names[3] = {job.stdin_port, job.stdout_port, job.stderr_port};
    int *fds[3] = {in, out, err};
    static const int flags[3] = {O_RDONLY, O_WRONLY, O_WRONLY};
    long long deadline = now_ms() + PORT_WAIT_MS;
    for (;;) {
        int missing = 0;
        for (int i = 0; i < 3; i++) {
            if (!names[i] || *fds[i] >= 0) continue;
            char *dev = find_port(names[i]);
            if (dev) {
                /* the node may lag the sysfs entry a little: devtmpfs makes it asynchronously */
                *fds[i] = open(dev, flags[i] | O_CLOEXEC);
                if (*fds[i] < 0 && errno != ENOENT) fail(EXIT_SETUP, "cannot open %s (port %s): %s", dev, names[i], strerror(errno));
                free(dev);
            }
            if (*fds[i] < 0) missing++;
        }
        if (!missing) break;
        if (now_ms() > deadline) {
            for (int i = 0; i < 3; i++)
                if (names[i] && *fds[i] < 0)
                    fail(EXIT_SETUP, "no virtio-serial port named '%s' after %d s (the VMM must offer it on a"
                         " MULTIPORT virtio-console; module virtio_console loaded?)", names[i], PORT_WAIT_MS / 1000);
        }
        sleep_ms(10);
    }
    if (*err >= 0) stderr_fd = *err;
}

/* ------------------------------------------------------------------ 4. the new root */

static int newroot_fd = -1;

/*
 * The host-side path ("/newroot/...") of guest path `path` resolved inside the new root: symlinks
 * in it are followed as the guest will see them, ".." stops at the new root. With create, missing
 * directories are made (mode 0755). NULL with errno on failure.
 */
static char *in_newroot_plain(const char *path, int create);

static char *in_newroot(const char *path, int create)
{
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
    const char *rel = path;
    while (*rel == '/') rel++;
    if (!*rel) rel = ".";
    int fd = (int) syscall(SYS_openat2, newroot_fd, rel, &how, sizeof how);
    if (fd < 0 && errno == ENOSYS) return in_newroot_plain(path, create);   /* a kernel before 5.6 */
    if (fd < 0 && errno == ENOENT && create) {
        /* make the missing components one by one, each parent resolved in the new root */
        char *prefix = strdup(rel);
        if (!prefix) return NULL;
        for (char *slash = prefix;; slash++) {
            slash = strchr(slash, '/');
            if (slash) *slash = 0;
            int d = (int) syscall(SYS_openat2, newroot_fd, prefix, &how, sizeof how);
            if (d < 0 && errno == ENOENT) {
                char *base = strrchr(prefix, '/');
                int parent = newroot_fd;
                if (base) {
                    *base = 0;
                    parent = (int) syscall(SYS_openat2, newroot_fd, prefix, &how, sizeof how);
                    *base = '/';
                }
                if (parent < 0 || (mkdirat(parent, base ? base + 1 : prefix, 0755) && errno != EEXIST)) {
                    int saved = errno;
                    if (parent >= 0 && parent != newroot_fd) close(parent);
                    free(prefix);
                    errno = saved;
                    return NULL;
                }
                if (parent != newroot_fd) close(parent);
            } else if (d >= 0) {
                close(d);
            }
            if (!slash) break;
            *slash = '/';
        }
        free(prefix);
        fd = (int) syscall(SYS_openat2, newroot_fd, rel, &how, sizeof how);
    }
    if (fd < 0) return NULL;
    char link[64], *resolved = malloc(PATH_MAX);
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = resolved ? readlink(link, resolved, PATH_MAX - 1) : -1;
    int saved = errno;
    close(fd);
    if (n < 0) {
        free(resolved);
        errno = saved;
        return NULL;
    }
    resolved[n] = 0;
    return resolved;
}

/* in_newroot without openat2: "/newroot" + path, symlinks in it followed as the initramfs sees them. */
static char *in_newroot_plain(const char *path, int create)
{
    char *p;
    if (asprintf(&p, NEWROOT "%s", path) < 0) return NULL;
    for (char *slash = p + strlen(NEWROOT) + 1; create; slash++) {
        slash = strchr(slash, '/');
        if (slash) *slash = 0;
        if (mkdir(p, 0755) && errno != EEXIST) {
            int saved = errno;
            free(p);
            errno = saved;
            return NULL;
        }
        if (!slash) break;
        *slash = '/';
    }
    struct stat st;
    if (stat(p, &st)) {
        int saved = errno;
        free(p);
        errno = saved;
        return NULL;
    }
    return p;
}

/* Appends s to out with overlayfs's escapes for ',' ':' '\' (option and layer separators). */
static void overlay_escape(char *out, size_t size, const char *s)
{
    size_t n = strlen(out);
    for (; *s && n + 2 < size; s++) {
        if (*s == ',' || *s == ':' || *s == '\\') out[n++] = '\\';
        out[n++] = *s;
    }
    out[n] = 0;
}

/* Mounts on target an overlay of lower (host-side paths) with a fresh upper layer on the rw tmpfs. */
static void overlay_on(const char *lower, const char *target, const char *what)
{
    static int count;
    struct stat st;
    if (stat(lower, &st)) fail(EXIT_SETUP, "cannot overlay %s: %s", what, strerror(errno));
    if (count == 0) {
        mkdir(RW_DIR, 0700);
        if (mount("tmpfs", RW_DIR, "tmpfs", 0, "mode=0700"))
            fail(EXIT_SETUP, "cannot mount the tmpfs for overlays on " RW_DIR ": %s", strerror(errno));
    }
    char upper[64], work[64], dir[64];
    snprintf(dir, sizeof dir, RW_DIR "/%d", count);
    snprintf(upper, sizeof upper, RW_DIR "/%d/upper", count);
    snprintf(work, sizeof work, RW_DIR "/%d/work", count);
    count++;
    /* the overlay's root takes the upper directory's mode and owner: copy them from below */
    if (mkdir(dir, 0700) || mkdir(upper, st.st_mode & 07777) || mkdir(work, 0700) || chown(upper, st.st_uid, st.st_gid)
        || chmod(upper, st.st_mode & 07777))
        fail(EXIT_SETUP, "cannot prepare the overlay for %s in " RW_DIR ": %s", what, strerror(errno));
    char opts[3 * PATH_MAX];
    strcpy(opts, "lowerdir=");
    overlay_escape(opts, sizeof opts, lower);
    snprintf(opts + strlen(opts), sizeof opts - strlen(opts), ",upperdir=%s,workdir=%s", upper, work);
    if (mount("overlay", target, "overlay", 0, opts))
        fail(EXIT_SETUP, "cannot mount an overlay on %s: %s (module overlay loaded?)", what, strerror(errno));
}

static int wants_root_overlay(void)
{
    for (size_t i = 0; i < job.nmounts; i++)
        if (job.mounts[i].kind == MOUNT_OVERLAY && !strcmp(job.mounts[i].path, "/")) return 1;
    return 0;
}

static void mount_root(void)
{
    mkdir(NEWROOT, 0755);
    unsigned long flags = job.root_rw ? 0 : MS_RDONLY;
    /* with an overlay on "/", the virtio-fs root is only its lower layer */
    int overlay = wants_root_overlay();
    const char *at = overlay ? LOWER_DIR : NEWROOT;
    mkdir(at, 0755);
    /* virtio-fs devices are probed when the module loads; allow a moment in case that is deferred */
    int tries = 0;
    while (mount(job.root, at, "virtiofs", flags, NULL)) {
        if (errno == EINVAL && ++tries < 20) {
            sleep_ms(50);
            continue;
        }
        const char *hint = errno == ENODEV ? " (no virtiofs in this kernel: module virtiofs missing or not loaded?)"
                         : errno == EINVAL ? " (no virtio-fs device has this tag)" : "";
        fail(EXIT_SETUP, "cannot mount the root file system, virtio-fs tag '%s': %s%s", job.root, strerror(errno), hint);
    }
    if (overlay) overlay_on(LOWER_DIR, NEWROOT, "/");
    newroot_fd = open(NEWROOT, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (newroot_fd < 0) fail(EXIT_SETUP, "cannot open " NEWROOT ": %s", strerror(errno));
}

static void mount_tmpfs(const char *path)
{
    char *target = in_newroot(path, 0);
    struct stat st;
    if (!target || stat(target, &st) || !S_ISDIR(st.st_mode)) {
        note("no directory %s in the root file system: no tmpfs there", path);
        free(target);
        return;
    }
    char opts[128];
    snprintf(opts, sizeof opts, "mode=%o,uid=%u,gid=%u", st.st_mode & 07777, st.st_uid, st.st_gid);
    if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, opts))
        fail(EXIT_SETUP, "cannot mount a tmpfs on %s: %s", path, strerror(errno));
    free(target);
}

static void mount_overlay(const char *path)
{
    char *target = in_newroot(path, 0);
    struct stat st;
    if (!target || stat(target, &st) || !S_ISDIR(st.st_mode)) {
        note("no directory %s in the root file system: it stays as it is", path);
        free(target);
        return;
    }
    overlay_on(target, target, path);
    free(target);
}

/* The longest proper prefix of guest path `path` that is a directory in the new root (at least "/"). */
static char *existing_ancestor(const char *path)
{
    char *p = strdup(path);
    for (char *slash; p && (slash = strrchr(p, '/')) && slash != p;) {
        *slash = 0;
        char *t = in_newroot(p, 0);
        struct stat st;
        int dir = t && stat(t, &st) == 0 && S_ISDIR(st.st_mode);
        free(t);
        if (dir) return p;
    }
    if (p) strcpy(p, "/");
    return p;
}

static void mount_share(const struct job_mount *m)
{
    char *target = in_newroot(m->path, 1);
    if (!target && errno == EROFS) {
        /* no mount point in a read-only directory: make that directory an overlay, and the mount point in it */
        char *dir = existing_ancestor(m->path);
        if (dir && strcmp(dir, "/")) {
            mount_overlay(dir);
            target = in_newroot(m->path, 1);
        } else {
            errno = EROFS;
        }
        free(dir);
    }
    if (!target)
        fail(EXIT_SETUP, "share '%s': cannot make the mount point %s: %s%s", m->tag, m->path, strerror(errno),
             errno == EROFS ? " (the root is read-only: make the directory in it, or ask for an overlay on /)" : "");
    if (mount(m->tag, target, "virtiofs", m->readonly ? MS_RDONLY : 0, NULL)) {
        const char *hint = errno == EINVAL ? " (no virtio-fs device has this tag)" : "";
        fail(EXIT_SETUP, "cannot mount share '%s' on %s: %s%s", m->tag, m->path, strerror(errno), hint);
    }
    free(target);
}

/* Moves init's /dev, /proc and /sys (with their submounts) to the same places in the new root. */
static void move_api_mounts(void)
{
    static const char *const dirs[] = {"/dev", "/proc", "/sys"};
    enum { N = sizeof dirs / sizeof *dirs };
    char *targets[N];
    /* all resolved first: in_newroot needs /proc where it is */
    for (size_t i = 0; i < N; i++) {
        targets[i] = in_newroot(dirs[i], 1);
        if (!targets[i]) note("no %s in the new root (%s): the command runs without it", dirs[i], strerror(errno));
    }
    for (size_t i = 0; i < N; i++) {
        if (targets[i] && mount(dirs[i], targets[i], NULL, MS_MOVE, NULL))
            note("cannot move %s to %s (%s): the command runs without it", dirs[i], targets[i], strerror(errno));
        free(targets[i]);
    }
}

/*
 * Deletes the initramfs's files (the init, modules, job): they would otherwise hold RAM for the
 * whole run. Stays on the rootfs device: other mounts (the new root, the overlays' tmpfs) are kept.
 */
static void delete_tree(int dirfd, dev_t rootdev)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat st;
        if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) || st.st_dev != rootdev) continue;
        if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) delete_tree(sub, rootdev);
            unlinkat(dirfd, e->d_name, AT_REMOVEDIR);
        } else {
            unlinkat(dirfd, e->d_name, 0);
        }
    }
    closedir(d);
}

static void switch_root(void)
{
    struct stat st;
    if (stat("/", &st) == 0) {
        int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) delete_tree(fd, st.st_dev);
    }
    if (chdir(NEWROOT) || mount(".", "/", NULL, MS_MOVE, NULL) || chroot(".") || chdir("/"))
        fail(EXIT_SETUP, "cannot switch to the new root: %s", strerror(errno));
    close(newroot_fd);
}

/* ------------------------------------------------------------------ 5. the command */

static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return;
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr)) note("cannot bring up lo: %s", strerror(errno));
    }
    close(s);
}

#define DHCP_TIMEOUT_MS 30000
#define IFACE_WAIT_MS 5000
#define RESOLV_CONF "/dev/.jvmm-resolv.conf"

/* The interface with hardware address mac ("52:54:00:12:34:56"), waiting for its driver: its name in name. */
static int iface_by_mac(const char *mac, char *name, size_t size)
{
    long long until = now_ms() + IFACE_WAIT_MS;
    do {
        DIR *d = opendir("/sys/class/net");
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            char path[300];
            snprintf(path, sizeof path, "/sys/class/net/%s/address", e->d_name);
            char *addr = read_file(path, 64, NULL);
            int same = addr && !strncmp(addr, mac, 17) && (addr[17] == '\n' || addr[17] == 0);
            free(addr);
            if (same && strlen(e->d_name) < size) {
                strcpy(name, e->d_name);
                closedir(d);
                return 0;
            }
        }
        if (d) closedir(d);
        sleep_ms(20);
    } while (now_ms() < until);
    return -1;
}

/* The name servers DHCP gave, on /etc/resolv.conf by a bind mount (the file beside it stays untouched). */
static void name_servers(const struct dhcp_lease *l)
{
    if (!l->ndns) return;
    int fd = open(RESOLV_CONF, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        note("cannot write the name servers: %s", strerror(errno));
        return;
    }
    for (size_t i = 0; i < l->ndns; i++) {
        char a[INET_ADDRSTRLEN];
        dprintf(fd, "nameserver %s\n", inet_ntop(AF_INET, &l->dns[i], a, sizeof a));
    }
    close(fd);
    if (mount(RESOLV_CONF, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0) return;
    if (errno == ENOENT) {
        /* no file there (a writable /etc without one, or a symlink into the empty /run): make it */
        int t = open("/etc/resolv.conf", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (t >= 0) close(t);
        if (t >= 0 && mount(RESOLV_CONF, "/etc/resolv.conf", NULL, MS_BIND, NULL) == 0) return;
    }
    note("cannot put the name servers on /etc/resolv.conf: %s", strerror(errno));
}

static void configure_networks(void)
{
    for (size_t i = 0; i < job.ndhcp; i++) {
        char name[IFNAMSIZ], err[300];
        struct dhcp_lease l;
        if (iface_by_mac(job.dhcp[i], name, sizeof name)) {
            error("no network interface with MAC %s: the command runs without it", job.dhcp[i]);
            continue;
        }
        if (dhcp_configure(name, DHCP_TIMEOUT_MS, &l, err, sizeof err)) {
            error("%s: %s: the command runs without it", name, err);
            continue;
        }
        char a[INET_ADDRSTRLEN];
        info("%s: %s by DHCP", name, inet_ntop(AF_INET, &l.addr, a, sizeof a));
        name_servers(&l);
    }
}

/* The console's real tty ("/dev/ttyS0"): the last entry of /sys/class/tty/console/active. */
static char *console_tty(void)
{
    char *active = read_file("/sys/class/tty/console/active", 4096, NULL), *path = NULL;
    if (active) {
        active[strcspn(active, "\n")] = 0;
        char *last = strrchr(active, ' ');
        last = last ? last + 1 : active;
        if (*last && asprintf(&path, "/dev/%s", last) < 0) path = NULL;
        free(active);
    }
    return path ? path : strdup("/dev/console");
}

/* What the child tells the parent through the close-on-exec pipe when it cannot exec. */
struct exec_failure {
    int status;   /* 125, 126, 127 */
    int err;      /* errno */
    char what[200];
};

static _Noreturn void child_fails(int pipe_fd, int status, int err, const char *what)
{
    struct exec_failure f = {status, err, ""};
    snprintf(f.what, sizeof f.what, "%s", what);
    if (write(pipe_fd, &f, sizeof f) < 0) { /* the parent then sees a plain exit status */ }
    _exit(status);
}

/* execvp with the job's PATH: 127 if nothing was found, 126 if something was but would not run. */
static _Noreturn void exec_command(int pipe_fd)
{
    const char *cmd = job.argv[0];
    if (strchr(cmd, '/')) {
        execve(cmd, job.argv, job.envp);
    } else {
        const char *path = DEFAULT_PATH;
        for (size_t i = 0; i < job.envc; i++)
            if (!strncmp(job.envp[i], "PATH=", 5)) path = job.envp[i] + 5;
        int denied = 0;
        for (const char *p = path;; p++) {
            const char *end = strchrnul(p, ':');
            char file[PATH_MAX];
            int n = end == p ? snprintf(file, sizeof file, "%s", cmd)   /* empty entry: the cwd */
                             : snprintf(file, sizeof file, "%.*s/%s", (int) (end - p), p, cmd);
            if (n > 0 && (size_t) n < sizeof file) {
                execve(file, job.argv, job.envp);
                if (errno == EACCES) denied = 1;
                else if (errno != ENOENT && errno != ENOTDIR) {
                    cmd = file;
                    break;   /* it exists but cannot run: as execvp, stop here */
                }
            }
            if (!*end) {
                errno = denied ? EACCES : ENOENT;
                break;
            }
            p = end;
        }
    }
    int err = errno;
    int status = err == ENOENT || err == ENOTDIR ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
    if (status == EXIT_NOT_FOUND && strchr(cmd, '/') && access(cmd, F_OK) == 0) {
        /* ENOENT for a file that is there: its ELF interpreter or #! program is missing */
        child_fails(pipe_fd, EXIT_CANNOT_EXEC, err, "(its program interpreter is missing)");
    }
    child_fails(pipe_fd, status, err, "");
}

static int run_command(int in, int out, int err)
{
    static char *shell[] = {"/bin/sh", "-i", NULL};
    if (job.argc == 0) {
        job.argv = shell;
        job.argc = 2;
        job.console_tty = 1;
    }
    static char *empty_env[] = {NULL};
    if (!job.envp) job.envp = empty_env;
    char *tty = job.console_tty ? console_tty() : NULL;
    if (tty) {
        /* a terminal needs a TERM: vt100 is what any terminal emulator on the host's side can do */
        int has_term = 0;
        for (size_t i = 0; i < job.envc; i++) has_term |= !strncmp(job.envp[i], "TERM=", 5);
        char **env = has_term ? NULL : malloc((job.envc + 2) * sizeof *env);
        if (env) {
            memcpy(env, job.envp, job.envc * sizeof *env);
            env[job.envc] = "TERM=vt100";
            env[job.envc + 1] = NULL;
            job.envp = env;
            job.envc++;
        }
    }
    if (tty) {
        /* the console is the command's now: kernel chatter would garble it, and init writes there directly */
        klogctl(8, NULL, 1);   /* SYSLOG_ACTION_CONSOLE_LEVEL: emergencies only */
        /* /dev/console, the kernel's fd 2 for init: unlike a file of the tty itself, it survives the
           hangup the tty gets when the command (its session leader) exits */
        console_fd = 2;
    }
    info("running %s", job.argv[0]);
    int pipe_fds[2];
    if (pipe2(pipe_fds, O_CLOEXEC)) fail(EXIT_SETUP, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) fail(EXIT_SETUP, "fork: %s", strerror(errno));
    if (pid == 0) {
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        setsid();
        if (tty) {
            int fd = open(tty, O_RDWR);
            if (fd < 0 || ioctl(fd, TIOCSCTTY, 1)) child_fails(pipe_fds[1], EXIT_SETUP, errno, tty);
            in = out = err = fd;
        } else {
            if (in < 0) in = open("/dev/null", O_RDONLY);
            if (out < 0) out = 1;   /* init's own stdout and stderr: the console */
            if (err < 0) err = 2;
        }
        /* dup2 each to a spare number first so that no target overwrites a source still needed */
        int a = fcntl(in, F_DUPFD_CLOEXEC, 10), b = fcntl(out, F_DUPFD_CLOEXEC, 10), c = fcntl(err, F_DUPFD_CLOEXEC, 10);
        if (a < 0 || b < 0 || c < 0 || dup2(a, 0) < 0 || dup2(b, 1) < 0 || dup2(c, 2) < 0)
            child_fails(pipe_fds[1], EXIT_SETUP, errno, "stdio");
        if (job.gid >= 0) {
            gid_t g = (gid_t) job.gid;
            if (setgroups(1, &g) || setgid(g)) child_fails(pipe_fds[1], EXIT_SETUP, errno, "setgid");
        }
        if (job.uid >= 0 && setuid((uid_t) job.uid)) child_fails(pipe_fds[1], EXIT_SETUP, errno, "setuid");
        const char *cwd = job.cwd ? job.cwd : "/";
        if (chdir(cwd)) {
            note("cannot enter %s (%s): the command runs in /", cwd, strerror(errno));
            if (chdir("/")) { /* / always exists */ }
        }
        exec_command(pipe_fds[1]);
    }
    close(pipe_fds[1]);
    if (in >= 0) close(in);   /* the command's now; the host sees its end when the command closes it */
    struct exec_failure f;
    ssize_t n;
    while ((n = read(pipe_fds[0], &f, sizeof f)) < 0 && errno == EINTR) { }
    close(pipe_fds[0]);
    if (n == 0) phase(PHASE_COMMAND_STARTED);   /* the close-on-exec pipe closed: the exec succeeded */
    int status = -1;
    for (;;) {
        int st;
        pid_t w = waitpid(-1, &st, 0);   /* PID 1 reaps every orphan too */
        if (w == pid) {
            status = WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : EXIT_SETUP;
            phase(PHASE_COMMAND_EXITED);
            break;
        }
        if (w < 0 && errno != EINTR) break;
    }
    if (n == (ssize_t) sizeof f) {
        f.what[sizeof f.what - 1] = 0;
        if (f.status == EXIT_SETUP) fail(EXIT_SETUP, "cannot start the command (%s): %s", f.what, strerror(f.err));
        fail(f.status, "cannot run '%s': %s%s%s", job.argv[0], strerror(f.err), *f.what ? " " : "", f.what);
    }
    if (status < 0) fail(EXIT_SETUP, "lost the command: %s", strerror(errno));
    /* the run ends with the command: what it left running must not write after the sync */
    if (kill(-1, SIGKILL) == 0) {
        while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) { }
    }
    return status;
}

int main(void)
{
    if (getpid() != 1) {
        fprintf(stderr, "rootfs-init: this is the init of jvmm's rootfs initramfs; it only runs as PID 1\n");
        return 2;
    }
    reboot(RB_DISABLE_CAD);   /* Ctrl-Alt-Del becomes a SIGINT to init, which ignores it */
    phase_port_ok = ioperm(PHASE_PORT, 1, 1) == 0;
    phase(PHASE_INIT);
    early_mounts();
    load_modules();
    read_job();
    int in = -1, out = -1, err = -1;
    open_ports(&in, &out, &err);
    if (err < 0) stderr_is_console = 1;
    mount_root();
    for (size_t i = 0; i < job.nmounts; i++) {
        const struct job_mount *m = &job.mounts[i];
        if (m->kind == MOUNT_TMPFS) mount_tmpfs(m->path);
        else if (m->kind == MOUNT_OVERLAY && strcmp(m->path, "/")) mount_overlay(m->path);
        else if (m->kind == MOUNT_OVERLAY) continue;   /* done with the root */
        else mount_share(m);
    }
    move_api_mounts();
    switch_root();
    phase(PHASE_ROOT);
    if (job.hostname && sethostname(job.hostname, strlen(job.hostname)))
        note("cannot set the hostname: %s", strerror(errno));
    loopback_up();
    configure_networks();
    int status = run_command(in, out, err);
    if (out >= 0) close(out);
    if (err >= 0) close(err);
    stderr_fd = -1;
    finish(status);
}
