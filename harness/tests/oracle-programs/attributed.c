/*
 * A writer for the source-attribution tests (harness/tests/oracle_stacks.rs).
 *
 *   attributed FILE
 *
 * Maps FILE (at least 2 pages) MAP_SHARED, stores into page 0, msyncs it
 * from flush_record, stores into page 1 without a sync, and prints one ack
 * line per record from print_ack. The tests find the marked lines in this
 * source; keep each marker on the line of its call.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char *map;
static long page;
volatile int synced;

/* Not inlined, and the call is not a tail call: the stack keeps a frame here. */
__attribute__((noinline)) void flush_record(int i) {
    if (msync(map + i * page, page, MS_SYNC) != 0) _exit(3); /* MSYNC-LINE */
    synced++;
}

__attribute__((noinline)) void print_ack(int i) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "rec %d\n", i);
    if (write(1, buf, n) != n) _exit(3); /* ACK-LINE */
    synced++;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    page = sysconf(_SC_PAGESIZE);
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) return 3;
    map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return 3;
    memset(map, 'B', 16);
    flush_record(0);
    print_ack(1);
    memset(map + page, 'C', 16);
    print_ack(2);
    return 0;
}
