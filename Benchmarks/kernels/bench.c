// Micro-benchmark of the CKernels hot paths. Build and run with Benchmarks/kernels/run.sh.
//
// matmul: weight GB/s at T = 1 and 8 (memory-bound decode; "cold" cycles through enough copies
// of the matrix to defeat the 32 MB L3) and GFLOP/s at T = 512 (prefill), for 1 and 2 threads.
// Also: pool fork/join cost, decode attention at depth 2048, and the matmuls of a whole
// SmolLM2-135M step. `bench kquant`: read bandwidth and the k-quant matrices of Qwen2.5-Coder-1.5B.
#include "ckernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1 << 24) * 2.0f - 1.0f;
}

// Median of `reps` timings of `iters` calls, in seconds per call.
#define TIME_MEDIAN(reps, iters, body)                                   \
    ({                                                                   \
        double t_[64];                                                   \
        for (int r_ = 0; r_ < (reps); r_++) {                            \
            double t0_ = now();                                          \
            for (int i_ = 0; i_ < (iters); i_++) { body; }               \
            t_[r_] = (now() - t0_) / (iters);                            \
        }                                                                \
        for (int a_ = 0; a_ < (reps); a_++)                              \
            for (int b_ = a_ + 1; b_ < (reps); b_++)                     \
                if (t_[b_] < t_[a_]) { double x_ = t_[a_]; t_[a_] = t_[b_]; t_[b_] = x_; } \
        t_[(reps) / 2];                                                  \
    })

static void *make_weights(int type, int64_t rows, int64_t cols, unsigned *seed) {
    const int64_t rb = cols / hk_block_size(type) * hk_block_bytes(type);
    unsigned char *w = malloc((size_t)(rb * rows));
    if (!hk_type_quantizable(type)) {  // k-quants: random levels and scales, small f16 d (and dmin)
        const int64_t bb = hk_block_bytes(type);
        for (int64_t i = 0; i < rb * rows; i++) w[i] = (unsigned char)(frand(seed) * 128 + 128);
        for (int64_t b = 0; b < rb * rows / bb; b++) {
            const uint16_t d = hk_f32_to_f16(0.01f + 0.01f * frand(seed)), m = hk_f32_to_f16(0.01f * frand(seed));
            unsigned char *o = w + b * bb;
            if (type == HK_Q6_K) memcpy(o + bb - 2, &d, 2);
            else { memcpy(o, &d, 2); memcpy(o + 2, &m, 2); }
        }
        return w;
    }
    float *tmp = malloc(sizeof(float) * (size_t)cols);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < cols; i++) tmp[i] = frand(seed);
        hk_quantize_row(type, tmp, w + r * rb, cols);
    }
    free(tmp);
    return w;
}

static void bench_matmul(hk_pool *pool, int type, const char *name, int64_t rows, int64_t cols) {
    unsigned seed = 1;
    const int64_t rb = cols / hk_block_size(type) * hk_block_bytes(type);
    const double bytes = (double)rb * rows;
    // Enough copies to exceed 96 MB so the cold runs stream from DRAM.
    const int copies = (int)fmin(64, ceil(96e6 / bytes));
    void *w[64];
    for (int c = 0; c < copies; c++) w[c] = make_weights(type, rows, cols, &seed);
    const int64_t Tmax = 512;
    float *X = malloc(sizeof(float) * (size_t)(Tmax * cols)), *Y = malloc(sizeof(float) * (size_t)(Tmax * rows));
    for (int64_t i = 0; i < Tmax * cols; i++) X[i] = frand(&seed);
    const int nth = hk_pool_threads(pool);

    double cold1 = 0;
    for (int T = 1; T <= 8; T *= 8) {
        const int iters = (int)fmax(4, 2e8 / bytes / T);
        const double hot = TIME_MEDIAN(7, iters, hk_matmul(pool, type, w[0], rows, cols, X, cols, T, Y, rows));
        int k = 0;
        const double cold = TIME_MEDIAN(7, iters, hk_matmul(pool, type, w[k++ % copies], rows, cols, X, cols, T, Y, rows));
        if (T == 1) cold1 = cold;
        printf("%-5s %6lldx%-4lld T=%-3d thr=%d  hot %7.1f GB/s  cold %6.1f GB/s  (%7.1f us/call", name, (long long)rows,
               (long long)cols, T, nth, bytes / hot * 1e-9, bytes / cold * 1e-9, cold * 1e6);
        if (T > 1) printf(", %.1fx the tokens/s of T=1", T * cold1 / cold);
        printf(")\n");
    }
    const double flops = 2.0 * rows * cols * Tmax;
    const double t = TIME_MEDIAN(5, (int)fmax(1, 2e9 / flops), hk_matmul(pool, type, w[0], rows, cols, X, cols, Tmax, Y, rows));
    printf("%-5s %6lldx%-4lld T=%-3lld thr=%d  %7.1f GFLOP/s (%.2f ms)\n", name, (long long)rows, (long long)cols,
           (long long)Tmax, nth, flops / t * 1e-9, t * 1e3);
    for (int c = 0; c < copies; c++) free(w[c]);
    free(X);
    free(Y);
}

