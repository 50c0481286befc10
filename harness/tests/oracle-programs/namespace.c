/*
 * Namespace writers for the durability oracle's tests (harness/tests/oracle.rs):
 * files created, linked, renamed, unlinked, resized and synced under a
 * watched directory.
 *
 *   namespace MODE DIR [OUTSIDE]
 *
 * DIR is the watched directory (the test may have put files in it); OUTSIDE
 * is a directory that is not watched. Acks go to stdout with write(2).
 * Exit codes: 0 done, 2 usage, 3 a syscall failed unexpectedly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static long page;
static const char *dir;

static void ack(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    buf[n] = '\n';
    if (write(1, buf, n + 1) != n + 1) _exit(3);
}

static void die(const char *what) {
    dprintf(2, "namespace: %s: %s\n", what, strerror(errno));
    _exit(3);
}

/* DIR/name in a static buffer (one of four, so a call can take two). */
static const char *in(const char *name) {
    static char bufs[4][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, PATH_MAX, "%s/%s", dir, name);
    return b;
}

static void full_write(int fd, const void *buf, size_t len) {
    if (write(fd, buf, len) != (ssize_t)len) die("write");
}

/* tmp created, sized, stored through a mapping, msynced, fsynced, renamed
 * over state, directory fsynced: the classic atomic replace. */
static int atomic_replace(void) {
    int fd = open(in("tmp"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0) die("open tmp");
    if (ftruncate(fd, 2 * page) != 0) die("ftruncate");
    char *map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    memset(map, 'N', 2 * page);
    if (msync(map, page, MS_SYNC) != 0) die("msync");
    if (fsync(fd) != 0) die("fsync");
    if (rename(in("tmp"), in("state")) != 0) die("rename");
    int d = open(dir, O_RDONLY | O_DIRECTORY);
    if (d < 0) die("open dir");
    if (fsync(d) != 0) die("fsync dir");
    ack("replaced");
    return 0;
}

/* One name created, written and unlinked three times; the third stays. */
static int recreate(void) {
    const char *content[3] = {"1", "22", "333"};
    for (int i = 0; i < 3; i++) {
        int fd = open(in("f"), O_CREAT | O_WRONLY | O_EXCL, 0644);
        if (fd < 0) die("open f");
        full_write(fd, content[i], strlen(content[i]));
        struct stat st;
        if (fstat(fd, &st) != 0) die("fstat");
        ack("ino %llu", (unsigned long long)st.st_ino);
        if (close(fd) != 0) die("close");
        if (i < 2 && unlink(in("f")) != 0) die("unlink");
    }
    return 0;
}

/* Two O_TMPFILE files given names: through /proc/self/fd, and with
 * AT_EMPTY_PATH (which needs CAP_DAC_READ_SEARCH: reported either way). */
static int tmpfile_link(void) {
    int fd = open(dir, O_TMPFILE | O_RDWR, 0600);
    if (fd < 0) die("open O_TMPFILE");
    full_write(fd, "hello", 5);
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, in("linked"), AT_SYMLINK_FOLLOW) != 0) die("linkat /proc/self/fd");
    int fd2 = open(dir, O_TMPFILE | O_RDWR, 0600);
    if (fd2 < 0) die("open O_TMPFILE 2");
    full_write(fd2, "hi", 2);
    if (linkat(fd2, "", AT_FDCWD, in("empty-path"), AT_EMPTY_PATH) == 0)
        ack("empty path linked");
    else
        ack("empty path refused %d", errno);
    return 0;
}

/* A new directory, a file in it, both synced. */
static int mkdir_inside(void) {
    if (mkdir(in("sub"), 0755) != 0) die("mkdir");
    int fd = open(in("sub/f"), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) die("open sub/f");
    full_write(fd, "abc", 3);
    if (fsync(fd) != 0) die("fsync");
    int d = open(in("sub"), O_RDONLY | O_DIRECTORY);
    if (d < 0) die("open sub");
    if (fsync(d) != 0) die("fsync sub");
    ack("done");
    return 0;
}

/* A pwrite inside the file, then a write past its end. */
static int write_sizes(void) {
    int fd = open(in("data"), O_RDWR);
    if (fd < 0) die("open");
    if (pwrite(fd, "b", 1, 10) != 1) die("pwrite");
    if (lseek(fd, 0, SEEK_END) < 0) die("lseek");
    full_write(fd, "xyz", 3);
    ack("written");
    return 0;
}

/* Page 1 through an O_DSYNC fd, page 3 through an O_SYNC fd, page 2
 * through a plain one: only 1 and 3 are durable. */
static int dsync(void) {
    int plain = open(in("data"), O_RDWR);
    int ds = open(in("data"), O_RDWR | O_DSYNC);
    int s = open(in("data"), O_RDWR | O_SYNC);
    if (plain < 0 || ds < 0 || s < 0) die("open");
    char *buf = malloc(page);
    memset(buf, 'D', page);
    if (pwrite(ds, buf, page, page) != page) die("pwrite dsync");
    memset(buf, 'P', page);
    if (pwrite(plain, buf, page, 2 * page) != page) die("pwrite plain");
    memset(buf, 'S', page);
    if (lseek(s, 3 * page, SEEK_SET) < 0) die("lseek");
    full_write(s, buf, page);
    /* Byte 0 stored through a mapping, not synced; then 1 byte of page 0
     * through the O_DSYNC fd: the whole page goes to disk, the store too. */
    char *map = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, plain, 0);
    if (map == MAP_FAILED) die("mmap");
    map[0] = 'M';
    if (pwrite(ds, "d", 1, 100) != 1) die("pwrite one byte");
    ack("written");
    return 0;
}

