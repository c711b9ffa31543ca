// hk_attention: softmax(scale · q·Kᵀ) · V per query and head, with grouped-query heads sharing
// one K/V head.
//
// Work item = (query, KV head, run of positions). All query heads of a KV group are processed
// together so each K/V row is read once per group. Positions are visited in blocks of BLOCK with
// an online softmax (running max m, sum l, accumulator acc rescaled when m grows). Positions are
// split into runs of RUN whose partial (m, l, acc) are merged afterwards in run order
// (flash-decoding), so decode at long context feeds every thread. The split depends on the
// query's n_kv alone, never on the other queries of the call: a query's result is bit-identical
// whatever batch it comes in.
#include "internal.h"

#include <math.h>
#include <stdatomic.h>

#define BLOCK 64         // positions per online-softmax step (K/V block stays in L1)
#define RUN 256          // positions per work item (a multiple of BLOCK)

typedef struct {
    const hk_attn_query *queries;
    int64_t n_queries, n_head, n_kv_head, head_dim, hpg;  // hpg: query heads per KV head
    int kv_type, level;
    float scale, softcap;
    const int64_t *first;   // first item of each query (n_queries + 1 entries)
    float *partials;        // per item and head: m, l, acc[head_dim] (only for split queries)
    hk_pool *pool;
    _Alignas(64) _Atomic int64_t next;
} attn_ctx;

static inline int64_t runs_of(int64_t n_kv) {
    return n_kv <= RUN ? 1 : (n_kv + RUN - 1) / RUN;
}

// Per-thread working set of one item.
typedef struct {
    float *kf, *vf;  // BLOCK converted K and V rows (scalar path, F16 caches)
    float *s;        // hpg × BLOCK scores, then probabilities
    float *acc;      // hpg × head_dim
    float *m, *l;    // hpg running max and sum
} attn_work;

// ---- Block kernels: scores and weighted V sum for one block of positions --------------------------

// s[h][j] = scale · q_h · k_j for the hpg heads, j < nb.
static void scores_scalar(const attn_ctx *c, const float *q, const float *k, int64_t kstride, int64_t nb, float *s) {
    for (int64_t h = 0; h < c->hpg; h++) {
        const float *qh = q + h * c->head_dim;
        for (int64_t j = 0; j < nb; j++) {
            const float *kj = k + j * kstride;
            float dot = 0.0f;
            for (int64_t d = 0; d < c->head_dim; d++) dot += qh[d] * kj[d];
            s[h * BLOCK + j] = dot * c->scale;
        }
    }
}

// acc[h] += Σ_j p[h][j] · v_j
static void accum_scalar(const attn_ctx *c, const float *p, const float *v, int64_t vstride, int64_t nb, float *acc) {
    for (int64_t h = 0; h < c->hpg; h++) {
        float *a = acc + h * c->head_dim;
        for (int64_t j = 0; j < nb; j++) {
            const float pj = p[h * BLOCK + j];
            const float *vj = v + j * vstride;
            for (int64_t d = 0; d < c->head_dim; d++) a[d] += pj * vj[d];
        }
    }
}

// Softcap, running-max update and exponentiation of one block; returns nothing, updates m/l/acc.
static void softmax_block_scalar(const attn_ctx *c, attn_work *w, int64_t nb) {
    for (int64_t h = 0; h < c->hpg; h++) {
        float *s = w->s + h * BLOCK;
        float bmax = -INFINITY;
        for (int64_t j = 0; j < nb; j++) {
            if (c->softcap > 0) s[j] = c->softcap * tanhf(s[j] / c->softcap);
            bmax = fmaxf(bmax, s[j]);
        }
        const float m_new = fmaxf(w->m[h], bmax);
        const float corr = expf(w->m[h] - m_new);  // exp(-inf) = 0 on the first block
        float sum = 0.0f;
        for (int64_t j = 0; j < nb; j++) {
            s[j] = expf(s[j] - m_new);
            sum += s[j];
        }
        w->l[h] = w->l[h] * corr + sum;
        w->m[h] = m_new;
        float *a = w->acc + h * c->head_dim;
        for (int64_t d = 0; d < c->head_dim; d++) a[d] *= corr;
    }
}