// All matmuls of one SmolLM2-135M forward pass (30 layers of q/k/v/o/gate/up/down in `type`, tied
// 49152-row output in `out_type`), distinct weights per layer as in the real model: an upper bound
// on decode (T = 1) and batched-decode (T = 2, 4, 8) tokens/s from the matmuls alone.
static void bench_model(hk_pool *pool, int type, int out_type, const char *name) {
    enum { LAYERS = 30, D = 576, KV = 192, FF = 1536, VOCAB = 49152 };
    const int64_t shapes[7][2] = {{D, D}, {KV, D}, {KV, D}, {D, D}, {FF, D}, {FF, D}, {D, FF}};
    unsigned seed = 7;
    void *w[LAYERS][7];
    for (int l = 0; l < LAYERS; l++)
        for (int m = 0; m < 7; m++) w[l][m] = make_weights(type, shapes[m][0], shapes[m][1], &seed);
    void *out = make_weights(out_type, VOCAB, D, &seed);
    const int64_t Tmax = 8;
    float *X = malloc(sizeof(float) * Tmax * FF), *Y = malloc(sizeof(float) * Tmax * VOCAB);
    for (int64_t i = 0; i < Tmax * FF; i++) X[i] = frand(&seed);
    for (int T = 1; T <= Tmax; T *= 2) {
        const double t = TIME_MEDIAN(5, 3, {
            for (int l = 0; l < LAYERS; l++)
                for (int m = 0; m < 7; m++)
                    hk_matmul(pool, type, w[l][m], shapes[m][0], shapes[m][1], X, shapes[m][1], T, Y, shapes[m][0]);
            hk_matmul(pool, out_type, out, VOCAB, D, X, D, T, Y, VOCAB);
        });
        printf("SmolLM2-135M matmuls %s T=%d thr=%d: %.2f ms/step = %.0f tokens/s\n", name, T, hk_pool_threads(pool),
               t * 1e3, T / t);
    }
    for (int l = 0; l < LAYERS; l++)
        for (int m = 0; m < 7; m++) free(w[l][m]);
    free(out);
    free(X);
    free(Y);
}

static void nop_task(void *ctx, int64_t i) { (void)ctx; (void)i; }

// Read bandwidth: the pool's threads sum 1 MB slices of a 512 MB buffer with 256-bit loads (4
// independent chains, prefetch 1 KB ahead) — the rate a perfectly streaming decode could reach.
typedef struct { const unsigned char *buf; double sink[64]; } read_ctx;
#define READ_SLICE (1 << 20)
__attribute__((target("avx2"))) static void read_task(void *p, int64_t i) {
    read_ctx *c = p;
    const unsigned char *s = c->buf + (size_t)i * READ_SLICE;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t o = 0; o < READ_SLICE; o += 128) {
        _mm_prefetch((const char *)s + o + 1024, _MM_HINT_T0);
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(s + o)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(s + o + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(s + o + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(s + o + 96)));
    }
    const __m256i t = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    c->sink[i % 64] += (double)_mm256_extract_epi64(t, 0);
}

