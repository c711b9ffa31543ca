// hk_matmul: Y = X · Wᵀ.
//
// Quantized weights (every T): the activations are quantized once to int8 blocks (xq8 for the
// 32-element formats, xq8k for the k-quants) and each unpacked weight block is dotted with a group
// of activation rows in integers while it sits in registers/L1; T = 1 reads each weight byte from
// memory once. Threads split the weight rows (dynamic chunks). Every kernel of a format follows
// one accumulation order (dot_legacy_scalar, dot_kquant_scalar), so each output row is
// independent of T. Float weights: direct FMA kernels for small T; for large T each thread
// multiplies a tile of rows (dequantized F16/BF16 → float) with single-threaded OpenBLAS sgemm.
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>

// T at and above which float weights go through sgemm. Measured per thread on the 2-core Zen 5
// box: OpenBLAS sgemm on 128-row tiles gives ~75 GFLOP/s at T = 16, ~90 at 32 and ~120 from
// T ≈ 128; the float kernels run ~50–60 (FMA-latency bound). The int8 kernels beat sgemm for the
// quantized formats at every T (32-element formats: 112–119 GOP/s at any T with AVX2, 120–128 with
// AVX-VNNI, 300–500 at T = 512 with AVX-512 VNNI; k-quants on a loaded 2-core Zen 3, one thread,
// T = 512: Q4_K 89–96 GOP/s and Q6_K ~84 against ~62 for dequantize + sgemm), so they never use it.
#define GEMM_MIN_T_FLOAT 16
// Weight bytes per k-quant row chunk for T > 1 (see hk_matmul).
#define KQ_CHUNK_BYTES (128 * 1024)
// T from which the AVX-512 kernel of the 32-element formats unpacks weight-row pairs (see there);
// T = 1 stays on the 256-bit single-row kernel.
#define PAIRS_MIN_T 2
// Weight rows per sgemm tile: big enough to amortise OpenBLAS's packing of X, small enough that
// the float tile stays in L2.
#define GEMM_TILE_ROWS 128

// Four activation rows' blocks side by side (rows past T are zero), so one weight block meets
// all four with contiguous loads of their scales and sums.
typedef struct xq8x4 { float d[4], s[4]; int32_t sum[4]; int8_t qs[4][QK]; } xq8x4;
// Eight activation rows' blocks for the AVX-512 kernel (see wq8x2): lane 2t + r of each 16-lane
// vector holds row t's values for weight row r of a pair, so every value appears twice.
typedef struct xq8x8 { float d[16], s[16]; int32_t sum[16]; int8_t qs[8][64]; } xq8x8;

typedef struct mm_ctx mm_ctx;
typedef void (*rows_fn)(const mm_ctx *c, int tid, int64_t r0, int64_t r1);

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
    const struct xq8x4 *xq4;  // legacy formats, T > 1, AVX2/VNNI: groups of four rows interleaved
    const struct xq8x8 *xqp;  // legacy formats, T > 1, AVX-512: slabs of eight rows, lanes paired
    rows_fn fn;
    hk_pool *pool;
    int64_t chunk;
    _Alignas(64) _Atomic int64_t next;
};

// Activation rows in groups of four (xq8x4), for the AVX2/VNNI batched kernels.
static void interleave_fours(const uint8_t *xq, size_t xq_row_bytes, int64_t T, int64_t nb, xq8x4 *dst) {
    memset(dst, 0, sizeof(xq8x4) * (size_t)(((T + 3) / 4) * nb));  // zero rows pad the last group
    for (int64_t t = 0; t < T; t++) {
        const xq8 *row = (const xq8 *)(xq + t * xq_row_bytes);
        for (int64_t b = 0; b < nb; b++) {
            xq8x4 *o = &dst[(t / 4) * nb + b];
            o->d[t % 4] = row[b].d;
            o->s[t % 4] = row[b].s;
            o->sum[t % 4] = row[b].sum;
            memcpy(o->qs[t % 4], row[b].qs, QK);
        }
    }
}

