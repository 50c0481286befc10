/*
 * The oracle benchmark's writer (compiled at run time by oracle::bench):
 *
 *   bench_writer FILE OPS PAGES
 *
 * Maps PAGES pages of FILE MAP_SHARED and, OPS times, stores one byte into
 * a page (round robin) and msync(MS_SYNC)s that page. Prints the loop's
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
    if (argc != 4) return 2;
    long page = sysconf(_SC_PAGESIZE);
    long ops = atol(argv[2]), pages = atol(argv[3]);
    int fd = open(argv[1], O_RDWR);
    if (fd < 0 || pages <= 0) return 3;
    char *p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return 3;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < ops; i++) {
        char *pg = p + (i % pages) * page;
        pg[(i / pages) % page] = (char)(i | 1);
        if (msync(pg, page, MS_SYNC) != 0) {
            fprintf(stderr, "bench_writer: msync: %s\n", strerror(errno));
            return 4;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    return 0;
}
