// hk_attention: softmax(scale · q·Kᵀ) · V per query and head, with grouped-query heads sharing
// one K/V head; flash-attention style for long prompts, flash-decoding for long contexts.
//
// Canonical arithmetic (what makes a query's result independent of its batch). Every query
// attends a contiguous run of absolute positions [pos, pos + n_kv). Positions are cut on a fixed
// absolute grid: runs of RUN positions, each run in blocks of BLOCK. Inside a run an online
// softmax visits the query's part of each block in order (running max m, sum l, accumulator acc
// rescaled when m grows); the runs' (m, l, acc) are then merged in run order by merge_run. One
// score is one fixed chain of FMAs (8 lanes over head_dim, then one fixed reduction tree), one
// accumulator element one chain over positions. Nothing in that depends on the other queries of
// the call, on how work is split among threads, or on whether K/V are read from the cache or from a
// converted tile — so a query's output is bit-identical whatever batch it comes in.
//
// Work. Consecutive queries that read the same cache buffer at nearby positions (the tokens of
// one prompt: causal prefill, or a sliding window moving along it) form a tile of up to TILE_Q
// queries. A work item is (tile, KV head[, run]): for each block of the tile's union of positions
// the K and V rows of the KV head are converted from F16 once, then every query head of every
// query in the tile — all heads of the GQA group — scores against them (3 rows × 4 keys per
// register block) and accumulates P·V (up to 6 rows sharing each V load). A tile of one query
// (decode) reads the cache directly. Items are handed out longest first so both cores stay busy
// even for one sequence; when there are too few items for the threads (decode of a few
// sequences at depth), each run becomes its own item and the runs are merged afterwards.
#include "internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>

#define BLOCK 32        // positions per online-softmax step (a converted K/V block stays in L1)
#define RUN 256         // positions per run (a multiple of BLOCK): the unit of flash-decoding splits
#define TILE_Q 16       // queries per tile
#define SPLIT_ITEMS 8   // split tiles into runs when there are fewer items than this × threads

typedef struct {
    int64_t q0, nq;           // queries [q0, q0 + nq) of the call
    int64_t lo, hi;           // union of their attended absolute positions
    int64_t first_item;       // first work item of the tile
    int64_t part_off;         // split mode: its partials start here (floats)
    uintptr_t kbase, vbase;   // address absolute position 0 would have (never dereferenced)
} attn_tile;

typedef struct {
    const hk_attn_query *queries;
    const attn_tile *tiles;
    int64_t n_tiles, n_total_items;
    int64_t n_head, n_kv_head, head_dim, hpg;   // hpg: query heads per KV head
    int kv_type, level, split;
    float scale, softcap;
    size_t esize, row_bytes;
    float *partials;          // split mode: per item, per row of the tile: m, l, acc[head_dim]
    hk_pool *pool;
    _Atomic int failed;
    _Alignas(64) _Atomic int64_t next;
} attn_ctx;

static inline int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t run_count(const attn_tile *t) { return floordiv(t->hi - 1, RUN) - floordiv(t->lo, RUN) + 1; }

// Folds one run's (m, l, acc) into the running (M, L, A) of a row; the one merge formula of both
// the inline and the split paths (noinline: one compiled form for both).
__attribute__((noinline)) static void merge_run(float *M, float *L, float *A, float m, float l, const float *acc,
                                                int64_t hd) {
    if (m == -INFINITY) return;
    if (*M == -INFINITY) {
        *M = m;
        *L = l;
        memcpy(A, acc, sizeof(float) * (size_t)hd);
        return;
    }
    const float Mn = fmaxf(*M, m), a = expf(*M - Mn), b = expf(m - Mn);
    *L = *L * a + l * b;
    for (int64_t d = 0; d < hd; d++) A[d] = A[d] * a + acc[d] * b;
    *M = Mn;
}

__attribute__((noinline)) static void finish_row(float *out, float L, const float *A, int64_t hd) {
    const float inv = L > 0 ? 1.0f / L : 0.0f;
    for (int64_t d = 0; d < hd; d++) out[d] = A[d] * inv;
}

// ---- Block kernels ---------------------------------------------------------------------------------
// A "row" is one query head. Scores s[r][j] for j in [j0, j1) of the block (s row stride BLOCK);
// k points at the block's first position, kstride elements per position.

static void scores_scalar(int nr, const float *const *qr, const void *k, int64_t kstride, int F16, int64_t j0,
                          int64_t j1, int64_t hd, float scale, float *s) {
    for (int r = 0; r < nr; r++) {
        for (int64_t j = j0; j < j1; j++) {
            float dot = 0.0f;
            if (F16) {
                const uint16_t *kj = (const uint16_t *)k + j * kstride;
                for (int64_t d = 0; d < hd; d++) dot += qr[r][d] * hk_f16_to_f32(kj[d]);
            } else {
                const float *kj = (const float *)k + j * kstride;
                for (int64_t d = 0; d < hd; d++) dot += qr[r][d] * kj[d];
            }
            s[r * BLOCK + j] = dot * scale;
        }
    }
}

