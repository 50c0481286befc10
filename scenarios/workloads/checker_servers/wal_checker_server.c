/*
 * A checker server (crashlab workload protocol v1.1) for the `wal` example
 * workloads (`crashlab-workload wal*`): the same judgement as
 * `crashlab-workload wal checker`, for every directory of a job in one
 * process.
 *
 *     cc -O2 -o wal_checker_server wal_checker_server.c
 *     crashlab run --writer 'crashlab-workload wal writer' \
 *         --setup 'crashlab-workload wal setup' \
 *         --checker-server ./wal_checker_server --crash power-loss --tear 512
 *
 * One request per line on stdin: STATE_DIR<TAB>ACKS_PATH. One answer per
 * line on stdout, flushed: `ok`, or `violation REASON`. Paths come in the
 * request: the working directory is not the state directory. Anything
 * that goes wrong ends the server (exit 2, the reason on stderr): crashlab
 * reports a checker malfunction, never a pass.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_NAME "wal.log"
#define MAGIC 0x3157414Cu
#define HEADER 16
#define MAX_PAYLOAD 2048

static void die(const char *what, const char *path) {
    fprintf(stderr, "wal_checker_server: %s %s: %s\n", what, path, strerror(errno));
    exit(2);
}

/* The whole file; a missing file reads as empty. */
static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    *len = 0;
    if (!f) {
        if (errno == ENOENT) return calloc(1, 1);
        die("cannot open", path);
    }
    size_t cap = 1 << 16;
    unsigned char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + *len, 1, cap - *len, f)) > 0) {
        *len += n;
        if (*len == cap) buf = realloc(buf, cap *= 2);
    }
    if (ferror(f)) die("cannot read", path);
    fclose(f);
    return buf;
}

/* The little-endian u32 at off; bytes past the end read as zeros. */
static uint32_t u32_at(const unsigned char *b, size_t len, size_t off) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | (off + i < len ? b[off + i] : 0);
    return v;
}

static uint32_t crc32_update(uint32_t crc, const unsigned char *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++) crc = crc & 1 ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    return crc;
}

/* The value after the first `key` of an ack line; -1 if none. */
static long long ack_field(const char *line, const char *key) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", line);
    char *save = NULL;
    for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (strcmp(w, key) == 0) {
            char *v = strtok_r(NULL, " \t", &save);
            return v ? strtoll(v, NULL, strcmp(key, "crc") == 0 ? 16 : 10) : -1;
        }
    }
    return -1;
}

/* Judge one state directory; the answer goes to stdout. */
static void check(const char *dir, const char *acks_path) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, FILE_NAME);
    size_t len;
    unsigned char *data = read_all(path, &len);
    static uint64_t valid_len[1 << 16], valid_crc[1 << 16];
    size_t valid = 0, off = 0;
    while (valid < (1 << 16) && u32_at(data, len, off) == MAGIC) {
        uint32_t seq = u32_at(data, len, off + 4), n = u32_at(data, len, off + 8), crc = u32_at(data, len, off + 12);
        if (seq != valid || n > MAX_PAYLOAD) break;
        unsigned char seq_le[4] = {seq & 0xff, seq >> 8 & 0xff, seq >> 16 & 0xff, seq >> 24};
        uint32_t c = crc32_update(0xFFFFFFFFu, seq_le, 4);
        for (size_t i = 0; i < n; i++) {
            unsigned char b = off + HEADER + i < len ? data[off + HEADER + i] : 0;
            c = crc32_update(c, &b, 1);
        }
        if (~c != crc) break; /* a torn last record */
        valid_len[valid] = n;
        valid_crc[valid] = crc;
        valid++;
        off += HEADER + n;
    }
    FILE *acks = fopen(acks_path, "r");
    if (!acks) die("cannot open", acks_path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    const char *verdict = "ok";
    char reason[512];
    while (strcmp(verdict, "ok") == 0 && (got = getline(&line, &cap, acks)) > 0) {
        line[strcspn(line, "\n")] = 0;
        long long seq = ack_field(line, "rec"), n = ack_field(line, "len"), crc = ack_field(line, "crc");
        if (seq < 0 || n < 0 || crc < 0) {
            fprintf(stderr, "wal_checker_server: unreadable ack line `%s`\n", line);
            exit(2);
        }
        if ((size_t)seq >= valid) {
            snprintf(reason, sizeof reason, "acked record %lld is missing: %s holds %zu valid records (%zu bytes)",
                     seq, FILE_NAME, valid, len);
            verdict = reason;
        } else if (valid_len[seq] != (uint64_t)n || valid_crc[seq] != (uint64_t)crc) {
            snprintf(reason, sizeof reason,
                     "acked record %lld differs: len/crc (%" PRIu64 ", %" PRIu64 ") in the log, (%lld, %lld) acked", seq,
                     valid_len[seq], valid_crc[seq], n, crc);
            verdict = reason;
        }
    }
    fclose(acks);
    free(line);
    free(data);
    if (strcmp(verdict, "ok") == 0) {
        puts("ok");
    } else {
        printf("violation %s\n", verdict);
    }
    fflush(stdout);
}

int main(void) {
    char *request = NULL;
    size_t cap = 0;
    while (getline(&request, &cap, stdin) > 0) {
        request[strcspn(request, "\n")] = 0;
        char *tab = strchr(request, '\t');
        if (!tab) {
            fprintf(stderr, "wal_checker_server: the request `%s` is not DIR<TAB>ACKS\n", request);
            return 2;
        }
        *tab = 0;
        check(request, tab + 1);
    }
    free(request);
    return 0;
}