#if HK_X86
// Eight dot products at once: acc[j] holds q·k_j in 8 lanes; a transpose-add reduces them to
// one vector of 8 scores.
HK_AVX2 static inline __m256 hsum8x8(const __m256 a[8]) {
    const __m256 s01 = _mm256_hadd_ps(a[0], a[1]), s23 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 s45 = _mm256_hadd_ps(a[4], a[5]), s67 = _mm256_hadd_ps(a[6], a[7]);
    const __m256 s0123 = _mm256_hadd_ps(s01, s23), s4567 = _mm256_hadd_ps(s45, s67);
    // Lanes: [0123 lo | 0123 hi] and [4567 lo | 4567 hi]; add the halves.
    const __m256 lo = _mm256_permute2f128_ps(s0123, s4567, 0x20);
    const __m256 hi = _mm256_permute2f128_ps(s0123, s4567, 0x31);
    return _mm256_add_ps(lo, hi);
}

// 8 K/V elements as floats, straight from an F16 or F32 cache row (F16 is a compile-time
// constant after inlining).
HK_AVX2 HK_INLINE __m256 load8(const void *base, int64_t i, int F16) {
    return F16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)base + i)))
               : _mm256_loadu_ps((const float *)base + i);
}

// s[h][j] = scale · q_h · k_j, eight positions at a time (hd a multiple of 8). Meanwhile the
// first head's pass prefetches pf_rows rows of pf_k and pf_v (the next block's), eight per step:
// at long context they come from memory, and the strided rows (one KV head's slice of each)
// leave the hardware prefetcher behind (30 layers' caches at depth 2048, 2 threads: 83 → 72 µs
// per layer).
HK_AVX2 HK_INLINE void scores_avx2(const attn_ctx *c, const float *q, const void *k, int64_t kstride, int64_t nb,
                                   const uint8_t *pf_k, const uint8_t *pf_v, int64_t pf_rows, float *s, int F16) {
    const int64_t hd = c->head_dim;
    const size_t row_bytes = (size_t)kstride * (F16 ? 2 : 4), slice = (size_t)hd * (F16 ? 2 : 4);
    const __m256 vscale = _mm256_set1_ps(c->scale);
    for (int64_t h = 0; h < c->hpg; h++) {
        const float *qh = q + h * hd;
        int64_t j = 0;
        for (; j + 8 <= nb; j += 8) {
            for (int64_t u = j; h == 0 && u < j + 8 && u < pf_rows; u++) {
                for (size_t off = 0; off < slice; off += 64) {
                    _mm_prefetch((const char *)pf_k + u * row_bytes + off, _MM_HINT_T0);
                    _mm_prefetch((const char *)pf_v + u * row_bytes + off, _MM_HINT_T0);
                }
            }
            __m256 acc[8];
            for (int u = 0; u < 8; u++) acc[u] = _mm256_setzero_ps();
            for (int64_t d = 0; d < hd; d += 8) {
                const __m256 qv = _mm256_loadu_ps(qh + d);
                for (int u = 0; u < 8; u++) acc[u] = _mm256_fmadd_ps(qv, load8(k, (j + u) * kstride + d, F16), acc[u]);
            }
            _mm256_storeu_ps(s + h * BLOCK + j, _mm256_mul_ps(hsum8x8(acc), vscale));
        }
        for (; j < nb; j++) {
            __m256 acc = _mm256_setzero_ps();
            for (int64_t d = 0; d < hd; d += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(qh + d), load8(k, j * kstride + d, F16), acc);
            s[h * BLOCK + j] = hk_hsum8(acc) * c->scale;
        }
    }
}

