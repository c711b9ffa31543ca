// hk_matmul: Y = X · Wᵀ.
//
// Small T (decode, batched decode): the activations are quantized once to int8 blocks and every
// weight row is dotted with all T activation rows while it sits in L1, so each weight byte comes
// from memory once per call. Threads split the weight rows (dynamic chunks).
// Large T (prefill): each thread dequantizes a tile of weight rows to float and multiplies it with
// single-threaded OpenBLAS sgemm; compute-bound, so the tile's dequantization is amortised over T.
// Where the int8 kernels are as fast as sgemm (32-element formats, see GEMM_MIN_T) they serve
// every T, which also keeps the numerics of llama.cpp (int8 activations for quantized weights).
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>

// T at and above which dequantize + sgemm beats the direct kernels. Measured per thread on the
// 2-core Zen 5 box: OpenBLAS sgemm on 128-row tiles gives ~75 GFLOP/s at T = 16, ~90 at 32 and
// ~120 from T ≈ 128. The int8 kernels for the 32-element formats run 112–119 at any T with AVX2,
// 120–128 with AVX-VNNI and ~150 with AVX-512 VNNI, so those formats use sgemm only from 128
// without VNNI and never with it; the k-quant int8 kernels (~90) switch at 32 and the float
// kernels (~50–60, FMA-latency bound) at 16.
#define GEMM_MIN_T 32
#define GEMM_MIN_T_FLOAT 16
#define GEMM_MIN_T_LEGACY_AVX2 128
// Weight rows per sgemm tile: big enough to amortise OpenBLAS's packing of X, small enough that
// the float tile stays in L2.
#define GEMM_TILE_ROWS 128

// Four activation rows' blocks side by side (rows past T are zero), so one weight block meets
// all four with contiguous loads of their scales and sums.
typedef struct xq8x4 { float d[4], s[4]; int8_t qs[4][QK]; } xq8x4;

typedef struct mm_ctx mm_ctx;
typedef void (*rows_fn)(const mm_ctx *c, int64_t r0, int64_t r1);

struct mm_ctx {
    int wtype, level;
    const uint8_t *W;
    size_t row_bytes;
    int64_t rows, cols, nb;  // nb: blocks per row
    const float *X;
    int64_t xs, T;
    float *Y;
    int64_t ys;
    const uint8_t *xq;  // quantized activations: T rows of xq_row_bytes
    size_t xq_row_bytes;
    const struct xq8x4 *xq4;  // legacy formats, T > 1, SIMD: groups of four rows interleaved
    rows_fn fn;
    hk_pool *pool;
    int64_t chunk;
    _Alignas(64) _Atomic int64_t next;
};

// ---- Scalar dot products (weight row · one quantized activation row) -----------------------------

static float dot_legacy_scalar(int type, const uint8_t *w, const xq8 *x, int64_t nb) {
    float sum = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int q[QK];
        float d, m = 0.0f;
        switch (type) {
        case HK_Q4_0: {
            const block_q4_0 *blk = (const block_q4_0 *)w + b;
            for (int j = 0; j < 16; j++) { q[j] = (blk->qs[j] & 0xF) - 8; q[j + 16] = (blk->qs[j] >> 4) - 8; }
            d = hk_f16_to_f32(blk->d);
            break;
        }
        case HK_Q4_1: {
            const block_q4_1 *blk = (const block_q4_1 *)w + b;
            for (int j = 0; j < 16; j++) { q[j] = blk->qs[j] & 0xF; q[j + 16] = blk->qs[j] >> 4; }
            d = hk_f16_to_f32(blk->d);
            m = hk_f16_to_f32(blk->m);
            break;
        }
        case HK_Q5_0: {
            const block_q5_0 *blk = (const block_q5_0 *)w + b;
            const uint32_t qh = load_u32(blk->qh);
            for (int j = 0; j < 16; j++) {
                q[j] = ((blk->qs[j] & 0xF) | (((qh >> j) << 4) & 0x10)) - 16;
                q[j + 16] = ((blk->qs[j] >> 4) | ((qh >> (j + 12)) & 0x10)) - 16;
            }
            d = hk_f16_to_f32(blk->d);
            break;
        }
        case HK_Q5_1: {
            const block_q5_1 *blk = (const block_q5_1 *)w + b;
            const uint32_t qh = load_u32(blk->qh);
            for (int j = 0; j < 16; j++) {
                q[j] = (blk->qs[j] & 0xF) | (((qh >> j) << 4) & 0x10);
                q[j + 16] = (blk->qs[j] >> 4) | ((qh >> (j + 12)) & 0x10);
            }
            d = hk_f16_to_f32(blk->d);
            m = hk_f16_to_f32(blk->m);
            break;
        }
        default: {  // HK_Q8_0
            const block_q8_0 *blk = (const block_q8_0 *)w + b;
            for (int j = 0; j < QK; j++) q[j] = blk->qs[j];
            d = hk_f16_to_f32(blk->d);
            break;
        }
        }
        int isum = 0;
        for (int j = 0; j < QK; j++) isum += q[j] * x[b].qs[j];
        sum += d * x[b].d * (float)isum + m * x[b].s;
    }
    return sum;
}