// acc[r] += Σ_{j0 ≤ j < j1} p[r][j] · v_j for nr rows with the same range.
static void pv_scalar(int nr, const float *p, const void *v, int64_t vstride, int F16, int64_t j0, int64_t j1,
                      int64_t hd, float *acc) {
    for (int r = 0; r < nr; r++) {
        float *a = acc + r * hd;
        for (int64_t j = j0; j < j1; j++) {
            const float pj = p[r * BLOCK + j];
            if (F16) {
                const uint16_t *vj = (const uint16_t *)v + j * vstride;
                for (int64_t d = 0; d < hd; d++) a[d] += pj * hk_f16_to_f32(vj[d]);
            } else {
                const float *vj = (const float *)v + j * vstride;
                for (int64_t d = 0; d < hd; d++) a[d] += pj * vj[d];
            }
        }
    }
}

// Online-softmax step of one row over [j0, j1): soft-cap, new max, exponentiate in place,
// update l and rescale acc.
static void softmax_scalar(float *s, int64_t j0, int64_t j1, float softcap, float *m, float *l, float *acc,
                           int64_t hd) {
    float bmax = -INFINITY;
    for (int64_t j = j0; j < j1; j++) {
        if (softcap > 0) s[j] = softcap * tanhf(s[j] / softcap);
        bmax = fmaxf(bmax, s[j]);
    }
    const float m_new = fmaxf(*m, bmax), corr = expf(*m - m_new);
    float sum = 0.0f;
    for (int64_t j = j0; j < j1; j++) {
        s[j] = expf(s[j] - m_new);
        sum += s[j];
    }
    *l = *l * corr + sum;
    *m = m_new;
    if (corr != 1.0f)
        for (int64_t d = 0; d < hd; d++) acc[d] *= corr;
}

#if HK_X86
// 8 K/V elements as floats from an F16 or F32 row (F16 a compile-time constant after inlining).
HK_AVX2 HK_INLINE __m256 load8(const void *base, int64_t i, int F16) {
    return F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)))
               : _mm256_loadu_ps((const float *)base + i);
}

