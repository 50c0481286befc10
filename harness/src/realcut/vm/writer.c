/* crashlab's guest writer (the vm backend): executes a serialized WriterSpec
 * op list on a mapping of a file, exactly as the lab's child does, reporting
 * progress on the isa-debugcon port 0x402 (not lagged like the serial
 * console), and stops before op K: it says "K" and waits to be killed with
 * the whole machine.
 *
 * usage: writer FILE OPS.txt OPS.bin K
 * OPS.txt: "SIZE PAGE MAPPING(1 shared, 0 private) N", then N lines:
 *   S OFFSET LEN BLOBOFFSET | M START LEN SYNC(1 MS_SYNC, 0 MS_ASYNC) | F (fsync)
 *   | Y (fdatasync) | A ID | T LEN (ftruncate) | U (munmap)
 * OPS.bin: the stores' bytes.
 * Reports: "R" ready, "S<i>" op i started, "D<i>" done, "F<i> <errno>" op i
 * failed, "X <message>" the writer cannot run, "K" stopped (kill now).
 * Built with gcc -static by crashlab itself. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PORT 0x402

static void say(const char *fmt, ...) {
    char b[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    for (int i = 0; i < n && i < (int)sizeof b; i++) outb(b[i], PORT);
}

static void stop(void) {
    say("K\n");
    for (;;) pause();
}

static void fail(const char *what) {
    say("X %s: %s\n", what, strerror(errno));
    stop();
}

struct op {
    char kind;
    long a, b, c;
};

int main(int argc, char **argv) {
    if (ioperm(PORT, 1, 1) != 0) {
        perror("ioperm");
        for (;;) pause();
    }
    if (argc != 5) {
        errno = EINVAL;
        fail("usage: writer FILE OPS.txt OPS.bin K");
    }
    FILE *t = fopen(argv[2], "r");
    if (!t) fail(argv[2]);
    long size, page, shared, n;
    if (fscanf(t, "%ld %ld %ld %ld", &size, &page, &shared, &n) != 4) {
        errno = EINVAL;
        fail("ops header");
    }
    struct op *ops = calloc(n + 1, sizeof *ops);
    for (long i = 0; i < n; i++) {
        char k;
        if (fscanf(t, " %c", &k) != 1) {
            errno = EINVAL;
            fail("op kind");
        }
        ops[i].kind = k;
        int want = k == 'S' || k == 'M' ? 3 : (k == 'A' || k == 'T') ? 1 : 0;
        long v[3] = {0, 0, 0};
        for (int j = 0; j < want; j++)
            if (fscanf(t, "%ld", &v[j]) != 1) {
                errno = EINVAL;
                fail("op argument");
            }
        ops[i].a = v[0], ops[i].b = v[1], ops[i].c = v[2];
    }
    fclose(t);
    int bf = open(argv[3], O_RDONLY);
    if (bf < 0) fail(argv[3]);
    struct stat st;
    if (fstat(bf, &st) != 0) fail("stat blob");
    char *blob = malloc(st.st_size + 1);
    for (off_t got = 0; got < st.st_size;) {
        ssize_t r = read(bf, blob + got, st.st_size - got);
        if (r <= 0) fail("read blob");
        got += r;
    }
    close(bf);
    long k = atol(argv[4]);
    int fd = open(argv[1], O_RDWR);
    if (fd < 0) fail(argv[1]);
    char *map = mmap(NULL, size, PROT_READ | PROT_WRITE, shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) fail("mmap");
    say("R\n");
    for (long i = 0; i < n; i++) {
        if (i == k) stop();
        say("S%ld\n", i);
        int rc = 0;
        struct op *o = &ops[i];
        switch (o->kind) {
        case 'S': memcpy(map + o->a, blob + o->c, o->b); break;
        case 'M': rc = msync(map + o->a, o->b, o->c ? MS_SYNC : MS_ASYNC); break;
        case 'F': rc = fsync(fd); break;
        case 'Y': rc = fdatasync(fd); break;
        case 'A': break;
        case 'T': rc = ftruncate(fd, o->a); break;
        case 'U': rc = munmap(map, size); break;
        default: errno = EINVAL; fail("unknown op");
        }
        if (rc != 0) {
            say("F%ld %d\n", i, errno);
            stop();
        }
        say("D%ld\n", i);
    }
    stop();
}