// k-quants: unpack each super-block to 256 small ints plus per-sub-block scales, then int dots.
static float dot_kquant_scalar(int type, const uint8_t *w, const xq8k *x, int64_t nb) {
    float sum = 0.0f;
    for (int64_t b = 0; b < nb; b++) {
        int q[QK_K];
        const int8_t *xs = x[b].qs;
        if (type == HK_Q6_K) {
            const block_q6_K *blk = (const block_q6_K *)w + b;
            const uint8_t *ql = blk->ql, *qh = blk->qh;
            for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32) {
                for (int l = 0; l < 32; l++) {
                    q[n + l + 0] = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    q[n + l + 32] = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    q[n + l + 64] = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    q[n + l + 96] = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                }
            }
            int isum = 0;
            for (int j = 0; j < QK_K / 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += q[j * 16 + l] * xs[j * 16 + l];
                isum += blk->scales[j] * s;
            }
            sum += hk_f16_to_f32(blk->d) * x[b].d * (float)isum;
            continue;
        }
        // Q4_K / Q5_K: value = d·sc·q − dmin·m per 32-element sub-block.
        const uint8_t *scales, *qs, *qh = NULL;
        float d, dmin;
        if (type == HK_Q4_K) {
            const block_q4_K *blk = (const block_q4_K *)w + b;
            scales = blk->scales; qs = blk->qs;
            d = hk_f16_to_f32(blk->d); dmin = hk_f16_to_f32(blk->dmin);
        } else {
            const block_q5_K *blk = (const block_q5_K *)w + b;
            scales = blk->scales; qs = blk->qs; qh = blk->qh;
            d = hk_f16_to_f32(blk->d); dmin = hk_f16_to_f32(blk->dmin);
        }
        for (int j = 0; j < QK_K / 64; j++) {
            for (int l = 0; l < 32; l++) {
                q[j * 64 + l] = qs[j * 32 + l] & 0xF;
                q[j * 64 + 32 + l] = qs[j * 32 + l] >> 4;
                if (qh) {
                    q[j * 64 + l] += (qh[l] >> (2 * j)) & 1 ? 16 : 0;
                    q[j * 64 + 32 + l] += (qh[l] >> (2 * j + 1)) & 1 ? 16 : 0;
                }
            }
        }
        int isum = 0, msum = 0;
        for (int j = 0; j < QK_K / 32; j++) {
            uint8_t sc, m;
            get_scale_min_k4(j, scales, &sc, &m);
            int s = 0;
            for (int l = 0; l < 32; l++) s += q[j * 32 + l] * xs[j * 32 + l];
            isum += sc * s;
            msum += m * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        sum += x[b].d * (d * (float)isum - dmin * (float)msum);
    }
    return sum;
}

