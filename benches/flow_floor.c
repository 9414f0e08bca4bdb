/* The flow-tracking floor: the least a flow-tracking sensor must do per packet, and nothing
 * more. Built by benches/compare.sh with gcc -O2 -pthread.
 *
 * Usage: flow_floor FILE THREADS
 *
 * THREADS threads read a classic pcap file (Ethernet, microseconds or nanoseconds, either
 * byte order) the way ksensor's workers do: each claims the next 1 MiB segment, reads it with
 * one pread (and the rest of the record that straddles its end with a second one), waits for
 * the walk of the segment before (record boundaries chain from segment to segment), walks its
 * records and hands the chain on. Then, for every packet of the segment, it reads the
 * addresses and ports behind Ethernet and 802.1Q tags (IPv4 or IPv6), orders the two ends
 * (both directions are one flow), hashes the 40-byte key, and looks it up in its own
 * open-addressing table (65 536 slots of 64 bytes, linear probing; a key not found within 8
 * slots replaces the one in its home slot), where it updates the flow's last-seen time and
 * packet count. Keys are found and their slots prefetched 32 at a time, then looked up: the
 * burst lookup of DPDK-style packet processors.
 *
 * A record whose captured length is impossible ends the run with one error line and exit
 * status 1 (the file is damaged; the floor has nothing to measure).
 *
 * What it leaves out, and a sensor cannot: reassembly, any protocol parsing (TLS, DNS, HTTP,
 * QUIC), flow expiry, one owner per flow (each thread's table sees every flow), results in
 * capture order, counters, reports. So its time is a lower bound for ksensor on the same file
 * with the same number of threads, not a target: the gap between them is ksensor's own work.
 *
 * Prints the packets walked and the lookups that found their flow. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEGMENT (1u << 20)
#define RECORD_HEADER 16u
#define MAX_RECORD (RECORD_HEADER + 262144u)
#define SLOTS (1u << 16)
#define MAX_PROBES 8
#define MAX_THREADS 64
#define BURST 32

struct slot {
    uint8_t key[40];
    uint64_t last_seen;
    uint64_t packets;
    uint64_t unused;
};

struct pending {
    uint8_t key[40];
    uint64_t hash;
    uint64_t ts;
};

/* One cache line each: a thread's counters must not share a line with another's fields. */
struct thread {
    pthread_t id;
    struct slot *table;
    uint8_t *buf;
    uint64_t packets, found;
    struct pending burst[BURST];
} __attribute__((aligned(64)));

static int fd;
static uint64_t file_len;
static uint64_t segments;
static int swapped;          /* the file's byte order is not ours */
static uint64_t frac_ns = 1000; /* nanoseconds per unit of the record's second field */
static _Atomic uint64_t next_segment;
static _Atomic uint64_t chain_segment; /* the segment whose walk may start */
static _Atomic uint64_t chain_offset;  /* file offset of that segment's first record */

static uint32_t u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? __builtin_bswap32(v) : v;
}

static uint64_t mix(uint64_t a, uint64_t b) {
    __uint128_t p = (__uint128_t)(a ^ 0x9e3779b97f4a7c15ull) * (b ^ 0xd6e8feb86659fd93ull);
    return (uint64_t)p ^ (uint64_t)(p >> 64);
}

