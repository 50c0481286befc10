/*
 * A writer for the source-attribution test of `run --writer --crash
 * power-loss` (harness/tests/external_attribution_cli.rs).
 *
 * `data` (made by the setup: page 0 starts with "count=0") holds a header
 * page and one page per record. For each record: the record's page is
 * written and msynced, the header's count is raised, the record is acked,
 * and only then is the header msynced: a power loss between the ack and
 * that msync loses the count the ack promised. The test finds the marked
 * lines in this source; keep each marker on the line of its call.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RECORDS 4

static char *map;
static long page;
volatile int calls;

__attribute__((noinline)) void flush_record(int i) {
    if (msync(map + (1 + i) * page, page, MS_SYNC) != 0) _exit(3); /* RECORD-SYNC-LINE */
    calls++;
}

__attribute__((noinline)) void sync_header(void) {
    if (msync(map, page, MS_SYNC) != 0) _exit(3); /* HEADER-SYNC-LINE */
    calls++;
}

__attribute__((noinline)) void print_ack(int i) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "rec %d\n", i);
    if (write(1, buf, n) != n) _exit(3); /* ACK-LINE */
    calls++;
}

int main(void) {
    page = sysconf(_SC_PAGESIZE);
    int fd = open("data", O_RDWR);
    if (fd < 0) return 3;
    map = mmap(NULL, (1 + RECORDS) * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return 3;
    for (int i = 0; i < RECORDS; i++) {
        snprintf(map + (1 + i) * page, 16, "rec %d", i + 1);
        flush_record(i);
        snprintf(map, 16, "count=%d", i + 1);
        print_ack(i + 1);
        sync_header();
    }
    return 0;
}