// The four lane sums ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)) of a0..a3: the one reduction tree of
// every score.
HK_AVX2 HK_INLINE __m128 hsum4x8(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// Stores nk ≤ 4 scores of one row.
HK_AVX2 HK_INLINE void store_scores(float *s, __m128 v, int nk) {
    if (nk == 4) {
        _mm_storeu_ps(s, v);
    } else {
        float t[4];
        _mm_storeu_ps(t, v);
        for (int u = 0; u < nk; u++) s[u] = t[u];
    }
}

// NR ≤ 3 rows × 4 keys per register block: 12 accumulators, 3 q loads and 4 K loads per 12 FMAs.
// Named accumulators (not arrays) keep the reduction in registers.
HK_AVX2 HK_INLINE void scores_block(int NR, const float *const *qr, const void *k, int64_t kstride, int F16,
                                    int64_t j0, int64_t j1, int64_t hd, float scale, float *s) {
    const __m128 vs = _mm_set1_ps(scale);
    const float *q0 = qr[0], *q1 = NR > 1 ? qr[1] : qr[0], *q2 = NR > 2 ? qr[2] : qr[0];
    for (int64_t j = j0; j < j1; j += 4) {
        const int nk = j1 - j < 4 ? (int)(j1 - j) : 4;
        // Missing keys (nk < 4) repeat the last one; their sums are computed and dropped.
        const int64_t o0 = j * kstride, o1 = (nk > 1 ? j + 1 : j) * kstride;
        const int64_t o2 = (nk > 2 ? j + 2 : j) * kstride, o3 = (nk > 3 ? j + 3 : j) * kstride;
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
        __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00;
        for (int64_t d = 0; d < hd; d += 8) {
            const __m256 x0 = _mm256_loadu_ps(q0 + d);
            const __m256 x1 = NR > 1 ? _mm256_loadu_ps(q1 + d) : x0, x2 = NR > 2 ? _mm256_loadu_ps(q2 + d) : x0;
            __m256 kv = load8(k, o0 + d, F16);
            a00 = _mm256_fmadd_ps(x0, kv, a00);
            if (NR > 1) a10 = _mm256_fmadd_ps(x1, kv, a10);
            if (NR > 2) a20 = _mm256_fmadd_ps(x2, kv, a20);
            kv = load8(k, o1 + d, F16);
            a01 = _mm256_fmadd_ps(x0, kv, a01);
            if (NR > 1) a11 = _mm256_fmadd_ps(x1, kv, a11);
            if (NR > 2) a21 = _mm256_fmadd_ps(x2, kv, a21);
            kv = load8(k, o2 + d, F16);
            a02 = _mm256_fmadd_ps(x0, kv, a02);
            if (NR > 1) a12 = _mm256_fmadd_ps(x1, kv, a12);
            if (NR > 2) a22 = _mm256_fmadd_ps(x2, kv, a22);
            kv = load8(k, o3 + d, F16);
            a03 = _mm256_fmadd_ps(x0, kv, a03);
            if (NR > 1) a13 = _mm256_fmadd_ps(x1, kv, a13);
            if (NR > 2) a23 = _mm256_fmadd_ps(x2, kv, a23);
        }
        store_scores(s + j, _mm_mul_ps(hsum4x8(a00, a01, a02, a03), vs), nk);
        if (NR > 1) store_scores(s + BLOCK + j, _mm_mul_ps(hsum4x8(a10, a11, a12, a13), vs), nk);
        if (NR > 2) store_scores(s + 2 * BLOCK + j, _mm_mul_ps(hsum4x8(a20, a21, a22, a23), vs), nk);
    }
}

HK_AVX2 static void scores_avx2_f16(int nr, const float *const *qr, const void *k, int64_t kstride, int64_t j0,
                                    int64_t j1, int64_t hd, float scale, float *s) {
    switch (nr) {
    case 3: scores_block(3, qr, k, kstride, 1, j0, j1, hd, scale, s); break;
    case 2: scores_block(2, qr, k, kstride, 1, j0, j1, hd, scale, s); break;
    default: scores_block(1, qr, k, kstride, 1, j0, j1, hd, scale, s); break;
    }
}

HK_AVX2 static void scores_avx2_f32(int nr, const float *const *qr, const void *k, int64_t kstride, int64_t j0,
                                    int64_t j1, int64_t hd, float scale, float *s) {
    switch (nr) {
    case 3: scores_block(3, qr, k, kstride, 0, j0, j1, hd, scale, s); break;
    case 2: scores_block(2, qr, k, kstride, 0, j0, j1, hd, scale, s); break;
    default: scores_block(1, qr, k, kstride, 0, j0, j1, hd, scale, s); break;
    }
}

// NH ≤ 6 rows × 16 dims: each V load serves NH rows (12 accumulators at NH = 6).
HK_AVX2 HK_INLINE void pv_block(int NH, const float *p, const void *v, int64_t vstride, int F16, int64_t j0,
                                int64_t j1, int64_t hd, float *acc) {
    for (int64_t d = 0; d < hd; d += 16) {
        __m256 a0[6], a1[6];
        for (int h = 0; h < NH; h++) {
            a0[h] = _mm256_loadu_ps(acc + h * hd + d);
            a1[h] = _mm256_loadu_ps(acc + h * hd + d + 8);
        }
        for (int64_t j = j0; j < j1; j++) {
            const __m256 v0 = load8(v, j * vstride + d, F16), v1 = load8(v, j * vstride + d + 8, F16);
            for (int h = 0; h < NH; h++) {
                const __m256 pj = _mm256_broadcast_ss(p + h * BLOCK + j);
                a0[h] = _mm256_fmadd_ps(pj, v0, a0[h]);
                a1[h] = _mm256_fmadd_ps(pj, v1, a1[h]);
            }
        }
        for (int h = 0; h < NH; h++) {
            _mm256_storeu_ps(acc + h * hd + d, a0[h]);
            _mm256_storeu_ps(acc + h * hd + d + 8, a1[h]);
        }
    }
}

#define PV_CASES(F16)                                                                    \
    switch (nh) {                                                                        \
    case 6: pv_block(6, p, v, vstride, F16, j0, j1, hd, acc); break;                     \
    case 5: pv_block(5, p, v, vstride, F16, j0, j1, hd, acc); break;                     \
    case 4: pv_block(4, p, v, vstride, F16, j0, j1, hd, acc); break;                     \
    case 3: pv_block(3, p, v, vstride, F16, j0, j1, hd, acc); break;                     \
    case 2: pv_block(2, p, v, vstride, F16, j0, j1, hd, acc); break;                     \
    default: pv_block(1, p, v, vstride, F16, j0, j1, hd, acc); break;                    \
    }

HK_AVX2 static void pv_avx2_f16(int nh, const float *p, const void *v, int64_t vstride, int64_t j0, int64_t j1,
                                int64_t hd, float *acc) {
    PV_CASES(1)
}
HK_AVX2 static void pv_avx2_f32(int nh, const float *p, const void *v, int64_t vstride, int64_t j0, int64_t j1,
                                int64_t hd, float *acc) {
    PV_CASES(0)
}

// P·V with AVX-512 (hd % 32 == 0): 16 dims per register, two per row, up to 6 rows. Every
// accumulator element is the same FMA chain over positions as in pv_block, so the result is
// bit-identical to the AVX2 path. (Compiled here; this machine has no AVX-512 to run it.)
#define ATTN_AVX512 __attribute__((target("avx2,fma,f16c,avx512f")))

ATTN_AVX512 HK_INLINE __m512 load16(const void *base, int64_t i, int F16) {
    return F16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + i)))
               : _mm512_loadu_ps((const float *)base + i);
}