// Activation rows in slabs of eight (xq8x8), for the AVX-512 batched kernel.
static void interleave_pairs(const uint8_t *xq, size_t xq_row_bytes, int64_t T, int64_t nb, xq8x8 *dst) {
    memset(dst, 0, sizeof(xq8x8) * (size_t)(((T + 7) / 8) * nb));  // zero rows pad the last slab
    for (int64_t t = 0; t < T; t++) {
        const xq8 *row = (const xq8 *)(xq + t * xq_row_bytes);
        for (int64_t b = 0; b < nb; b++) {
            xq8x8 *o = &dst[(t / 8) * nb + b];
            const int lane = 2 * (int)(t % 8);
            o->d[lane] = o->d[lane + 1] = row[b].d;
            o->s[lane] = o->s[lane + 1] = row[b].s;
            o->sum[lane] = o->sum[lane + 1] = row[b].sum;
            for (int j = 0; j < 8; j++) {
                memcpy(&o->qs[j][4 * lane], row[b].qs + 4 * j, 4);
                memcpy(&o->qs[j][4 * lane + 4], row[b].qs + 4 * j, 4);
            }
        }
    }
}

// ---- Scalar dot products (weight row · one quantized activation row) -----------------------------

// The canonical order every legacy kernel follows, so that a (weight row, activation row) result
// is bit-identical whichever kernel, T or thread computes it: per block the exact integer sum of
// signed level · activation products (kernels that work with unsigned levels subtract the offset
// times Σq in integers), then acc += (d·dx)·isum and macc += m·s (Q4_1/Q5_1; m = 0 otherwise) as
// single-rounding FMAs in block order; result acc + macc. As in llama.cpp, the offsets of
// Q4_0/Q5_0 never reach the floats, where Σ(q·x) and −8·Σx would largely cancel.
static float dot_legacy_scalar(int type, const uint8_t *w, const xq8 *x, int64_t nb) {
    float acc = 0.0f, macc = 0.0f;
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
        const float dd = d * x[b].d;
        acc = fmaf(dd, (float)isum, acc);
        macc = fmaf(m, x[b].s, macc);
    }
    return acc + macc;
}

// k-quants, in the canonical order every k-quant kernel follows (see matmul_kquant_x86.h): per
// super-block the exact integer sums isum = Σ sc·q·x (Q6_K: with its −32 offset) and msum = Σ m·Σx
// (Q4_K/Q5_K), then acc += (d·dx)·isum and macc += (dmin·dx)·msum as single-rounding FMAs in block
// order; result acc − macc.
static float dot_kquant_scalar(int type, const uint8_t *w, const xq8k *x, int64_t nb) {
    float acc = 0.0f, macc = 0.0f;
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
            acc = fmaf(hk_f16_to_f32(blk->d) * x[b].d, (float)isum, acc);
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
        acc = fmaf(d * x[b].d, (float)isum, acc);
        macc = fmaf(dmin * x[b].d, (float)msum, macc);
    }
    return acc - macc;
}

