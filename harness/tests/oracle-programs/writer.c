/*
 * Writers for the durability oracle's tests (harness/tests/oracle.rs).
 *
 *   writer MODE FILE
 *
 * Every mode maps FILE (which the test fills with 'A' pages) MAP_SHARED,
 * stores, syncs, and prints one ack line per completed step on stdout with
 * write(2) (unbuffered, so a kill leaves exactly the acks printed so far).
 * Exit codes: 0 done, 2 usage, 3 a syscall failed unexpectedly.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long page;
static char *map;
static int fd;

static void ack(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    buf[n] = '\n';
    if (write(1, buf, n + 1) != n + 1) _exit(3);
}

static void die(const char *what) {
    dprintf(2, "writer: %s: %s\n", what, strerror(errno));
    _exit(3);
}

static char *pg(int i) { return map + i * page; }

static void map_pages(const char *path, int pages) {
    fd = open(path, O_RDWR);
    if (fd < 0) die("open");
    map = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
}

static void ms(int first, int count, int flags) {
    if (msync(pg(first), count * page, flags) != 0) die("msync");
}

/* 4 stores, 2 MS_SYNC, 1 MS_ASYNC. */
static int msync4(const char *path) {
    map_pages(path, 4);
    for (int i = 0; i < 4; i++) memset(pg(i), 'B', page);
    ms(0, 1, MS_SYNC);
    ack("synced 0");
    ms(2, 1, MS_SYNC);
    ack("synced 2");
    ms(1, 1, MS_ASYNC);
    ack("async 1");
    return 0;
}

/* Grow 2 -> 5 pages, store, fsync, then store again without syncing. */
static int fsync_grow(const char *path) {
    fd = open(path, O_RDWR);
    if (fd < 0) die("open");
    if (ftruncate(fd, 5 * page) != 0) die("ftruncate");
    map = mmap(NULL, 5 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    for (int i = 0; i < 5; i++) memset(pg(i), 'C', page);
    if (fsync(fd) != 0) die("fsync");
    ack("fsynced");
    memset(pg(0), 'D', page);
    ack("stored D");
    return 0;
}

/* msync of an unmapped page, and of a range ending in a hole: ENOMEM. */
static int msync_fail(const char *path) {
    map_pages(path, 4);
    for (int i = 0; i < 4; i++) memset(pg(i), 'B', page);
    if (munmap(pg(3), page) != 0) die("munmap");
    if (msync(pg(3), page, MS_SYNC) == 0 || errno != ENOMEM) die("msync of a hole did not fail with ENOMEM");
    ack("enomem hole");
    if (msync(pg(0), 4 * page, MS_SYNC) == 0 || errno != ENOMEM) die("msync across a hole did not fail with ENOMEM");
    ack("enomem span");
    return 0;
}

/* Three msyncs of pages 0, 1, 2, each acked after it returns. */
static int seq3(const char *path) {
    map_pages(path, 4);
    for (int i = 0; i < 3; i++) {
        memset(pg(i), 'B', page);
        ms(i, 1, MS_SYNC);
        ack("ack %d", i + 1);
    }
    return 0;
}

static volatile int thread_done;

static void *syncer(void *arg) {
    (void)arg;
    ms(1, 1, MS_SYNC);
    ack("thread synced");
    __atomic_store_n(&thread_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* The second thread syncs page 1 while the main thread keeps storing into
 * page 0 (so the tracer must stop a running thread to copy). */
static int thread(const char *path) {
    map_pages(path, 4);
    memset(pg(1), 'B', page);
    pthread_t t;
    if (pthread_create(&t, NULL, syncer, NULL) != 0) die("pthread_create");
    unsigned long n = 0;
    while (!__atomic_load_n(&thread_done, __ATOMIC_SEQ_CST)) pg(0)[n++ % page] = 'M';
    pthread_join(t, NULL);
    ack("joined");
    return 0;
}

/* A forked child stores into and syncs pages 2-3; the parent waits. */
static int forked(const char *path) {
    map_pages(path, 4);
    memset(pg(2), 'B', page);
    pid_t c = fork();
    if (c < 0) die("fork");
    if (c == 0) {
        memset(pg(3), 'C', page);
        ms(2, 2, MS_SYNC);
        ack("child synced");
        _exit(0);
    }
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) die("child failed");
    ack("parent done");
    return 0;
}

/* A child that never ends, and two msyncs in the parent: a crash point
 * between them must kill and reap both. */
static int fork_sleeper(const char *path) {
    map_pages(path, 4);
    pid_t c = fork();
    if (c < 0) die("fork");
    if (c == 0) {
        for (;;) pause();
    }
    ack("child %d", (int)c);
    memset(pg(0), 'B', page);
    ms(0, 1, MS_SYNC);
    ack("ack 1");
    memset(pg(1), 'B', page);
    ms(1, 1, MS_SYNC);
    ack("ack 2");
    kill(c, SIGKILL);
    waitpid(c, NULL, 0);
    return 0;
}

/* Store and msync page 0 forever, acking each. */
static __attribute__((noreturn)) void forever(const char *path) {
    map_pages(path, 1);
    for (unsigned long i = 0;; i++) {
        pg(0)[i % page] = 'F';
        ms(0, 1, MS_SYNC);
        ack("ack %lu", i);
    }
}

/* A child that only sleeps, and page 0 stored and msynced forever: every
 * msync stops the child too, so a cancel often lands while the tracer waits
 * for that stop. */
static __attribute__((noreturn)) void forever_with_child(const char *path) {
    map_pages(path, 1);
    pid_t c = fork();
    if (c < 0) die("fork");
    if (c == 0) {
        for (;;) pause();
    }
    forever(path);
}

static volatile int churn_stop;

static void *churner(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&churn_stop, __ATOMIC_SEQ_CST)) {
        char *m = mmap(NULL, 4 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) die("churn mmap");
        m[page] = 'Q';
        if (munmap(m, 4 * page) != 0) die("churn munmap");
    }
    return NULL;
}