// acc[h] += Σ_j p[h][j] · v_j for NH heads at once, 16 dims per pass: each V element is loaded
// (and converted) once for all NH heads.
HK_AVX2 HK_INLINE void accum_heads(const float *p, const void *v, int64_t vstride, int64_t nb, int64_t hd,
                                   float *acc, int NH, int F16) {
    for (int64_t d = 0; d < hd; d += 16) {
        __m256 a0[4], a1[4];
        for (int h = 0; h < NH; h++) {
            a0[h] = _mm256_loadu_ps(acc + h * hd + d);
            a1[h] = _mm256_loadu_ps(acc + h * hd + d + 8);
        }
        for (int64_t j = 0; j < nb; j++) {
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

// hd a multiple of 16; heads in groups of up to four.
HK_AVX2 HK_INLINE void accum_avx2(const attn_ctx *c, const float *p, const void *v, int64_t vstride, int64_t nb,
                                  float *acc, int F16) {
    const int64_t hd = c->head_dim;
    for (int64_t h = 0; h < c->hpg; h += 4) {
        const int64_t nh = c->hpg - h < 4 ? c->hpg - h : 4;
        const float *ph = p + h * BLOCK;
        float *ah = acc + h * hd;
        switch (nh) {
        case 4: accum_heads(ph, v, vstride, nb, hd, ah, 4, F16); break;
        case 3: accum_heads(ph, v, vstride, nb, hd, ah, 3, F16); break;
        case 2: accum_heads(ph, v, vstride, nb, hd, ah, 2, F16); break;
        default: accum_heads(ph, v, vstride, nb, hd, ah, 1, F16); break;
        }
    }
}

HK_AVX2 static void softmax_block_avx2(const attn_ctx *c, attn_work *w, int64_t nb) {
    const __m256 cap = _mm256_set1_ps(c->softcap), icap = _mm256_set1_ps(1.0f / c->softcap);
    const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
    for (int64_t h = 0; h < c->hpg; h++) {
        float *s = w->s + h * BLOCK;
        // Pad the tail with -inf so the vector loops can run over whole registers.
        const int64_t nv = (nb + 7) & ~7;
        for (int64_t j = nb; j < nv; j++) s[j] = -INFINITY;
        __m256 vmax = _mm256_set1_ps(-INFINITY);
        for (int64_t j = 0; j < nv; j += 8) {
            __m256 x = _mm256_loadu_ps(s + j);
            if (c->softcap > 0) {
                // c · tanh(x / c), tanh(y) = 1 − 2 / (e^{2y} + 1)
                const __m256 e = hk_exp8(_mm256_mul_ps(_mm256_mul_ps(x, icap), two));
                x = _mm256_mul_ps(cap, _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one))));
                _mm256_storeu_ps(s + j, x);
            }
            vmax = _mm256_max_ps(vmax, x);
        }
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float m_new = fmaxf(w->m[h], _mm_cvtss_f32(m4));
        const float corr = expf(w->m[h] - m_new);
        const __m256 vm = _mm256_set1_ps(m_new);
        __m256 vsum = _mm256_setzero_ps();
        for (int64_t j = 0; j < nv; j += 8) {
            const __m256 e = hk_exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
            _mm256_storeu_ps(s + j, e);
            vsum = _mm256_add_ps(vsum, e);
        }
        w->l[h] = w->l[h] * corr + hk_hsum8(vsum);
        w->m[h] = m_new;
        if (corr != 1.0f) {
            float *a = w->acc + h * c->head_dim;
            for (int64_t d = 0; d < c->head_dim; d++) a[d] *= corr;
        }
    }
}
#endif

// Converts nb F16 rows (of head_dim, stride `stride` elements) to packed floats (scalar path).
static void rows_to_f32(const uint16_t *src, int64_t stride, int64_t nb, int64_t hd, float *dst) {
    for (int64_t j = 0; j < nb; j++)
        for (int64_t d = 0; d < hd; d++) dst[j * hd + d] = hk_f16_to_f32(src[j * stride + d]);
}