ATTN_AVX512 HK_INLINE void pv_block512(int NH, const float *p, const void *v, int64_t vstride, int F16, int64_t j0,
                                       int64_t j1, int64_t hd, float *acc) {
    for (int64_t d = 0; d < hd; d += 32) {
        __m512 a0[6], a1[6];
        for (int h = 0; h < NH; h++) {
            a0[h] = _mm512_loadu_ps(acc + h * hd + d);
            a1[h] = _mm512_loadu_ps(acc + h * hd + d + 16);
        }
        for (int64_t j = j0; j < j1; j++) {
            const __m512 v0 = load16(v, j * vstride + d, F16), v1 = load16(v, j * vstride + d + 16, F16);
            for (int h = 0; h < NH; h++) {
                const __m512 pj = _mm512_set1_ps(p[h * BLOCK + j]);
                a0[h] = _mm512_fmadd_ps(pj, v0, a0[h]);
                a1[h] = _mm512_fmadd_ps(pj, v1, a1[h]);
            }
        }
        for (int h = 0; h < NH; h++) {
            _mm512_storeu_ps(acc + h * hd + d, a0[h]);
            _mm512_storeu_ps(acc + h * hd + d + 16, a1[h]);
        }
    }
}

#define PV512_CASES(F16)                                                                 \
    switch (nh) {                                                                        \
    case 6: pv_block512(6, p, v, vstride, F16, j0, j1, hd, acc); break;                  \
    case 5: pv_block512(5, p, v, vstride, F16, j0, j1, hd, acc); break;                  \
    case 4: pv_block512(4, p, v, vstride, F16, j0, j1, hd, acc); break;                  \
    case 3: pv_block512(3, p, v, vstride, F16, j0, j1, hd, acc); break;                  \
    case 2: pv_block512(2, p, v, vstride, F16, j0, j1, hd, acc); break;                  \
    default: pv_block512(1, p, v, vstride, F16, j0, j1, hd, acc); break;                 \
    }

ATTN_AVX512 static void pv_avx512_f16(int nh, const float *p, const void *v, int64_t vstride, int64_t j0, int64_t j1,
                                      int64_t hd, float *acc) {
    PV512_CASES(1)
}
ATTN_AVX512 static void pv_avx512_f32(int nh, const float *p, const void *v, int64_t vstride, int64_t j0, int64_t j1,
                                      int64_t hd, float *acc) {
    PV512_CASES(0)
}

// The AVX2 online-softmax step: lanes are positions mod 8 of the block, the padding around
// [j0, j1) is -inf (exp → exactly 0), so the sums do not depend on which other rows share a tile.
HK_AVX2 static void softmax_avx2(float *s, int64_t j0, int64_t j1, float softcap, float *m, float *l, float *acc,
                                 int64_t hd) {
    const int64_t a0 = j0 & ~(int64_t)7, a1 = (j1 + 7) & ~(int64_t)7;
    if (softcap > 0) {
        const __m256 cap = _mm256_set1_ps(softcap), icap2 = _mm256_set1_ps(2.0f / softcap);
        const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
        for (int64_t j = a0; j < a1; j += 8) {
            // c · tanh(x / c), tanh(y) = 1 − 2 / (e^{2y} + 1)
            const __m256 e = hk_exp8(_mm256_mul_ps(_mm256_loadu_ps(s + j), icap2));
            _mm256_storeu_ps(s + j, _mm256_mul_ps(cap, _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)))));
        }
    }
    for (int64_t j = a0; j < j0; j++) s[j] = -INFINITY;
    for (int64_t j = j1; j < a1; j++) s[j] = -INFINITY;
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    for (int64_t j = a0; j < a1; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(s + j));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float m_new = fmaxf(*m, _mm_cvtss_f32(m4)), corr = expf(*m - m_new);
    const __m256 vm = _mm256_set1_ps(m_new);
    __m256 vsum = _mm256_setzero_ps();
    for (int64_t j = a0; j < a1; j += 8) {
        const __m256 e = hk_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
        _mm256_storeu_ps(s + j, e);
        vsum = _mm256_add_ps(vsum, e);
    }
    *l = *l * corr + hk_hsum8(vsum);
    *m = m_new;
    if (corr != 1.0f) {
        const __m256 c = _mm256_set1_ps(corr);
        for (int64_t d = 0; d < hd; d += 8) _mm256_storeu_ps(acc + d, _mm256_mul_ps(_mm256_loadu_ps(acc + d), c));
    }
}