static float load_w_scalar(int type, const uint8_t *w, int64_t i) {
    switch (type) {
    case HK_F16: return hk_f16_to_f32(((const uint16_t *)w)[i]);
    case HK_BF16: return hk_bf16_to_f32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

static void rows_scalar(const mm_ctx *c, int64_t r0, int64_t r1) {
    const int t = c->wtype;
    const int kq = t == HK_Q4_K || t == HK_Q5_K || t == HK_Q6_K;
    const int fl = t == HK_F32 || t == HK_F16 || t == HK_BF16;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *w = c->W + r * c->row_bytes;
        for (int64_t ti = 0; ti < c->T; ti++) {
            float v;
            if (fl) {
                const float *x = c->X + ti * c->xs;
                v = 0.0f;
                for (int64_t i = 0; i < c->cols; i++) v += load_w_scalar(t, w, i) * x[i];
            } else if (kq) {
                v = dot_kquant_scalar(t, w, (const xq8k *)(c->xq + ti * c->xq_row_bytes), c->nb);
            } else {
                v = dot_legacy_scalar(t, w, (const xq8 *)(c->xq + ti * c->xq_row_bytes), c->nb);
            }
            c->Y[ti * c->ys + r] = v;
        }
    }
}

// ---- x86 kernels -----------------------------------------------------------------------------------

#if HK_X86
#define KTARGET HK_AVX2
#define KNAME(x) x##_avx2
#define MUL_SUM(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
#include "matmul_x86.h"
#undef KTARGET
#undef KNAME
#undef MUL_SUM

#define KTARGET __attribute__((target("avx2,fma,f16c,avxvnni")))
#define KNAME(x) x##_vnni
#define MUL_SUM(u, s) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s)
#include "matmul_x86.h"
#undef KTARGET
#undef KNAME
#undef MUL_SUM

// AVX-512 VNNI: batched rows of the 32-element formats. One zmm dpbusd multiplies a weight block
// (broadcast to both halves) with two interleaved activation rows; a 128-bit-lane shuffle + add
// folds the four rows' partial sums into one vector [t0 | t1 | t2 | t3], scaled by one FMA.
// T = 1 stays on the 256-bit kernel (memory-bound there).
#define HK_AVX512 __attribute__((target("avx2,fma,f16c,avxvnni,avx512f,avx512bw,avx512vnni")))

HK_AVX512 HK_INLINE void legacy_rows4_512(int type, const uint8_t *w, int64_t nb, const xq8x4 *x, int64_t gstride,
                                          int NG, float *out) {
    const __m512i didx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
    __m128 macc[2] = {_mm_setzero_ps(), _mm_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        float d, m;
        __m256i q = legacy_unpack_vnni(type, w, b, &d, &m);
        if (type == HK_Q8_0) {  // no zmm sign trick: offset to unsigned, Σ(q+128)x − 128Σx
            q = _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80));
            m = -128.0f * d;
        }
        const __m512i qq = _mm512_broadcast_i64x4(q);
        const __m512 vd = _mm512_set1_ps(d);
        for (int g = 0; g < NG; g++) {
            const xq8x4 *xb = x + g * gstride + b;
            const __m512i p01 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qq, _mm512_loadu_si512(xb->qs[0]));
            const __m512i p23 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), qq, _mm512_loadu_si512(xb->qs[2]));
            // Lane chunks of p01: [t0 lo, t0 hi, t1 lo, t1 hi]; fold to [t0, t1, t2, t3].
            const __m512i h = _mm512_add_epi32(_mm512_shuffle_i32x4(p01, p23, _MM_SHUFFLE(2, 0, 2, 0)),
                                               _mm512_shuffle_i32x4(p01, p23, _MM_SHUFFLE(3, 1, 3, 1)));
            const __m512 dx = _mm512_permutexvar_ps(didx, _mm512_castps128_ps512(_mm_loadu_ps(xb->d)));
            acc[g] = _mm512_fmadd_ps(_mm512_mul_ps(vd, dx), _mm512_cvtepi32_ps(h), acc[g]);
            macc[g] = _mm_fmadd_ps(_mm_set1_ps(m), _mm_loadu_ps(xb->s), macc[g]);
        }
    }
    for (int g = 0; g < NG; g++) {
        const __m128 c0 = _mm512_extractf32x4_ps(acc[g], 0), c1 = _mm512_extractf32x4_ps(acc[g], 1);
        const __m128 c2 = _mm512_extractf32x4_ps(acc[g], 2), c3 = _mm512_extractf32x4_ps(acc[g], 3);
        _mm_storeu_ps(out + 4 * g, _mm_add_ps(_mm_hadd_ps(_mm_hadd_ps(c0, c1), _mm_hadd_ps(c2, c3)), macc[g]));
    }
}