/* One thread maps and unmaps the file in a loop while the main thread stores
 * into page 0 and msyncs it 50 times: the address space keeps changing under
 * the msyncs. */
static int churn(const char *path) {
    map_pages(path, 4);
    pthread_t t;
    if (pthread_create(&t, NULL, churner, NULL) != 0) die("pthread_create");
    for (int i = 0; i < 50; i++) {
        memset(pg(0), 'B', page);
        ms(0, 1, MS_SYNC);
    }
    __atomic_store_n(&churn_stop, 1, __ATOMIC_SEQ_CST);
    pthread_join(t, NULL);
    ack("churned");
    return 0;
}

/* msync, vfork + exec of a child, msync again. */
static int vforked(const char *path) {
    map_pages(path, 4);
    memset(pg(0), 'B', page);
    ms(0, 1, MS_SYNC);
    pid_t c = vfork();
    if (c < 0) die("vfork");
    if (c == 0) {
        char *argv[] = {"true", NULL};
        execv("/bin/true", argv);
        _exit(127);
    }
    int st;
    if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0) die("vfork child failed");
    memset(pg(1), 'B', page);
    ms(1, 1, MS_SYNC);
    ack("vforked");
    return 0;
}

static int uring(void) {
    char params[512];
    memset(params, 0, sizeof params);
    long r = syscall(SYS_io_uring_setup, 4, params);
    ack("io_uring_setup returned %ld", r);
    return 0;
}

/* The SIGABRT handler of `appends`: prints the file's size when it runs,
 * with async-signal-safe calls only, and returns. */
static void on_abort(int sig) {
    (void)sig;
    struct stat st;
    char buf[64] = "handler size=";
    size_t n = strlen(buf);
    if (fstat(fd, &st) != 0) _exit(3);
    char digits[24];
    int d = 0;
    long v = (long)st.st_size;
    do { digits[d++] = (char)('0' + v % 10); v /= 10; } while (v > 0);
    while (d > 0) buf[n++] = digits[--d];
    buf[n++] = '\n';
    if (write(1, buf, n) != (ssize_t)n) _exit(3);
}

/* Three 1-byte appends to FILE with write(2), an ack after each; with
 * `handler`, a SIGABRT handler that prints the size and returns. No core
 * dump (a limit of 1 byte also stops a piped core_pattern). */
static int appends(const char *path, int handler) {
    struct rlimit one = {1, 1};
    setrlimit(RLIMIT_CORE, &one);
    if (handler) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_abort;
        if (sigaction(SIGABRT, &sa, NULL) != 0) die("sigaction");
    }
    fd = open(path, O_WRONLY | O_APPEND);
    if (fd < 0) die("open");
    for (int i = 0; i < 3; i++) {
        if (write(fd, "x", 1) != 1) die("write");
        ack("wrote %d", i);
    }
    return 0;
}

/* Untraced syscalls work and traced ones return normally (no ENOSYS). */
/* Page 0: 'B', 'C' (each acked), msync, 'D'; page 1: 'X' (acked), 'Y'. */
static int versions(const char *path) {
    map_pages(path, 2);
    memset(pg(0), 'B', page);
    ack("B");
    memset(pg(0), 'C', page);
    ack("C");
    ms(0, 1, MS_SYNC);
    memset(pg(0), 'D', page);
    ack("D");
    memset(pg(1), 'X', page);
    ack("X");
    memset(pg(1), 'Y', page);
    return 0;
}

/* eio-sync: page 0 stored ('B') and msynced; the result of that msync and
 * of a retry are acked ("first 0" / "first EIO"); with REWRITE, page 0 is
 * stored again with the same bytes before the retry. Then page 1 ('C') is
 * msynced. */