static float load_w_scalar(int type, const uint8_t *w, int64_t i) {
    switch (type) {
    case HK_F16: return hk_f16_to_f32(((const uint16_t *)w)[i]);
    case HK_BF16: return hk_bf16_to_f32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

static void rows_scalar(const mm_ctx *c, int tid, int64_t r0, int64_t r1) {
    (void)tid;
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
#include "matmul_kquant_x86.h"
#include "matmul_x86.h"
#undef KTARGET
#undef KNAME
#undef MUL_SUM

#define KTARGET __attribute__((target("avx2,fma,f16c,avxvnni")))
#define KNAME(x) x##_vnni
#define MUL_SUM(u, s) _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s)
#include "matmul_kquant_x86.h"
#include "matmul_x86.h"
#undef KTARGET
#undef KNAME
#undef MUL_SUM

// AVX-512 VNNI: batched rows of the 32-element formats (T = 1 stays on the 256-bit kernel,
// memory-bound there).
//
// T ≥ PAIRS_MIN_T, with no horizontal sums: each thread unpacks eight weight rows at a time into four pairs
// whose 4-byte groups are interleaved (wq8x2), so one 64-bit broadcast [row 0 group j | row 1
// group j] meets eight activation rows' group j (xq8x8: lane 2t + r holds activation row t for
// weight row r) in one dpbusd, and every lane ends up with one (activation row, weight row) dot
// product of the block. Four pairs share each activation load; two int32 chains per pair hide the
// dpbusd latency. The unpacked rows stay in the thread's scratch for the next eight activation
// rows. The unpacking costs about as much as the eight rows' dot products, yet already at T = 2 this
// matches the in-register kernel it replaced (whose T-dependent lane sums broke bit-identical rows;
// one-thread whole SmolLM2 step: Q4_1 T = 2 and 4 as fast, Q8_0 ~20% slower; at T = 8 Q4_1 runs
// ~1.7× and Q8_0 ~1.5× as fast as the 256-bit kernel).
#define HK_AVX512 __attribute__((target("avx2,fma,f16c,avxvnni,avx512f,avx512bw,avx512vnni")))

// One block of a weight-row pair: q[j] = [row 0 group j | row 1 group j] (group j = elements
// 4j..4j+3) as unsigned levels, and each row's scale d and offset m (value = d·q + m).
typedef struct { uint8_t q[8][8]; float d[2], m[2]; } wq8x2;

// [d0 d1 m0 m1] of the blocks b0, b1 of two rows. Every block starts with its f16 scale d; Q4_1/Q5_1
// follow it with the f16 offset m; the others have m = 0 (dot_pairs removes their integer offsets).
HK_AVX512 HK_INLINE __m128 pair_scales(int type, const uint8_t *b0, const uint8_t *b1) {
    const __m128 dm = _mm_cvtph_ps(_mm_setr_epi32((int)load_u32(b0), (int)load_u32(b1), 0, 0));
    if (type == HK_Q4_1 || type == HK_Q5_1) return _mm_shuffle_ps(dm, dm, _MM_SHUFFLE(3, 1, 2, 0));
    return _mm_shuffle_ps(dm, _mm_setzero_ps(), _MM_SHUFFLE(0, 0, 2, 0));
}

// Weight rows r..r+7 → dst[4b + p] (pair p = rows r+2p, r+2p+1); rows from r_end on repeat the
// last row (their results are discarded). Each pair's block is assembled in one zmm and put into
// group order with one permute.
HK_AVX512 HK_INLINE void unpack_pairs(int type, const mm_ctx *c, int64_t r, int64_t r_end, wq8x2 *dst) {
    const uint8_t *w[8];
    for (int i = 0; i < 8; i++) w[i] = c->W + (r + i < r_end ? r + i : r_end - 1) * c->row_bytes;
    const size_t block_bytes = (size_t)hk_block_bytes(type);
    // Output dword 2j + r takes group j of row r from rows laid out [row 0 | row 1] in element order,
    // or, for the 4-bit formats, from 16-byte lanes [row 0 low nibbles | row 1 low | row 0 high | row 1 high].
    const __m512i element_order = _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
    const __m512i nibble_order = _mm512_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15);
    for (int64_t b = 0; b < c->nb; b++) {
        for (int p = 0; p < 4; p++) {
            const uint8_t *b0 = w[2 * p] + b * block_bytes, *b1 = w[2 * p + 1] + b * block_bytes;
            wq8x2 *o = dst + 4 * b + p;
            __m512i q;
            if (type == HK_Q4_0 || type == HK_Q4_1) {
                const size_t qs = type == HK_Q4_0 ? offsetof(block_q4_0, qs) : offsetof(block_q4_1, qs);
                const __m256i packed = _mm256_loadu2_m128i((const __m128i *)(b1 + qs), (const __m128i *)(b0 + qs));
                q = _mm512_inserti64x4(_mm512_castsi256_si512(packed), _mm256_srli_epi16(packed, 4), 1);
                q = _mm512_permutexvar_epi32(nibble_order, _mm512_and_si512(q, _mm512_set1_epi8(0x0F)));
            } else if (type == HK_Q8_0) {  // signed: offset to unsigned, Σqx = Σ(q+128)x − 128Σx
                const size_t qs = offsetof(block_q8_0, qs);
                q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(b0 + qs))),
                                       _mm256_loadu_si256((const __m256i *)(b1 + qs)), 1);
                q = _mm512_permutexvar_epi32(element_order, _mm512_xor_si512(q, _mm512_set1_epi8((char)0x80)));
            } else {
                float d, m;  // pair_scales reads them again
                const __m256i q0 = legacy_unpack_vnni(type, w[2 * p], b, &d, &m);
                const __m256i q1 = legacy_unpack_vnni(type, w[2 * p + 1], b, &d, &m);
                q = _mm512_permutexvar_epi32(element_order, _mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1));
            }
            _mm512_storeu_si512(o->q, q);
            _mm_storeu_ps(o->d, pair_scales(type, b0, b1));  // d and m are adjacent
        }
    }
}