/* The packet's flow key (ends ordered) and its hash; 0 if it is not IPv4 or IPv6. */
static int flow_key(const uint8_t *p, uint32_t len, uint8_t key[40], uint64_t *hash) {
    if (len < 14)
        return 0;
    uint32_t at = 14;
    uint16_t type = (uint16_t)(p[12] << 8 | p[13]);
    while (type == 0x8100 && len >= at + 4) {
        type = (uint16_t)(p[at + 2] << 8 | p[at + 3]);
        at += 4;
    }
    memset(key, 0, 40);
    uint32_t l4;
    if (type == 0x0800 && len >= at + 20) {
        memcpy(key, p + at + 12, 4);
        memcpy(key + 16, p + at + 16, 4);
        key[36] = p[at + 9];
        l4 = at + (p[at] & 15u) * 4;
    } else if (type == 0x86dd && len >= at + 40) {
        memcpy(key, p + at + 8, 16);
        memcpy(key + 16, p + at + 24, 16);
        key[36] = p[at + 6];
        l4 = at + 40;
    } else {
        return 0;
    }
    if (len >= l4 + 4)
        memcpy(key + 32, p + l4, 4);
    /* memcmp's order (big-endian words), without a call per packet */
    uint64_t a[2], b[2];
    uint16_t pa, pb;
    memcpy(a, key, 16);
    memcpy(b, key + 16, 16);
    memcpy(&pa, key + 32, 2);
    memcpy(&pb, key + 34, 2);
    for (int i = 0; i < 2; i++) {
        a[i] = __builtin_bswap64(a[i]);
        b[i] = __builtin_bswap64(b[i]);
    }
    pa = __builtin_bswap16(pa);
    pb = __builtin_bswap16(pb);
    if (a[0] > b[0] || (a[0] == b[0] && (a[1] > b[1] || (a[1] == b[1] && pa > pb)))) {
        uint8_t addr[16], port[2];
        memcpy(addr, key, 16);
        memcpy(key, key + 16, 16);
        memcpy(key + 16, addr, 16);
        memcpy(port, key + 32, 2);
        memcpy(key + 32, key + 34, 2);
        memcpy(key + 34, port, 2);
    }
    uint64_t w[5];
    memcpy(w, key, 40);
    *hash = mix(mix(w[0] ^ w[1], w[2] ^ w[3]), w[4]);
    return 1;
}

static void lookup(struct thread *t, const struct pending *q) {
    uint32_t home = (uint32_t)q->hash & (SLOTS - 1);
    struct slot *s = &t->table[home];
    for (uint32_t probe = 0; probe < MAX_PROBES; probe++) {
        s = &t->table[(home + probe) & (SLOTS - 1)];
        if (s->packets == 0)
            break; /* a new flow: it takes this slot */
        if (memcmp(s->key, q->key, 40) == 0) {
            s->last_seen = q->ts;
            s->packets++;
            t->found++;
            return;
        }
    }
    if (s->packets != 0)
        s = &t->table[home]; /* no room near home: the new flow replaces the one there */
    memcpy(s->key, q->key, 40);
    s->last_seen = q->ts;
    s->packets = 1;
}

/* Looks up the first n keys of the thread's burst. */
static void lookup_burst(struct thread *t, uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        lookup(t, &t->burst[i]);
}

/* Makes buf[..need] hold the file's bytes from `start` (never past its end); returns whether
 * it does. */
static int have(struct thread *t, uint64_t start, uint64_t *got, uint64_t need) {
    if (need <= *got)
        return 1;
    if (start + need > file_len)
        return 0;
    ssize_t more = pread(fd, t->buf + *got, need - *got, (off_t)(start + *got));
    if (more < 0) {
        perror("flow_floor: pread");
        exit(1);
    }
    *got += (uint64_t)more;
    return need <= *got;
}

/* The captured length of the record at buf[at], checked. */
static uint64_t captured_at(const struct thread *t, uint64_t start, uint64_t at) {
    uint32_t captured = u32(t->buf + at + 8);
    if (captured > MAX_RECORD - RECORD_HEADER) {
        fprintf(stderr, "flow_floor: corrupt record at offset %llu\n", (unsigned long long)(start + at));
        exit(1);
    }
    return captured;
}

static void wait_for_chain(uint64_t k) {
    while (atomic_load_explicit(&chain_segment, memory_order_acquire) != k) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#else
        sched_yield();
#endif
    }
}