#if HK_X86
// One block of positions on the AVX2 path, reading the cache directly; pf_rows rows of K and V
// from pf_k / pf_v (the next block's) are prefetched meanwhile.
HK_AVX2 static void block_avx2(const attn_ctx *c, attn_work *w, const float *q, const void *k, const void *v,
                               int64_t stride, int64_t nb, const void *pf_k, const void *pf_v, int64_t pf_rows) {
    if (c->kv_type == HK_F16) {
        scores_avx2(c, q, k, stride, nb, pf_k, pf_v, pf_rows, w->s, 1);
        softmax_block_avx2(c, w, nb);
        accum_avx2(c, w->s, v, stride, nb, w->acc, 1);
    } else {
        scores_avx2(c, q, k, stride, nb, pf_k, pf_v, pf_rows, w->s, 0);
        softmax_block_avx2(c, w, nb);
        accum_avx2(c, w->s, v, stride, nb, w->acc, 0);
    }
}
#endif

// ---- Items -----------------------------------------------------------------------------------------

static void run_item(attn_ctx *c, int tid, int64_t item) {
    // Locate the query by binary search over the first-item table.
    int64_t lo = 0, hi = c->n_queries - 1;
    while (lo < hi) {
        const int64_t mid = (lo + hi + 1) / 2;
        if (c->first[mid] <= item) lo = mid; else hi = mid - 1;
    }
    const hk_attn_query *qr = &c->queries[lo];
    const int64_t nruns = runs_of(qr->n_kv), local = item - c->first[lo];
    const int64_t g = local / nruns, run = local % nruns;
    const int64_t p0 = run * RUN, p1 = p0 + RUN < qr->n_kv ? p0 + RUN : qr->n_kv;
    const int64_t hd = c->head_dim, hpg = c->hpg, row = c->n_kv_head * hd;

    float *mem = hk_pool_scratch(c->pool, tid, sizeof(float) * (size_t)(2 * BLOCK * hd + hpg * (BLOCK + hd + 2)));
    attn_work w = {.kf = mem, .vf = mem + BLOCK * hd, .s = mem + 2 * BLOCK * hd};
    w.acc = w.s + hpg * BLOCK;
    w.m = w.acc + hpg * hd;
    w.l = w.m + hpg;
    for (int64_t i = 0; i < hpg * hd; i++) w.acc[i] = 0.0f;
    for (int64_t h = 0; h < hpg; h++) { w.m[h] = -INFINITY; w.l[h] = 0.0f; }

    const float *q = qr->q + g * hpg * hd;
    const size_t esize = c->kv_type == HK_F16 ? 2 : 4;
    // The AVX2 block kernels need head_dim % 16 == 0 (every common model); others run scalar.
    const int avx2 = c->level >= HK_LEVEL_AVX2 && hd % 16 == 0;
    for (int64_t p = p0; p < p1; p += BLOCK) {
        const int64_t nb = p1 - p < BLOCK ? p1 - p : BLOCK;
        const void *k = (const uint8_t *)qr->k + (size_t)(p * row + g * hd) * esize;
        const void *v = (const uint8_t *)qr->v + (size_t)(p * row + g * hd) * esize;
#if HK_X86
        if (avx2) {
            const int64_t next = p + BLOCK, pf_rows = next + BLOCK < p1 ? BLOCK : p1 > next ? p1 - next : 0;
            const size_t pf_off = pf_rows > 0 ? (size_t)(BLOCK * row) * esize : 0;  // k and v are at position p
            block_avx2(c, &w, q, k, v, row, nb, (const uint8_t *)k + pf_off, (const uint8_t *)v + pf_off, pf_rows);
            continue;
        }
#endif
        (void)avx2;
        const float *kf = k, *vf = v;
        int64_t stride = row;
        if (c->kv_type == HK_F16) {
            rows_to_f32(k, row, nb, hd, w.kf);
            rows_to_f32(v, row, nb, hd, w.vf);
            kf = w.kf; vf = w.vf; stride = hd;
        }
        scores_scalar(c, q, kf, stride, nb, w.s);
        softmax_block_scalar(c, &w, nb);
        accum_scalar(c, w.s, vf, stride, nb, w.acc);
    }

    for (int64_t h = 0; h < hpg; h++) {
        const float *a = w.acc + h * hd;
        if (nruns == 1) {
            float *out = qr->out + (g * hpg + h) * hd;
            const float inv = w.l[h] > 0 ? 1.0f / w.l[h] : 0.0f;
            for (int64_t d = 0; d < hd; d++) out[d] = a[d] * inv;
        } else {
            float *part = c->partials + (item * hpg + h) * (hd + 2);
            part[0] = w.m[h];
            part[1] = w.l[h];
            memcpy(part + 2, a, sizeof(float) * (size_t)hd);
        }
    }
}