HK_AVX512 HK_INLINE __m512i broadcast_u64(const void *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return _mm512_set1_epi64((long long)v);
}

// Four unpacked pairs · one slab of eight activation rows: out[p] lane 2t + r = Y[t][row 2p + r],
// each lane accumulated in the canonical order (see dot_legacy_scalar).
// Meanwhile pf_bytes from pf (weight rows of a later group) are prefetched, spread over the
// blocks: the unpacking's scratch stores fill the store buffer and keep its own loads from
// running ahead, so without this the weights' memory latency is not hidden.
HK_AVX512 HK_INLINE void dot_pairs(int type, const wq8x2 *w, const xq8x8 *x, int64_t nb, const uint8_t *pf,
                                   int64_t pf_bytes, __m512 out[4]) {
    const int64_t pf_step = (pf_bytes / nb + 64) & ~(int64_t)63;
    __m512 acc[4], macc[4];
    for (int p = 0; p < 4; p++) acc[p] = macc[p] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        for (int64_t off = b * pf_step; off < (b + 1) * pf_step && off < pf_bytes; off += 64)
            _mm_prefetch((const char *)(pf + off), _MM_HINT_T0);
        const wq8x2 *wb = w + 4 * b;
        const xq8x8 *xb = x + b;
        __m512i s0[4], s1[4];
        for (int p = 0; p < 4; p++) s0[p] = s1[p] = _mm512_setzero_si512();
        for (int k = 0; k < 8; k += 2) {
            const __m512i x0 = _mm512_loadu_si512(xb->qs[k]), x1 = _mm512_loadu_si512(xb->qs[k + 1]);
            for (int p = 0; p < 4; p++) {
                s0[p] = _mm512_dpbusd_epi32(s0[p], broadcast_u64(wb[p].q[k]), x0);
                s1[p] = _mm512_dpbusd_epi32(s1[p], broadcast_u64(wb[p].q[k + 1]), x1);
            }
        }
        const __m512 xd = _mm512_loadu_ps(xb->d), xs = _mm512_loadu_ps(xb->s);
        // Unsigned levels of Q4_0/Q5_0/Q8_0: Σqx = Σ(q + offset)x − offset·Σx, offset = 2^shift.
        const int shift = type == HK_Q4_0 ? 3 : type == HK_Q5_0 ? 4 : type == HK_Q8_0 ? 7 : 0;
        const __m512i offset_sum = _mm512_slli_epi32(_mm512_loadu_si512(xb->sum), (unsigned)shift);
        for (int p = 0; p < 4; p++) {
            const __m512 wd = _mm512_castsi512_ps(broadcast_u64(wb[p].d));
            const __m512 wm = _mm512_castsi512_ps(broadcast_u64(wb[p].m));
            __m512i isum = _mm512_add_epi32(s0[p], s1[p]);
            if (shift) isum = _mm512_sub_epi32(isum, offset_sum);
            acc[p] = _mm512_fmadd_ps(_mm512_mul_ps(wd, xd), _mm512_cvtepi32_ps(isum), acc[p]);
            macc[p] = _mm512_fmadd_ps(wm, xs, macc[p]);
        }
    }
    for (int p = 0; p < 4; p++) out[p] = _mm512_add_ps(acc[p], macc[p]);
}

