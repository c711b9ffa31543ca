// Memory read bandwidth of this machine, for stating decode speed as a share of it.
//
// Every thread reads its own share of one buffer far larger than the last-level cache, in
// several ways, and the best is reported:
//   plain        AVX2 loads, one sequential stream per thread (what a simple probe measures)
//   prefetch D   the same with software prefetches D bytes ahead (several distances, L1 and L2 hints)
//   nt           non-temporal streaming loads (vmovntdqa) with prefetchnta
//   streams S    S sequential streams per thread read in lock step (how a mat-vec reads S weight
//                rows at once), with prefetches: more misses in flight per core
// Each figure is the median of the passes of all threads together (wall clock from a common
// start to the last thread's end), in GB/s (10⁹ bytes).
//
// usage: bandwidth [MiB per thread, default 512] [threads, default 2] [passes, default 5] [--json]
// Build: cc -O2 -pthread Benchmarks/bandwidth/bandwidth.c -o /tmp/bandwidth (Benchmarks/bandwidth/run.sh)
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define AVX2 __attribute__((target("avx2")))

typedef struct {
    int method, arg;  // method id and its parameter (distance or stream count)
} variant;

enum { PLAIN, PREFETCH_T0, PREFETCH_T2, NT, STREAMS };
static const char *names[] = {"plain", "prefetch T0", "prefetch T2", "nt", "streams"};

typedef struct {
    const uint8_t *base;
    size_t bytes;
    int tid;
} share;

static int n_threads, n_passes;
static variant current;
static share *shares;
static pthread_barrier_t start_bar, end_bar;
static double *ends;
static atomic_uint_fast64_t sink;

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

AVX2 static uint64_t fold(__m256i a) {
    const __m128i x = _mm_xor_si128(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    return (uint64_t)_mm_cvtsi128_si64(x) ^ (uint64_t)_mm_extract_epi64(x, 1);
}

// One 64-byte line: two 32-byte loads folded into two accumulators.
#define LINE(p, a0, a1)                                                  \
    do {                                                                 \
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p)));      \
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p) + 1));  \
    } while (0)

AVX2 static uint64_t read_plain(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 128) {
        LINE(p + i, a0, a1);
        LINE(p + i + 64, a2, a3);
    }
    return fold(_mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3)));
}

AVX2 static uint64_t read_prefetch(const uint8_t *p, size_t n, size_t dist, int l2) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 128) {
        if (l2) {
            _mm_prefetch((const char *)p + i + dist, _MM_HINT_T1);
            _mm_prefetch((const char *)p + i + dist + 64, _MM_HINT_T1);
        } else {
            _mm_prefetch((const char *)p + i + dist, _MM_HINT_T0);
            _mm_prefetch((const char *)p + i + dist + 64, _MM_HINT_T0);
        }
        LINE(p + i, a0, a1);
        LINE(p + i + 64, a2, a3);
    }
    return fold(_mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3)));
}

AVX2 static uint64_t read_nt(const uint8_t *p, size_t n) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < n; i += 128) {
        _mm_prefetch((const char *)p + i + 1024, _MM_HINT_NTA);
        _mm_prefetch((const char *)p + i + 1024 + 64, _MM_HINT_NTA);
        a0 = _mm256_xor_si256(a0, _mm256_stream_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_stream_load_si256((const __m256i *)(p + i) + 1));
        a2 = _mm256_xor_si256(a2, _mm256_stream_load_si256((const __m256i *)(p + i) + 2));
        a3 = _mm256_xor_si256(a3, _mm256_stream_load_si256((const __m256i *)(p + i) + 3));
    }
    return fold(_mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3)));
}

// s streams of n / s bytes each, one line of each per step, prefetching 512 bytes ahead in each.
AVX2 static uint64_t read_streams(const uint8_t *p, size_t n, int s) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    const size_t len = n / (size_t)s & ~(size_t)63;
    for (size_t i = 0; i < len; i += 64) {
        for (int k = 0; k < s; k++) {
            const uint8_t *q = p + (size_t)k * len + i;
            _mm_prefetch((const char *)q + 512, _MM_HINT_T0);
            LINE(q, a0, a1);
        }
    }
    return fold(_mm256_xor_si256(a0, a1));
}

// Reads one thread's share with variant v.
static uint64_t read_share(const share *sh, variant v) {
    switch (v.method) {
    case PLAIN: return read_plain(sh->base, sh->bytes);
    case PREFETCH_T0: return read_prefetch(sh->base, sh->bytes, (size_t)v.arg, 0);
    case PREFETCH_T2: return read_prefetch(sh->base, sh->bytes, (size_t)v.arg, 1);
    case NT: return read_nt(sh->base, sh->bytes);
    default: return read_streams(sh->base, sh->bytes, v.arg);
    }
}