static void *run(void *arg) {
    struct thread *t = arg;
    for (;;) {
        uint64_t k = atomic_fetch_add(&next_segment, 1);
        if (k >= segments)
            return NULL;
        uint64_t start = 24 + k * SEGMENT;
        uint64_t end = start + SEGMENT < file_len ? start + SEGMENT : file_len;
        uint64_t got = 0;
        have(t, start, &got, end - start);
        wait_for_chain(k);
        /* The walk: the records that start in this segment, the last one read whole. */
        uint64_t first = atomic_load_explicit(&chain_offset, memory_order_relaxed) - start;
        uint64_t at = first;
        while (start + at < end && have(t, start, &got, at + RECORD_HEADER)) {
            uint64_t next = at + RECORD_HEADER + captured_at(t, start, at);
            if (!have(t, start, &got, next))
                break; /* the file ends inside this record */
            at = next;
        }
        atomic_store_explicit(&chain_offset, start + at, memory_order_relaxed);
        atomic_store_explicit(&chain_segment, k + 1, memory_order_release);
        uint64_t stop = at;
        uint32_t n = 0;
        for (at = first; at < stop;) {
            uint64_t captured = captured_at(t, start, at);
            t->packets++;
            struct pending *q = &t->burst[n];
            if (flow_key(t->buf + at + RECORD_HEADER, (uint32_t)captured, q->key, &q->hash)) {
                __builtin_prefetch(&t->table[(uint32_t)q->hash & (SLOTS - 1)], 1);
                q->ts = (uint64_t)u32(t->buf + at) * 1000000000ull + u32(t->buf + at + 4) * frac_ns;
                if (++n == BURST) {
                    lookup_burst(t, n);
                    n = 0;
                }
            }
            at += RECORD_HEADER + captured;
        }
        lookup_burst(t, n);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE THREADS\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[2]);
    if (threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "flow_floor: THREADS must be 1 to %d\n", MAX_THREADS);
        return 2;
    }
    fd = open(argv[1], O_RDONLY);
    struct stat st;
    uint8_t header[24];
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror("flow_floor");
        return 1;
    }
    if (pread(fd, header, 24, 0) != 24) {
        fprintf(stderr, "flow_floor: %s is not a classic pcap file\n", argv[1]);
        return 1;
    }
    uint32_t magic;
    memcpy(&magic, header, 4);
    if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u)
        swapped = 1;
    magic = swapped ? __builtin_bswap32(magic) : magic;
    if (magic == 0xa1b23c4du)
        frac_ns = 1;
    else if (magic != 0xa1b2c3d4u) {
        fprintf(stderr, "flow_floor: %s is not a classic pcap file\n", argv[1]);
        return 1;
    }
    if (u32(header + 20) != 1) {
        fprintf(stderr, "flow_floor: %s is not Ethernet\n", argv[1]);
        return 1;
    }
    file_len = (uint64_t)st.st_size;
    segments = (file_len - 24 + SEGMENT - 1) / SEGMENT;
    atomic_store(&chain_offset, 24);
    static struct thread pool[MAX_THREADS];
    size_t table_bytes = SLOTS * sizeof(struct slot);
    for (int i = 0; i < threads; i++) {
        struct thread *t = &pool[i];
        t->table = aligned_alloc(1u << 21, table_bytes);
        t->buf = malloc(SEGMENT + MAX_RECORD);
        if (t->table == NULL || t->buf == NULL) {
            fprintf(stderr, "flow_floor: out of memory\n");
            return 1;
        }
        madvise(t->table, table_bytes, MADV_HUGEPAGE);
        memset(t->table, 0, table_bytes);
    }
    for (int i = 0; i < threads; i++)
        pthread_create(&pool[i].id, NULL, run, &pool[i]);
    uint64_t packets = 0, found = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(pool[i].id, NULL);
        packets += pool[i].packets;
        found += pool[i].found;
    }
    printf("%llu packets, %llu lookups found their flow\n", (unsigned long long)packets,
           (unsigned long long)found);
    return 0;
}