// Rows r0..r1 for T ≥ PAIRS_MIN_T: slabs of eight activation rows outside the groups of eight
// weight rows; the first slab unpacks each group into the thread's scratch, later slabs reuse it.
HK_AVX512 HK_INLINE void rows_pairs(int type, const mm_ctx *c, int tid, int64_t r0, int64_t r1) {
    const int64_t groups = (r1 - r0 + 7) / 8, slabs = (c->T + 7) / 8;
    wq8x2 *w = hk_pool_scratch(c->pool, tid, sizeof(wq8x2) * (size_t)(4 * c->nb * groups));
    for (int64_t s = 0; s < slabs; s++) {
        for (int64_t g = 0; g < groups; g++) {
            const int64_t r = r0 + 8 * g;
            wq8x2 *wg = w + 4 * c->nb * g;
            if (s == 0) unpack_pairs(type, c, r, r1, wg);
            // The group after next: prefetching only one group ahead left half the bandwidth unused.
            const int64_t next = r + 16 < c->rows ? r + 16 : c->rows;
            const int64_t next_end = s > 0 ? next : (r + 24 < c->rows ? r + 24 : c->rows);
            __m512 acc[4];
            dot_pairs(type, wg, c->xqp + s * c->nb, c->nb, c->W + next * c->row_bytes,
                      (next_end - next) * (int64_t)c->row_bytes, acc);
            float out[4][16];
            for (int p = 0; p < 4; p++) _mm512_storeu_ps(out[p], acc[p]);
            // Row t of the slab: both weight rows of each pair, i.e. 8-byte copies.
            for (int64_t t = 8 * s; t < c->T && t < 8 * s + 8; t++) {
                float *y = c->Y + t * c->ys + r;
                const int64_t lane = 2 * (t - 8 * s);
                for (int p = 0; p < 4 && r + 2 * p < r1; p++) {
                    if (r + 2 * p + 1 < r1) memcpy(y + 2 * p, &out[p][lane], 2 * sizeof(float));
                    else y[2 * p] = out[p][lane];
                }
            }
        }
    }
}

#define KLEGACY512(name, TYPE)                                                                       \
    HK_AVX512 static void name##_512(const mm_ctx *c, int tid, int64_t r0, int64_t r1) {             \
        if (c->T < PAIRS_MIN_T) name##_vnni(c, tid, r0, r1);                                         \
        else rows_pairs(TYPE, c, tid, r0, r1);                                                       \
    }

KLEGACY512(rows_q4_0, HK_Q4_0)
KLEGACY512(rows_q4_1, HK_Q4_1)
KLEGACY512(rows_q5_0, HK_Q5_0)
KLEGACY512(rows_q5_1, HK_Q5_1)
KLEGACY512(rows_q8_0, HK_Q8_0)
#undef KLEGACY512

// k-quants: the 256-bit kernels of matmul_kquant_x86.h compiled for AVX-512 (AVX-512VL's 32 vector
// registers let one unpacked weight block meet 16 activation rows instead of 8).
#define KTARGET __attribute__((target("avx2,fma,f16c,avxvnni,avx512f,avx512bw,avx512vl,avx512vnni")))
#define KNAME(x) x##_512
#define KQ_TOKENS 16
#include "matmul_kquant_x86.h"
#undef KTARGET
#undef KNAME