#define KLEGACY512(name, TYPE)                                                                       \
    HK_AVX512 static void name##_512(const mm_ctx *c, int64_t r0, int64_t r1) {                      \
        if (c->T == 1) {                                                                             \
            name##_vnni(c, r0, r1);                                                                  \
            return;                                                                                  \
        }                                                                                            \
        const int64_t groups = (c->T + 3) / 4;                                                       \
        for (int64_t g0 = 0; g0 < groups; g0 += 8) {                                                 \
            const int64_t g1 = g0 + 8 < groups ? g0 + 8 : groups;                                    \
            for (int64_t r = r0; r < r1; r++) {                                                      \
                const uint8_t *w = c->W + r * c->row_bytes;                                          \
                for (int64_t g = g0; g < g1; g += 2) {                                               \
                    float out[8];                                                                    \
                    const int ng = g + 1 < g1 ? 2 : 1;                                               \
                    if (ng == 2) legacy_rows4_512(TYPE, w, c->nb, c->xq4 + g * c->nb, c->nb, 2, out); \
                    else legacy_rows4_512(TYPE, w, c->nb, c->xq4 + g * c->nb, c->nb, 1, out);   \
                    for (int64_t t = 4 * g; t < c->T && t < 4 * (g + ng); t++)                       \
                        c->Y[t * c->ys + r] = out[t - 4 * g];                                        \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
    }

KLEGACY512(rows_q4_0, HK_Q4_0)
KLEGACY512(rows_q4_1, HK_Q4_1)
KLEGACY512(rows_q5_0, HK_Q5_0)
KLEGACY512(rows_q5_1, HK_Q5_1)
KLEGACY512(rows_q8_0, HK_Q8_0)
#undef KLEGACY512

static rows_fn pick_rows_512(int type) {
    switch (type) {
    case HK_Q4_0: return rows_q4_0_512;
    case HK_Q4_1: return rows_q4_1_512;
    case HK_Q5_0: return rows_q5_0_512;
    case HK_Q5_1: return rows_q5_1_512;
    case HK_Q8_0: return rows_q8_0_512;
    default: return pick_rows_vnni(type);
    }
}
#endif

static rows_fn pick_rows(int type, int level) {
    rows_fn fn = NULL;
#if HK_X86
    if (level >= HK_LEVEL_AVX512) fn = pick_rows_512(type);
    else if (level >= HK_LEVEL_VNNI) fn = pick_rows_vnni(type);
    else if (level >= HK_LEVEL_AVX2) fn = pick_rows_avx2(type);
#endif
    (void)level;
    return fn ? fn : rows_scalar;
}

// ---- Drivers ---------------------------------------------------------------------------------------

static void rows_job(void *p, int tid, int nth) {
    (void)tid; (void)nth;
    mm_ctx *c = p;
    for (;;) {
        const int64_t r0 = atomic_fetch_add_explicit(&c->next, c->chunk, memory_order_relaxed);
        if (r0 >= c->rows) break;
        c->fn(c, r0, r0 + c->chunk < c->rows ? r0 + c->chunk : c->rows);
    }
}

static void gemm_job(void *p, int tid, int nth) {
    (void)nth;
    mm_ctx *c = p;
    for (;;) {
        const int64_t r0 = atomic_fetch_add_explicit(&c->next, c->chunk, memory_order_relaxed);
        if (r0 >= c->rows) break;
        const int64_t nr = r0 + c->chunk < c->rows ? c->chunk : c->rows - r0;
        const float *tile;
        if (c->wtype == HK_F32) {
            tile = (const float *)(c->W + r0 * c->row_bytes);
        } else {
            float *buf = hk_pool_scratch(c->pool, tid, (size_t)(nr * c->cols) * sizeof(float));
            for (int64_t r = 0; r < nr; r++)
                hk_dequantize_row_level(c->level, c->wtype, c->W + (r0 + r) * c->row_bytes, buf + r * c->cols, c->cols);
            tile = buf;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->T, (int)nr, (int)c->cols, 1.0f,
                    c->X, (int)c->xs, tile, (int)c->cols, 0.0f, c->Y + r0, (int)c->ys);
    }
}

void hk_matmul(hk_pool *pool, int wtype, const void *W, int64_t rows, int64_t cols,
               const float *X, int64_t x_stride, int64_t T, float *Y, int64_t y_stride) {
    if (rows <= 0 || T <= 0 || !hk_type_supported(wtype)) return;
    const int nth = hk_pool_threads(pool);
    mm_ctx c = {
        .wtype = wtype, .level = hk_pool_level(pool), .W = W,
        .row_bytes = (size_t)(cols / hk_block_size(wtype) * hk_block_bytes(wtype)),
        .rows = rows, .cols = cols, .nb = cols / hk_block_size(wtype),
        .X = X, .xs = x_stride, .T = T, .Y = Y, .ys = y_stride, .pool = pool,
    };
    atomic_init(&c.next, 0);
    const int legacy = wtype == HK_Q4_0 || wtype == HK_Q4_1 || wtype == HK_Q5_0 || wtype == HK_Q5_1 || wtype == HK_Q8_0;
    const int is_float = wtype == HK_F32 || wtype == HK_F16 || wtype == HK_BF16;
    int64_t gemm_min_t = is_float ? GEMM_MIN_T_FLOAT : GEMM_MIN_T;
    if (legacy && c.level >= HK_LEVEL_VNNI) gemm_min_t = INT64_MAX;
    else if (legacy && c.level >= HK_LEVEL_AVX2) gemm_min_t = GEMM_MIN_T_LEGACY_AVX2;
    if (T >= gemm_min_t) {
        openblas_set_num_threads(1);  // our threads split the rows; OpenBLAS must not fork again
        c.chunk = GEMM_TILE_ROWS;
        hk_pool_run(pool, gemm_job, &c);
        return;
    }
    if (!is_float) {
        const int kq = wtype == HK_Q4_K || wtype == HK_Q5_K || wtype == HK_Q6_K;
        c.xq_row_bytes = kq ? (size_t)(cols / QK_K) * sizeof(xq8k) : (size_t)(cols / QK) * sizeof(xq8);
        // Legacy formats with T > 1 on SIMD also get the rows interleaved in groups of four.
        const int interleave = !kq && c.level >= HK_LEVEL_AVX2 && T > 1;
        const int64_t groups = (T + 3) / 4;
        const size_t xq_bytes = (c.xq_row_bytes * (size_t)T + 63) & ~(size_t)63;
        const size_t x4_bytes = interleave ? sizeof(xq8x4) * (size_t)(groups * c.nb) : 0;
        uint8_t *xq = hk_pool_shared(pool, xq_bytes + x4_bytes);
        for (int64_t t = 0; t < T; t++) {
            if (kq) hk_quantize_xq8k(c.level, X + t * x_stride, (xq8k *)(xq + t * c.xq_row_bytes), cols);
            else hk_quantize_xq8(c.level, X + t * x_stride, (xq8 *)(xq + t * c.xq_row_bytes), cols);
        }
        c.xq = xq;
        if (interleave) {
            xq8x4 *x4 = (xq8x4 *)(xq + xq_bytes);
            memset(x4, 0, x4_bytes);  // zero rows pad the last group
            for (int64_t t = 0; t < T; t++) {
                const xq8 *row = (const xq8 *)(xq + t * c.xq_row_bytes);
                for (int64_t b = 0; b < c.nb; b++) {
                    xq8x4 *dst = &x4[(t / 4) * c.nb + b];
                    dst->d[t % 4] = row[b].d;
                    dst->s[t % 4] = row[b].s;
                    memcpy(dst->qs[t % 4], row[b].qs, QK);
                }
            }
            c.xq4 = x4;
        }
    }
    c.fn = pick_rows(wtype, c.level);
    // About 4 chunks per thread, in multiples of 16 rows; at larger T at most 64 rows, so a chunk's
    // weights stay cached while the activation slabs pass over them.
    int64_t chunk = (rows + 4 * nth - 1) / (4 * nth);
    chunk = (chunk + 15) & ~(int64_t)15;
    c.chunk = T > 4 && chunk > 64 ? 64 : chunk;
    hk_pool_run(pool, rows_job, &c);
}
