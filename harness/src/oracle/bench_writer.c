/*
 * The oracle benchmark's writer (compiled at run time by oracle::bench):
 *
 *   bench_writer FILE OPS PAGES [rewrite]
 *
 * Maps PAGES pages of FILE MAP_SHARED and, OPS times, stores one byte into
 * a page (round robin) and msync(MS_SYNC)s that page. With `rewrite`, each
 * op stores into the page, writes a 16-byte log line to /dev/null (a
 * trapped call that syncs nothing), stores into the page again, and only
 * then msyncs it: every page is rewritten between its syncs. Prints the loop's
 * duration in nanoseconds (CLOCK_MONOTONIC), so process start-up and the
 * tracer's set-up are not part of the per-op figure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 4 && !(argc == 5 && !strcmp(argv[4], "rewrite"))) return 2;
    int rewrite = argc == 5;
    long page = sysconf(_SC_PAGESIZE);
    long ops = atol(argv[2]), pages = atol(argv[3]);
    int fd = open(argv[1], O_RDWR);
    if (fd < 0 || pages <= 0) return 3;
    char *p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 3;
    int null = open("/dev/null", O_WRONLY);
    if (null < 0) return 3;
    long base = getpid();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < ops; i++) {
        char *pg = p + (i % pages) * page;
        /* The pid varies the bytes from run to run: the runs share the
         * file, and a store of the byte already there changes nothing. */
        pg[(i / pages) % page] = (char)((i + base) | 1);
        if (rewrite) {
            if (write(null, "log line 0123456", 16) != 16) return 4;
            pg[(i / pages + 1) % page] = (char)((i + base) | 1);
        }
        if (msync(pg, page, MS_SYNC) != 0) {
            fprintf(stderr, "bench_writer: msync: %s\n", strerror(errno));
            return 4;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    return 0;
}