static rows_fn pick_rows_512(int type) {
    switch (type) {
    case HK_Q4_K: return rows_q4_K_512;
    case HK_Q5_K: return rows_q5_K_512;
    case HK_Q6_K: return rows_q6_K_512;
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
    (void)nth;
    mm_ctx *c = p;
    for (;;) {
        const int64_t r0 = atomic_fetch_add_explicit(&c->next, c->chunk, memory_order_relaxed);
        if (r0 >= c->rows) break;
        c->fn(c, tid, r0, r0 + c->chunk < c->rows ? r0 + c->chunk : c->rows);
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

// Activation rows quantized in parallel (large T: the quantization would otherwise run on the
// caller's thread alone, a sizeable serial part of a prefill matmul).
typedef struct { const mm_ctx *c; uint8_t *xq; int kq; } quant_ctx;
#define QUANT_ROWS_PER_TASK 8

static void quant_task(void *p, int64_t i) {
    const quant_ctx *q = p;
    const mm_ctx *c = q->c;
    for (int64_t t = i * QUANT_ROWS_PER_TASK; t < c->T && t < (i + 1) * QUANT_ROWS_PER_TASK; t++) {
        if (q->kq) hk_quantize_xq8k(c->level, c->X + t * c->xs, (xq8k *)(q->xq + t * c->xq_row_bytes), c->cols);
        else hk_quantize_xq8(c->level, c->X + t * c->xs, (xq8 *)(q->xq + t * c->xq_row_bytes), c->cols);
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
    const int is_float = wtype == HK_F32 || wtype == HK_F16 || wtype == HK_BF16;
    if (is_float && T >= GEMM_MIN_T_FLOAT) {
        openblas_set_num_threads(1);  // our threads split the rows; OpenBLAS must not fork again
        c.chunk = GEMM_TILE_ROWS;
        hk_pool_run(pool, gemm_job, &c);
        return;
    }
    const int kq = wtype == HK_Q4_K || wtype == HK_Q5_K || wtype == HK_Q6_K;
    if (!is_float) {
        c.xq_row_bytes = kq ? (size_t)(cols / QK_K) * sizeof(xq8k) : (size_t)(cols / QK) * sizeof(xq8);
        // Legacy formats with T > 1 on SIMD also get the rows interleaved for their batched kernel.
        const int pairs = !kq && c.level >= HK_LEVEL_AVX512 && T >= PAIRS_MIN_T;
        const int fours = !kq && c.level >= HK_LEVEL_AVX2 && T > 1 && !pairs;
        const size_t xq_bytes = (c.xq_row_bytes * (size_t)T + 63) & ~(size_t)63;
        const size_t layout_bytes = pairs ? sizeof(xq8x8) * (size_t)(((T + 7) / 8) * c.nb)
                                  : fours ? sizeof(xq8x4) * (size_t)(((T + 3) / 4) * c.nb) : 0;
        uint8_t *xq = hk_pool_shared(pool, xq_bytes + layout_bytes);
        quant_ctx qc = {.c = &c, .xq = xq, .kq = kq};
        const int64_t tasks = (T + QUANT_ROWS_PER_TASK - 1) / QUANT_ROWS_PER_TASK;
        if (tasks > 1) hk_parallel_for(pool, tasks, quant_task, &qc);
        else quant_task(&qc, 0);
        c.xq = xq;
        if (pairs) {
            interleave_pairs(xq, c.xq_row_bytes, T, c.nb, (xq8x8 *)(xq + xq_bytes));
            c.xqp = (const xq8x8 *)(xq + xq_bytes);
        } else if (fours) {
            interleave_fours(xq, c.xq_row_bytes, T, c.nb, (xq8x4 *)(xq + xq_bytes));
            c.xq4 = (const xq8x4 *)(xq + xq_bytes);
        }
    }
    c.fn = pick_rows(wtype, c.level);
    // About 4 chunks per thread, in multiples of 16 rows; for T > 1 at most 64 rows, so a chunk's
    // weights (and the AVX-512 kernel's unpacked copy in scratch) stay cached while the activation
    // slabs pass over them. K-quant chunks for T > 1 also stay within KQ_CHUNK_BYTES of weights
    // (L2), as every group of four activation rows passes over the whole chunk.
    int64_t chunk = (rows + 4 * nth - 1) / (4 * nth);
    chunk = (chunk + 15) & ~(int64_t)15;
    if (T > 1 && chunk > 64) chunk = 64;
    if (T > 1 && kq) {
        int64_t cap = (int64_t)(KQ_CHUNK_BYTES / c.row_bytes) & ~(int64_t)3;
        if (cap < 4) cap = 4;
        if (chunk > cap) chunk = cap;
    }
    c.chunk = chunk;
    hk_pool_run(pool, rows_job, &c);
}