static void bench_read(hk_pool *pool) {
    const size_t bytes = (size_t)512 << 20;
    read_ctx c = {.buf = aligned_alloc(64, bytes)};
    memset((void *)c.buf, 1, bytes);
    const double t = TIME_MEDIAN(5, 2, hk_parallel_for(pool, (int64_t)(bytes / READ_SLICE), read_task, &c));
    printf("read bandwidth thr=%d: %.1f GB/s\n", hk_pool_threads(pool), bytes / t * 1e-9);
    free((void *)c.buf);
}

static void attend_layers(hk_pool *pool, const hk_attn_query *query, int layers) {
    for (int l = 0; l < layers; l++) hk_attention(pool, &query[l], 1, 9, 3, 64, HK_F16, 0.125f, 0);
}

// One decode token's attention over SmolLM2-135M's 30 layers at `depth`, each layer with its own
// F16 cache as in the real model (45 MB at 2048: the caches come from memory, not L3).
static void bench_attention(hk_pool *pool, int64_t depth) {
    enum { LAYERS = 30 };
    const int64_t n_head = 9, n_kv = 3, hd = 64, row = n_kv * hd;
    unsigned seed = 3;
    uint16_t *k[LAYERS], *v[LAYERS];
    for (int l = 0; l < LAYERS; l++) {
        k[l] = malloc(sizeof(uint16_t) * (size_t)(depth * row));
        v[l] = malloc(sizeof(uint16_t) * (size_t)(depth * row));
        for (int64_t i = 0; i < depth * row; i++) {
            k[l][i] = hk_f32_to_f16(frand(&seed));
            v[l][i] = hk_f32_to_f16(frand(&seed));
        }
    }
    float q[9 * 64], out[9 * 64];
    for (int i = 0; i < 9 * 64; i++) q[i] = frand(&seed);
    hk_attn_query query[LAYERS];
    for (int l = 0; l < LAYERS; l++) query[l] = (hk_attn_query){q, out, k[l], v[l], depth};
    const double t = TIME_MEDIAN(7, 20, attend_layers(pool, query, LAYERS)) / LAYERS;
    printf("attention decode depth %lld thr=%d: %.1f us per layer (KV %.1f GB/s)\n", (long long)depth,
           hk_pool_threads(pool), t * 1e6, 2.0 * depth * row * 2 / t * 1e-9);
    for (int l = 0; l < LAYERS; l++) {
        free(k[l]);
        free(v[l]);
    }
}

int main(int argc, char **argv) {
    const int quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    printf("simd level %d\n", hk_simd_level());
    if (argc > 1 && strcmp(argv[1], "kquant") == 0) {  // the k-quant matrices of Qwen2.5-Coder-1.5B
        for (int nth = 1; nth <= 2; nth++) {
            hk_pool *pool = hk_pool_create(nth);
            bench_read(pool);
            bench_matmul(pool, HK_Q4_K, "Q4_K", 8960, 1536);
            bench_matmul(pool, HK_Q6_K, "Q6_K", 1536, 8960);
            bench_matmul(pool, HK_Q4_K, "Q4_K", 1536, 1536);
            hk_pool_destroy(pool);
        }
        return 0;
    }
    for (int nth = 1; nth <= 2; nth++) {
        hk_pool *pool = hk_pool_create(nth);
        const double fj = TIME_MEDIAN(7, 20000, hk_parallel_for(pool, nth, nop_task, NULL));
        printf("-- %d thread(s): fork/join %.2f us\n", nth, fj * 1e6);
        bench_matmul(pool, HK_Q4_1, "Q4_1", 1536, 576);
        bench_matmul(pool, HK_Q8_0, "Q8_0", 1536, 576);
        if (!quick) {
            bench_matmul(pool, HK_Q4_1, "Q4_1", 49152, 576);
            bench_matmul(pool, HK_Q8_0, "Q8_0", 49152, 576);
        }
        bench_attention(pool, 2048);
        bench_model(pool, HK_Q4_1, HK_Q8_0, "Q4_1");
        bench_model(pool, HK_Q8_0, HK_Q8_0, "Q8_0");
        hk_pool_destroy(pool);
    }
    return 0;
}