// n elements of an F16 row to floats.
HK_AVX2 static void f16_to_f32_avx2(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
}
#endif

static void f16_to_f32_scalar(const uint16_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = hk_f16_to_f32(src[i]);
}

// ---- Kernel table of one SIMD level ----------------------------------------------------------------

typedef struct {
    void (*scores)(int nr, const float *const *qr, const void *k, int64_t kstride, int64_t j0, int64_t j1, int64_t hd,
                   float scale, float *s);
    void (*pv)(int nh, const float *p, const void *v, int64_t vstride, int64_t j0, int64_t j1, int64_t hd, float *acc);
    void (*softmax)(float *s, int64_t j0, int64_t j1, float softcap, float *m, float *l, float *acc, int64_t hd);
    void (*convert)(const uint16_t *src, float *dst, int64_t n);
    int max_rows;  // rows per scores call
    int max_pv;    // rows per pv call
} attn_kernels;

static void scores_scalar_f16(int nr, const float *const *qr, const void *k, int64_t kstride, int64_t j0, int64_t j1,
                              int64_t hd, float scale, float *s) {
    scores_scalar(nr, qr, k, kstride, 1, j0, j1, hd, scale, s);
}
static void scores_scalar_f32(int nr, const float *const *qr, const void *k, int64_t kstride, int64_t j0, int64_t j1,
                              int64_t hd, float scale, float *s) {
    scores_scalar(nr, qr, k, kstride, 0, j0, j1, hd, scale, s);
}
static void pv_scalar_f16(int nh, const float *p, const void *v, int64_t vstride, int64_t j0, int64_t j1, int64_t hd,
                          float *acc) {
    pv_scalar(nh, p, v, vstride, 1, j0, j1, hd, acc);
}
static void pv_scalar_f32(int nh, const float *p, const void *v, int64_t vstride, int64_t j0, int64_t j1, int64_t hd,
                          float *acc) {
    pv_scalar(nh, p, v, vstride, 0, j0, j1, hd, acc);
}

// [F16 source][converted F32 tile] per level.
static void kernels_for(int level, int64_t hd, attn_kernels *f16, attn_kernels *f32) {
#if HK_X86
    // The AVX2 block kernels need head_dim % 16 == 0 (every common model); others run scalar.
    if (level >= HK_LEVEL_AVX2 && hd % 16 == 0) {
        *f16 = (attn_kernels){scores_avx2_f16, pv_avx2_f16, softmax_avx2, f16_to_f32_avx2, 3, 6};
        *f32 = (attn_kernels){scores_avx2_f32, pv_avx2_f32, softmax_avx2, f16_to_f32_avx2, 3, 6};
        // AVX-512: the P·V half of the FLOPs at twice the width, bit-identical to AVX2; the
        // scores keep the AVX2 kernel (its 8-lane chains define every score's rounding).
        if (level >= HK_LEVEL_AVX512 && hd % 32 == 0) {
            f16->pv = pv_avx512_f16;
            f32->pv = pv_avx512_f32;
        }
        return;
    }
#else
    (void)level; (void)hd;
#endif
    *f16 = (attn_kernels){scores_scalar_f16, pv_scalar_f16, softmax_scalar, f16_to_f32_scalar, 3, 6};
    *f32 = (attn_kernels){scores_scalar_f32, pv_scalar_f32, softmax_scalar, f16_to_f32_scalar, 3, 6};
}

// ---- Items -----------------------------------------------------------------------------------------

// Per-thread working set of one item with R = nq × hpg rows.
typedef struct {
    float *s;              // R × BLOCK scores, then probabilities
    float *acc;            // R × hd: the current run
    float *tot;            // R × hd: merged runs
    float *m, *l, *M, *L;  // R each
    float *kt, *vt;        // BLOCK × hd converted K and V of the block (multi-query F16 tiles)
    const float **qr;      // R query rows
    int64_t *jlo, *jhi;    // per query: its part of the current block (jlo ≥ jhi: none)
} attn_work;

static size_t work_bytes(int64_t R, int64_t nq, int64_t hd) {
    return sizeof(float) * (size_t)(R * BLOCK + 2 * R * hd + 4 * R + 2 * BLOCK * hd) +
           sizeof(float *) * (size_t)R + sizeof(int64_t) * (size_t)(2 * nq) + 64;
}