static void attn_job(void *p, int tid, int nth) {
    (void)nth;
    attn_ctx *c = p;
    const int64_t total = c->first[c->n_queries];
    for (;;) {
        const int64_t item = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (item >= total) break;
        run_item(c, tid, item);
    }
}

// Combines the runs of one split query: out = Σ e^{m_r − M} acc_r / Σ e^{m_r − M} l_r.
static void merge_query(const attn_ctx *c, int64_t qi) {
    const hk_attn_query *qr = &c->queries[qi];
    const int64_t nruns = runs_of(qr->n_kv), hd = c->head_dim, hpg = c->hpg;
    for (int64_t g = 0; g < c->n_kv_head; g++) {
        for (int64_t h = 0; h < hpg; h++) {
            float *out = qr->out + (g * hpg + h) * hd;
            const int64_t item0 = c->first[qi] + g * nruns;
            float M = -INFINITY, L = 0.0f;
            for (int64_t r = 0; r < nruns; r++) M = fmaxf(M, c->partials[((item0 + r) * hpg + h) * (hd + 2)]);
            for (int64_t d = 0; d < hd; d++) out[d] = 0.0f;
            for (int64_t r = 0; r < nruns; r++) {
                const float *part = c->partials + ((item0 + r) * hpg + h) * (hd + 2);
                const float f = part[0] == -INFINITY ? 0.0f : expf(part[0] - M);
                L += f * part[1];
                for (int64_t d = 0; d < hd; d++) out[d] += f * part[2 + d];
            }
            const float inv = L > 0 ? 1.0f / L : 0.0f;
            for (int64_t d = 0; d < hd; d++) out[d] *= inv;
        }
    }
}

void hk_attention(hk_pool *pool, const hk_attn_query *queries, int64_t n_queries,
                  int64_t n_head, int64_t n_kv_head, int64_t head_dim, int kv_type,
                  float scale, float softcap) {
    if (n_queries <= 0 || n_head <= 0 || n_kv_head <= 0 || n_head % n_kv_head) return;
    attn_ctx c = {
        .queries = queries, .n_queries = n_queries, .n_head = n_head, .n_kv_head = n_kv_head,
        .head_dim = head_dim, .hpg = n_head / n_kv_head, .kv_type = kv_type,
        .level = hk_pool_level(pool), .scale = scale, .softcap = softcap, .pool = pool,
    };
    // Item table and partial-result space (only split queries use the partials).
    int64_t total = 0, split_items = 0;
    for (int64_t i = 0; i < n_queries; i++) {
        const int64_t items = n_kv_head * runs_of(queries[i].n_kv);
        total += items;
        if (items > n_kv_head) split_items = total;
    }
    const size_t table = sizeof(int64_t) * (size_t)(n_queries + 1);
    const size_t parts = sizeof(float) * (size_t)(split_items * c.hpg * (head_dim + 2));
    uint8_t *shared = hk_pool_shared(pool, table + parts + 64);
    int64_t *first = (int64_t *)shared;
    total = 0;
    for (int64_t i = 0; i < n_queries; i++) {
        first[i] = total;
        total += n_kv_head * runs_of(queries[i].n_kv);
    }
    first[n_queries] = total;
    c.first = first;
    c.partials = (float *)(shared + ((table + 63) & ~(size_t)63));
    atomic_init(&c.next, 0);

    hk_pool_run(pool, attn_job, &c);
    for (int64_t i = 0; i < n_queries; i++)
        if (runs_of(queries[i].n_kv) > 1) merge_query(&c, i);
}