static void *worker(void *arg) {
    share *sh = arg;
    for (;;) {
        pthread_barrier_wait(&start_bar);
        if (current.method < 0) return NULL;
        atomic_fetch_xor(&sink, read_share(sh, current));
        ends[sh->tid] = now();
        pthread_barrier_wait(&end_bar);
    }
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Median GB/s over the passes of one variant (thread 0 is the caller).
static double measure(variant v, size_t total) {
    double gbs[64];
    current = v;
    for (int p = 0; p < n_passes; p++) {
        const double t0 = now();
        pthread_barrier_wait(&start_bar);
        // The caller is thread 0.
        atomic_fetch_xor(&sink, read_share(&shares[0], v));
        ends[0] = now();
        pthread_barrier_wait(&end_bar);
        double last = ends[0];
        for (int t = 1; t < n_threads; t++) last = ends[t] > last ? ends[t] : last;
        gbs[p] = (double)total / (last - t0) * 1e-9;
    }
    qsort(gbs, (size_t)n_passes, sizeof(double), cmp_double);
    return gbs[n_passes / 2];
}

int main(int argc, char **argv) {
    int json = 0;
    long mib = 512;
    n_threads = 2;
    n_passes = 5;
    int pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) { json = 1; continue; }
        char *end;
        const long x = strtol(argv[i], &end, 10);
        if (*end || x <= 0) {
            fprintf(stderr, "bandwidth: bad argument '%s' (usage: bandwidth [MiB per thread] [threads] [passes] [--json])\n", argv[i]);
            return 2;
        }
        if (pos == 0) mib = x; else if (pos == 1) n_threads = (int)x; else n_passes = (int)x;
        pos++;
    }
    if (mib > 65536 || n_threads > 64 || n_passes > 64) {
        fprintf(stderr, "bandwidth: at most 65536 MiB per thread, 64 threads, 64 passes\n");
        return 2;
    }
    if (!__builtin_cpu_supports("avx2")) {
        fprintf(stderr, "bandwidth: this probe needs AVX2\n");
        return 1;
    }
    const size_t per = (size_t)mib << 20, total = per * (size_t)n_threads;
    uint8_t *buf = NULL;
    if (posix_memalign((void **)&buf, 1 << 21, total) != 0) {
        fprintf(stderr, "bandwidth: cannot allocate %zu MiB\n", total >> 20);
        return 1;
    }
    madvise(buf, total, MADV_HUGEPAGE);
    for (size_t i = 0; i < total; i += 4096) memset(buf + i, (int)(i >> 12), 4096);

    shares = calloc((size_t)n_threads, sizeof(share));
    ends = calloc((size_t)n_threads, sizeof(double));
    pthread_t th[64];
    pthread_barrier_init(&start_bar, NULL, (unsigned)n_threads);
    pthread_barrier_init(&end_bar, NULL, (unsigned)n_threads);
    for (int t = 0; t < n_threads; t++) shares[t] = (share){buf + (size_t)t * per, per, t};
    for (int t = 1; t < n_threads; t++) pthread_create(&th[t], NULL, worker, &shares[t]);

    const variant variants[] = {
        {PLAIN, 0},          {PREFETCH_T0, 512}, {PREFETCH_T0, 1024}, {PREFETCH_T0, 2048}, {PREFETCH_T0, 4096},
        {PREFETCH_T2, 2048}, {PREFETCH_T2, 4096}, {PREFETCH_T2, 8192}, {NT, 0},           {STREAMS, 2},
        {STREAMS, 4},        {STREAMS, 8},        {STREAMS, 16},
    };
    const int nv = (int)(sizeof variants / sizeof variants[0]);
    measure(variants[0], total);  // warm-up: page tables, clocks
    const double w0 = now(), c0 = cpu_now();
    double best = 0;
    int best_i = 0;
    double results[32];
    for (int i = 0; i < nv; i++) {
        results[i] = measure(variants[i], total);
        if (results[i] > best) { best = results[i]; best_i = i; }
        if (!json) {
            char label[64];
            if (variants[i].arg) snprintf(label, sizeof label, "%s %d", names[variants[i].method], variants[i].arg);
            else snprintf(label, sizeof label, "%s", names[variants[i].method]);
            printf("%-20s %6.1f GB/s\n", label, results[i]);
        }
    }
    // Threads that had to share their cores with other programs read less: say so.
    const double busy = (cpu_now() - c0) / (now() - w0) / n_threads;
    if (busy < 0.9)
        fprintf(stderr, "bandwidth: warning: the threads ran only %.0f%% of the time (other programs on the cores); "
                        "the figures are low\n", 100 * busy);
    current.method = -1;
    pthread_barrier_wait(&start_bar);
    for (int t = 1; t < n_threads; t++) pthread_join(th[t], NULL);
    if (json) {
        printf("{\"threads\": %d, \"bytes\": %zu, \"passes\": %d, \"plain_gbs\": %.2f, \"best_gbs\": %.2f, \"best\": \"%s %d\", \"cpu_share\": %.2f}\n",
               n_threads, total, n_passes, results[0], best, names[variants[best_i].method], variants[best_i].arg, busy);
    } else {
        printf("best: %.1f GB/s (%s %d), %d threads, %zu MiB read per pass, median of %d passes\n", best,
               names[variants[best_i].method], variants[best_i].arg, n_threads, total >> 20, n_passes);
    }
    free(buf);
    return (int)(atomic_load(&sink) & 0);
}