/* A 1-page file grown to 4 by ftruncate, page 3 stored and msynced. */
static int msync_grown(void) {
    int fd = open(in("data"), O_RDWR);
    if (fd < 0) die("open");
    if (ftruncate(fd, 4 * page) != 0) die("ftruncate");
    char *map = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    memset(map + 3 * page, 'G', page);
    if (msync(map + 3 * page, page, MS_SYNC) != 0) die("msync");
    ack("synced");
    return 0;
}

static int copy_range(void) {
    int fd = open(in("data"), O_RDWR);
    if (fd < 0) die("open");
    loff_t in_off = 0, out_off = page;
    ack("copying");
    ssize_t n = copy_file_range(fd, &in_off, fd, &out_off, 16, 0);
    ack("copy_file_range returned %zd", n);
    return 0;
}

static int exchange(void) {
    int fd = open(in("other"), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) die("open other");
    ack("exchanging");
    long r = syscall(SYS_renameat2, AT_FDCWD, in("data"), AT_FDCWD, in("other"), RENAME_EXCHANGE);
    ack("renameat2 returned %ld", r);
    return 0;
}

/* A fifo outside (fine), then one in the tree (refused). */
static int fifo(const char *out) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/fifo", out);
    if (mkfifo(path, 0600) != 0) die("mkfifo outside");
    ack("fifo outside");
    long r = mkfifo(in("fifo"), 0600);
    ack("mkfifo returned %ld", r);
    return 0;
}

/* Everything in OUTSIDE: nothing of it is recorded. */
static int outside(const char *out) {
    dir = out;
    if (mkdir(in("d"), 0755) != 0) die("mkdir");
    int fd = open(in("d/x"), O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0) die("open");
    full_write(fd, "outside", 7);
    if (ftruncate(fd, 100) != 0) die("ftruncate");
    if (fsync(fd) != 0) die("fsync");
    if (rename(in("d/x"), in("d/y")) != 0) die("rename");
    if (link(in("d/y"), in("z")) != 0) die("link");
    if (symlink("d/y", in("s")) != 0) die("symlink");
    if (unlink(in("d/y")) != 0) die("unlink");
    if (truncate(in("z"), 5) != 0) die("truncate");
    ack("outside done");
    return 0;
}

/* Files moved between the tree and OUTSIDE, a symlink in the tree, a
 * directory renamed, a file truncated by path and by O_TRUNC. */
static int moves(const char *out) {
    char src[PATH_MAX], dst[PATH_MAX];
    snprintf(src, sizeof src, "%s/in", out);
    int fd = open(src, O_CREAT | O_WRONLY, 0644);
    if (fd < 0) die("open outside");
    full_write(fd, "from outside", 12);
    close(fd);
    if (rename(src, in("moved-in")) != 0) die("rename in");
    snprintf(dst, sizeof dst, "%s/out", out);
    if (rename(in("data"), dst) != 0) die("rename out");
    if (symlink("moved-in", in("link")) != 0) die("symlink");
    if (mkdir(in("d1"), 0755) != 0) die("mkdir");
    fd = open(in("d1/f"), O_CREAT | O_WRONLY, 0644);
    if (fd < 0) die("open d1/f");
    full_write(fd, "0123456789", 10);
    close(fd);
    if (rename(in("d1"), in("d2")) != 0) die("rename dir");
    if (truncate(in("d2/f"), 4) != 0) die("truncate");
    fd = open(in("link"), O_WRONLY | O_TRUNC);
    if (fd < 0) die("open O_TRUNC through the symlink");
    close(fd);
    if (link(in("d2/f"), in("hard")) != 0) die("link");
    if (unlink(in("d2/f")) != 0) die("unlink");
    if (rmdir(in("d2")) != 0) die("rmdir");
    ack("moved");
    return 0;
}

int main(int argc, char **argv) {
    page = sysconf(_SC_PAGESIZE);
    if (argc < 3) return 2;
    const char *mode = argv[1];
    dir = argv[2];
    if (!strcmp(mode, "atomic-replace")) return atomic_replace();
    if (!strcmp(mode, "recreate")) return recreate();
    if (!strcmp(mode, "tmpfile")) return tmpfile_link();
    if (!strcmp(mode, "mkdir")) return mkdir_inside();
    if (!strcmp(mode, "write-sizes")) return write_sizes();
    if (!strcmp(mode, "dsync")) return dsync();
    if (!strcmp(mode, "msync-grown")) return msync_grown();
    if (!strcmp(mode, "copy-file-range")) return copy_range();
    if (!strcmp(mode, "exchange")) return exchange();
    if (!strcmp(mode, "outside") && argc > 3) return outside(argv[3]);
    if (!strcmp(mode, "moves") && argc > 3) return moves(argv[3]);
    if (!strcmp(mode, "fifo") && argc > 3) return fifo(argv[3]);
    return 2;
}