// One run range [r_first, r_last] of one tile and KV head.
static void run_item(attn_ctx *c, int tid, const attn_tile *t, int64_t g, int64_t r_first, int64_t r_last,
                     float *partial) {
    const int64_t hd = c->head_dim, hpg = c->hpg, nq = t->nq, R = nq * hpg;
    uint8_t *mem = hk_pool_scratch(c->pool, tid, work_bytes(R, nq, hd));
    if (!mem) {
        atomic_store(&c->failed, 1);
        return;
    }
    attn_work w;
    float *f = (float *)mem;
    w.s = f; f += R * BLOCK;
    w.acc = f; f += R * hd;
    w.tot = f; f += R * hd;
    w.m = f; f += R;
    w.l = f; f += R;
    w.M = f; f += R;
    w.L = f; f += R;
    w.kt = f; f += BLOCK * hd;
    w.vt = f; f += BLOCK * hd;
    w.qr = (const float **)f;
    w.jlo = (int64_t *)(w.qr + R);
    w.jhi = w.jlo + nq;
    for (int64_t i = 0; i < nq; i++)
        for (int64_t h = 0; h < hpg; h++) w.qr[i * hpg + h] = c->queries[t->q0 + i].q + (g * hpg + h) * hd;
    for (int64_t r = 0; r < R; r++) { w.M[r] = -INFINITY; w.L[r] = 0.0f; }

    attn_kernels kf16, kf32;
    kernels_for(c->level, hd, &kf16, &kf32);
    const int f16 = c->kv_type == HK_F16;
    // A one-query tile reads the cache directly; a multi-query F16 tile converts each block once.
    const int direct = nq == 1 || !f16;
    const attn_kernels *kn = direct && f16 ? &kf16 : &kf32;
    const int64_t row_elems = c->n_kv_head * hd;
    const size_t slice = (size_t)(g * hd) * c->esize;

    for (int64_t run = r_first; run <= r_last; run++) {
        const int64_t p0 = imax(t->lo, run * RUN), p1 = imin(t->hi, (run + 1) * RUN);
        for (int64_t r = 0; r < R; r++) w.m[r] = -INFINITY, w.l[r] = 0.0f;
        memset(w.acc, 0, sizeof(float) * (size_t)(R * hd));
        for (int64_t b = floordiv(p0, BLOCK); b * BLOCK < p1; b++) {
            const int64_t b0 = b * BLOCK;
            // Each query's part of the block, and the union of them.
            int64_t ulo = BLOCK, uhi = 0;
            for (int64_t i = 0; i < nq; i++) {
                const hk_attn_query *qq = &c->queries[t->q0 + i];
                const int64_t lo = imax(imax(qq->pos, p0), b0) - b0, hi = imin(imin(qq->pos + qq->n_kv, p1), b0 + BLOCK) - b0;
                w.jlo[i] = lo;
                w.jhi[i] = hi;
                if (lo < hi) { ulo = imin(ulo, lo); uhi = imax(uhi, hi); }
            }
            if (ulo >= uhi) continue;
            const uint8_t *kb = (const uint8_t *)(t->kbase + (uintptr_t)b0 * c->row_bytes) + slice;
            const uint8_t *vb = (const uint8_t *)(t->vbase + (uintptr_t)b0 * c->row_bytes) + slice;
            const void *k = kb, *v = vb;
            int64_t stride = row_elems;
            if (!direct) {
                for (int64_t j = ulo; j < uhi; j++) {
                    kn->convert((const uint16_t *)(kb + (size_t)j * c->row_bytes), w.kt + j * hd, hd);
                    kn->convert((const uint16_t *)(vb + (size_t)j * c->row_bytes), w.vt + j * hd, hd);
                }
                k = w.kt; v = w.vt; stride = hd;
            }
#if HK_X86
            else if (c->level >= HK_LEVEL_AVX2) {
                // Long contexts come from memory, and the strided rows (one KV head's slice of
                // each) leave the hardware prefetcher behind: fetch the next block meanwhile.
                const int64_t nb = imin(BLOCK, p1 - (b0 + BLOCK));
                for (int64_t j = 0; j < nb; j++)
                    for (size_t off = 0; off < (size_t)hd * c->esize; off += 64) {
                        _mm_prefetch((const char *)kb + (size_t)(BLOCK + j) * c->row_bytes + off, _MM_HINT_T0);
                        _mm_prefetch((const char *)vb + (size_t)(BLOCK + j) * c->row_bytes + off, _MM_HINT_T0);
                    }
            }
#endif
            // Scores: rows in groups of up to max_rows, each over the union of its queries' ranges.
            for (int64_t r0 = 0; r0 < R; r0 += kn->max_rows) {
                const int nr = (int)imin(kn->max_rows, R - r0);
                int64_t lo = BLOCK, hi = 0;
                for (int64_t r = r0; r < r0 + nr; r++) {
                    const int64_t i = r / hpg;
                    if (w.jlo[i] < w.jhi[i]) { lo = imin(lo, w.jlo[i]); hi = imax(hi, w.jhi[i]); }
                }
                if (lo < hi) kn->scores(nr, w.qr + r0, k, stride, lo, hi, hd, c->scale, w.s + r0 * BLOCK);
            }
            // Softmax per row over its query's range, then P·V for runs of rows with equal ranges.
            for (int64_t r = 0; r < R; r++) {
                const int64_t i = r / hpg;
                if (w.jlo[i] < w.jhi[i])
                    kn->softmax(w.s + r * BLOCK, w.jlo[i], w.jhi[i], c->softcap, &w.m[r], &w.l[r], w.acc + r * hd, hd);
            }
            for (int64_t r0 = 0; r0 < R;) {
                const int64_t i0 = r0 / hpg;
                int64_t r1 = r0 + 1;
                while (r1 < R && r1 - r0 < kn->max_pv && w.jlo[r1 / hpg] == w.jlo[i0] && w.jhi[r1 / hpg] == w.jhi[i0]) r1++;
                if (w.jlo[i0] < w.jhi[i0])
                    kn->pv((int)(r1 - r0), w.s + r0 * BLOCK, v, stride, w.jlo[i0], w.jhi[i0], hd, w.acc + r0 * hd);
                r0 = r1;
            }
        }
        if (partial) {  // split mode: one run per item, merged by the caller
            for (int64_t r = 0; r < R; r++) {
                float *part = partial + r * (hd + 2);
                part[0] = w.m[r];  // -inf: the row's query has no position in this run
                part[1] = w.l[r];
                memcpy(part + 2, w.acc + r * hd, sizeof(float) * (size_t)hd);
            }
        } else {
            for (int64_t r = 0; r < R; r++) merge_run(&w.M[r], &w.L[r], w.tot + r * hd, w.m[r], w.l[r], w.acc + r * hd, hd);
        }
    }
    if (!partial) {
        for (int64_t r = 0; r < R; r++) {
            const int64_t i = r / hpg, h = r % hpg;
            finish_row(c->queries[t->q0 + i].out + (g * hpg + h) * hd, w.L[r], w.tot + r * hd, hd);
        }
    }
}