static int eio_msync(const char *path, int rewrite) {
    map_pages(path, 2);
    memset(pg(0), 'B', page);
    int r = msync(pg(0), page, MS_SYNC);
    ack("first %s", r == 0 ? "0" : errno == EIO ? "EIO" : "other");
    if (rewrite) memset(pg(0), 'B', page);
    r = msync(pg(0), page, MS_SYNC);
    ack("retry %s", r == 0 ? "0" : errno == EIO ? "EIO" : "other");
    memset(pg(1), 'C', page);
    ms(1, 1, MS_SYNC);
    return 0;
}

/* eio-sync through a descriptor: page 0 written with pwrite ('B'), fsync
 * and a retried fsync acked; then exit 7 if the first one failed (a writer
 * that stops on EIO). */
static int eio_fsync(const char *path) {
    int f = open(path, O_RDWR);
    if (f < 0) die("open");
    char buf[4096];
    memset(buf, 'B', sizeof buf);
    if (pwrite(f, buf, page < 4096 ? page : 4096, 0) < 0) die("pwrite");
    int first = fsync(f);
    ack("first %s", first == 0 ? "0" : errno == EIO ? "EIO" : "other");
    int r = fsync(f);
    ack("retry %s", r == 0 ? "0" : errno == EIO ? "EIO" : "other");
    return first == 0 ? 0 : 7;
}

/* 16 pages: before each of 12 acks, one store into one page (pages 0, 3,
 * 3, 5, 7, 7, 9, 11, 13, 15, 15, 15), each store a new byte value. */
static int versions16(const char *path) {
    static const int pages[12] = {0, 3, 3, 5, 7, 7, 9, 11, 13, 15, 15, 15};
    map_pages(path, 16);
    for (int i = 0; i < 12; i++) {
        pg(pages[i])[i] = 'a' + i;
        ack("stored %d", pages[i]);
    }
    return 0;
}

/* Store an ever-growing counter into page 0 for 400 ms of wall time with
 * no system call (the clock is read through the vDSO), then exit. */
static int spin_versions(const char *path) {
    map_pages(path, 1);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    volatile unsigned long *counter = (volatile unsigned long *)pg(0);
    unsigned long n = 0;
    do {
        for (int i = 0; i < 1000; i++) *counter = ++n;
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) < 400000000L);
    return 0;
}

static int plain(const char *path) {
    if (getpid() != (pid_t)syscall(SYS_getpid)) die("getpid");
    fd = open(path, O_RDWR);
    if (fd < 0) die("open");
    char c = 'Z';
    if (pwrite(fd, &c, 1, 0) != 1) die("pwrite");
    if (fsync(fd) != 0) die("fsync");
    if (fdatasync(fd) != 0) die("fdatasync");
    if (sync_file_range(fd, 0, page, SYNC_FILE_RANGE_WRITE) != 0) die("sync_file_range");
    if (syncfs(fd) != 0) die("syncfs");
    map = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    void *moved = mremap(map, page, page, 0);
    if (moved == MAP_FAILED) die("mremap");
    map = moved;
    ms(0, 1, MS_ASYNC);
    if (munmap(map, page) != 0) die("munmap");
    if (ftruncate(fd, 2 * page) != 0) die("ftruncate");
    ack("ok");
    return 0;
}

int main(int argc, char **argv) {
    page = sysconf(_SC_PAGESIZE);
    if (argc < 2) return 2;
    const char *mode = argv[1], *path = argc > 2 ? argv[2] : "";
    if (!strcmp(mode, "msync4")) return msync4(path);
    if (!strcmp(mode, "fsync-grow")) return fsync_grow(path);
    if (!strcmp(mode, "msync-fail")) return msync_fail(path);
    if (!strcmp(mode, "seq3")) return seq3(path);
    if (!strcmp(mode, "thread")) return thread(path);
    if (!strcmp(mode, "fork")) return forked(path);
    if (!strcmp(mode, "fork-sleeper")) return fork_sleeper(path);
    if (!strcmp(mode, "forever")) forever(path);
    if (!strcmp(mode, "forever-with-child")) forever_with_child(path);
    if (!strcmp(mode, "io_uring")) return uring();
    if (!strcmp(mode, "churn")) return churn(path);
    if (!strcmp(mode, "vfork")) return vforked(path);
    if (!strcmp(mode, "plain")) return plain(path);
    if (!strcmp(mode, "versions")) return versions(path);
    if (!strcmp(mode, "eio-msync")) return eio_msync(path, 0);
    if (!strcmp(mode, "eio-msync-rewrite")) return eio_msync(path, 1);
    if (!strcmp(mode, "eio-fsync")) return eio_fsync(path);
    if (!strcmp(mode, "versions16")) return versions16(path);
    if (!strcmp(mode, "spin-versions")) return spin_versions(path);
    if (!strcmp(mode, "appends")) return appends(path, 0);
    if (!strcmp(mode, "appends-handler")) return appends(path, 1);
    if (!strcmp(mode, "exit")) return atoi(path);
    return 2;
}