static void attn_job(void *p, int tid, int nth) {
    (void)nth;
    attn_ctx *c = p;
    for (;;) {
        const int64_t n = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (n >= c->n_total_items) break;
        const int64_t item = c->n_total_items - 1 - n;  // later tiles are the longest: start there
        int64_t lo = 0, hi = c->n_tiles - 1;
        while (lo < hi) {
            const int64_t mid = (lo + hi + 1) / 2;
            if (c->tiles[mid].first_item <= item) lo = mid; else hi = mid - 1;
        }
        const attn_tile *t = &c->tiles[lo];
        const int64_t local = item - t->first_item;
        if (c->split) {
            const int64_t nruns = run_count(t), g = local / nruns, r = local % nruns;
            const int64_t run = floordiv(t->lo, RUN) + r;
            run_item(c, tid, t, g, run, run, c->partials + t->part_off + local * t->nq * c->hpg * (c->head_dim + 2));
        } else {
            run_item(c, tid, t, local, floordiv(t->lo, RUN), floordiv(t->hi - 1, RUN), NULL);
        }
    }
}

// Whether query q can join tile t: same cache buffer mapping and close enough positions that
// the union of ranges stays within TILE_Q positions of every member's own range.
static int joins(const attn_tile *t, const hk_attn_query *q, uintptr_t kbase, uintptr_t vbase, int64_t min_n) {
    if (t->nq >= TILE_Q || kbase != t->kbase || vbase != t->vbase) return 0;
    const int64_t lo = imin(t->lo, q->pos), hi = imax(t->hi, q->pos + q->n_kv);
    return hi - lo <= imin(min_n, q->n_kv) + TILE_Q;
}

// Groups consecutive queries into tiles (stored when `out` is not NULL); counts the tiles, their
// runs and the floats split partials would need. Queries attending nothing get zeros here.
static void form_tiles(const hk_attn_query *queries, int64_t n_queries, const attn_ctx *c, attn_tile *out,
                       int64_t *n_tiles, int64_t *runs_total, int64_t *part_floats) {
    attn_tile cur = {0};
    int64_t n = 0, runs = 0, floats = 0, min_n = 0;
    const int64_t per_row = c->n_kv_head * c->hpg * (c->head_dim + 2);
    for (int64_t i = 0; i <= n_queries; i++) {
        const hk_attn_query *q = i < n_queries ? &queries[i] : NULL;
        if (q && q->n_kv <= 0) {
            memset(q->out, 0, sizeof(float) * (size_t)(c->n_head * c->head_dim));
            continue;
        }
        uintptr_t kbase = 0, vbase = 0;
        if (q) {
            kbase = (uintptr_t)q->k - (uintptr_t)q->pos * c->row_bytes;
            vbase = (uintptr_t)q->v - (uintptr_t)q->pos * c->row_bytes;
            if (cur.nq > 0 && cur.q0 + cur.nq == i && joins(&cur, q, kbase, vbase, min_n)) {
                cur.nq++;
                cur.lo = imin(cur.lo, q->pos);
                cur.hi = imax(cur.hi, q->pos + q->n_kv);
                min_n = imin(min_n, q->n_kv);
                continue;
            }
        }
        if (cur.nq > 0) {  // close the current tile
            if (out) out[n] = cur;
            n++;
            runs += run_count(&cur);
            floats += run_count(&cur) * cur.nq * per_row;
        }
        if (q) {
            cur = (attn_tile){.q0 = i, .nq = 1, .lo = q->pos, .hi = q->pos + q->n_kv, .kbase = kbase, .vbase = vbase};
            min_n = q->n_kv;
        }
    }
    *n_tiles = n;
    *runs_total = runs;
    *part_floats = floats;
}

int hk_attention(hk_pool *pool, const hk_attn_query *queries, int64_t n_queries,
                 int64_t n_head, int64_t n_kv_head, int64_t head_dim, int kv_type,
                 float scale, float softcap) {
    if (n_queries <= 0) return 0;
    if (n_head <= 0 || n_kv_head <= 0 || n_head % n_kv_head || head_dim <= 0 || (kv_type != HK_F16 && kv_type != HK_F32))
        return -1;
    const int64_t hpg = n_head / n_kv_head;
    const size_t esize = kv_type == HK_F16 ? 2 : 4;
    attn_ctx c = {
        .queries = queries, .n_head = n_head, .n_kv_head = n_kv_head, .head_dim = head_dim, .hpg = hpg,
        .kv_type = kv_type, .level = hk_pool_level(pool), .scale = scale, .softcap = softcap, .pool = pool,
        .esize = esize, .row_bytes = (size_t)(n_kv_head * head_dim) * esize,
    };
    // Tiles: a first pass counts them (and the split partials), the second stores them in the
    // pool's shared scratch, followed by the partials.
    int64_t n_tiles = 0, runs_total = 0, part_floats = 0;
    form_tiles(queries, n_queries, &c, NULL, &n_tiles, &runs_total, &part_floats);
    if (n_tiles == 0) return 0;
    const int nth = hk_pool_threads(pool);
    c.split = n_tiles * n_kv_head < (int64_t)SPLIT_ITEMS * nth && runs_total > n_tiles;
    const size_t tiles_bytes = (sizeof(attn_tile) * (size_t)n_tiles + 63) & ~(size_t)63;
    uint8_t *shared = hk_pool_shared(pool, tiles_bytes + (c.split ? sizeof(float) * (size_t)part_floats : 0));
    if (!shared) return -1;
    attn_tile *tiles = (attn_tile *)shared;
    form_tiles(queries, n_queries, &c, tiles, &n_tiles, &runs_total, &part_floats);
    int64_t items = 0, off = 0;
    for (int64_t i = 0; i < n_tiles; i++) {
        tiles[i].first_item = items;
        tiles[i].part_off = off;
        const int64_t n = n_kv_head * (c.split ? run_count(&tiles[i]) : 1);
        items += n;
        off += n * tiles[i].nq * hpg * (head_dim + 2);
    }
    c.partials = (float *)(shared + tiles_bytes);
    c.tiles = tiles;
    c.n_tiles = n_tiles;
    c.n_total_items = items;
    atomic_init(&c.failed, 0);
    atomic_init(&c.next, 0);
    hk_pool_run(pool, attn_job, &c);
    if (atomic_load(&c.failed)) return -1;
    if (!c.split) return 0;

    // Merge each split tile's runs in run order (the inline path's merge_run, same order).
    const int64_t hd = head_dim;
    float *state = hk_pool_scratch(pool, 0, sizeof(float) * (size_t)(hd + 2));
    if (!state) return -1;
    for (int64_t ti = 0; ti < n_tiles; ti++) {
        const attn_tile *t = &tiles[ti];
        const int64_t nruns = run_count(t), R = t->nq * hpg;
        for (int64_t g = 0; g < n_kv_head; g++) {
            for (int64_t r = 0; r < R; r++) {
                float M = -INFINITY, L = 0.0f, *A = state;
                for (int64_t run = 0; run < nruns; run++) {
                    const float *part = c.partials + t->part_off + ((g * nruns + run) * R + r) * (hd + 2);
                    merge_run(&M, &L, A, part[0], part[1], part + 2, hd);
                }
                finish_row(queries[t->q0 + r / hpg].out + (g * hpg + r % hpg) * hd, L, A, hd);
            }
        }
    }
    return 0;
}
