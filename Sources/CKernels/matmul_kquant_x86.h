// x86 k-quant (Q4_K, Q5_K, Q6_K) row kernels of hk_matmul, included by matmul.c once per 256-bit
// instruction-set level with KTARGET (function target attribute) and KNAME(x) (suffixed name).
//
// Every T uses the same integer arithmetic: weights unpacked to unsigned 4/5/6-bit levels,
// _mm256_maddubs_epi16 against the int8 activations (xq8k), _mm256_madd_epi16 with the sub-block
// scale (one instruction for the scale and the pair sum), int32 accumulation over the super-block.
// The k-quant minimums (Q4_K/Q5_K: value = d·sc·q − dmin·m) and Q6_K's −32 offset meet the
// activations only through the xq8k 16-element sums: one madd per super-block and activation row.
// Each super-block's two integer sums are then reduced exactly to scalars (isum, msum), so the float
// arithmetic is the canonical order of dot_kquant_scalar, whatever the kernel, T or SIMD level:
//   acc = fma(d·dx, isum, acc);  macc = fma(dmin·dx, msum, macc);  result acc − macc.

// Activation rows per weight-row pass for T > 1 (one unpacked block meets them all).
#ifndef KQ_TOKENS
#define KQ_TOKENS 8
#endif
#define KQ_CASE(TYPE, n) case n: KNAME(kq_rows)(TYPE, w, c->nb, x, xs, n, out); break;
#if KQ_TOKENS == 16
#define KQ_CASES(TYPE) KQ_CASE(TYPE, 16) KQ_CASE(TYPE, 15) KQ_CASE(TYPE, 14) KQ_CASE(TYPE, 13) KQ_CASE(TYPE, 12) \
    KQ_CASE(TYPE, 11) KQ_CASE(TYPE, 10) KQ_CASE(TYPE, 9) KQ_CASE(TYPE, 8) KQ_CASE(TYPE, 7) KQ_CASE(TYPE, 6)     \
    KQ_CASE(TYPE, 5) KQ_CASE(TYPE, 4) KQ_CASE(TYPE, 3) KQ_CASE(TYPE, 2)
#elif KQ_TOKENS == 8
#define KQ_CASES(TYPE) KQ_CASE(TYPE, 8) KQ_CASE(TYPE, 7) KQ_CASE(TYPE, 6) KQ_CASE(TYPE, 5) \
    KQ_CASE(TYPE, 4) KQ_CASE(TYPE, 3) KQ_CASE(TYPE, 2)
#else
#define KQ_CASES(TYPE) KQ_CASE(TYPE, 4) KQ_CASE(TYPE, 3) KQ_CASE(TYPE, 2)
#endif

// Byte-pair shuffle that broadcasts int16 lane k of each 128-bit half.
KTARGET HK_INLINE __m256i KNAME(kq_lane16)(__m256i v, int k) {
    return _mm256_shuffle_epi8(v, _mm256_set1_epi16((short)(((2 * k + 1) << 8) | (2 * k))));
}

// Q4_K/Q5_K 12-byte scales → sc: the 8 sub-block scales as int16 in both 128-bit halves;
// mn: the 8 minimums as int16 pairs [m0 m0 m1 m1 … m7 m7] (matching the 16 bsums).
// Bytes 0-3 hold the low 6 bits of scales 0-3 (top 2 bits: high bits of scales 4-7), bytes 4-7
// the same for the minimums, bytes 8-11 the low nibbles of scales 4-7 and (high nibbles) mins 4-7.
KTARGET HK_INLINE void KNAME(kq_scales_k4)(const uint8_t *s, __m256i *sc, __m256i *mn) {
    const uint32_t w0 = load_u32(s), w1 = load_u32(s + 4), w2 = load_u32(s + 8);
    const uint32_t sc_lo = w0 & 0x3f3f3f3fu, m_lo = w1 & 0x3f3f3f3fu;
    const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4);
    const uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4);
    const __m128i bytes = _mm_setr_epi32((int)sc_lo, (int)sc_hi, (int)m_lo, (int)m_hi);
    *sc = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(bytes));
    *mn = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(bytes, bytes));
}

// One super-block of one weight row against NT activation rows (x[t·xstride] is row t's block):
// isum[t] (8 int32 lanes, scaled level · activation products) and msum[t] (Q4_K/Q5_K: m_j · Σx_j;
// Q6_K: nothing, its offset is folded into isum). Returns d and dmin of the block.
KTARGET HK_INLINE void KNAME(kq_block)(int type, const uint8_t *wb, const xq8k *x, int64_t xstride, int NT,
                                       __m256i *isum, __m256i *msum, float *d, float *dmin) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int t = 0; t < NT; t++) isum[t] = msum[t] = _mm256_setzero_si256();
    if (type == HK_Q6_K) {
        const block_q6_K *blk = (const block_q6_K *)wb;
        *d = f16(blk->d);
        *dmin = 0.0f;
        const __m256i m2 = _mm256_set1_epi8(3);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
        for (int half = 0; half < 2; half++) {
            const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * half));
            const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(blk->ql + 64 * half + 32));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk->qh + 32 * half));
            // Scales 8·half … 8·half+7 in both 128-bit halves; group g of 32 elements uses scale
            // 8·half + 2g in its low half (elements 0-15) and 8·half + 2g + 1 in its high half.
            const __m256i shalf = half ? _mm256_permute4x64_epi64(sc16, 0xEE) : _mm256_permute4x64_epi64(sc16, 0x44);
            for (int g = 0; g < 4; g++) {
                const __m256i lo = _mm256_and_si256(g & 2 ? _mm256_srli_epi16(g & 1 ? ql1 : ql0, 4) : (g & 1 ? ql1 : ql0), m4);
                const __m256i q = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * g), m2), 4));
                const __m256i s = _mm256_blend_epi32(KNAME(kq_lane16)(shalf, 2 * g), KNAME(kq_lane16)(shalf, 2 * g + 1), 0xF0);
                for (int t = 0; t < NT; t++) {
                    const __m256i xv = _mm256_loadu_si256((const __m256i *)(x[t * xstride].qs + 128 * half + 32 * g));
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(_mm256_maddubs_epi16(q, xv), s));
                }
            }
        }
        // Levels are stored + 32: Σ sc·(q − 32)·x = Σ sc·q·x − 32·Σ_j sc_j·Σx_j.
        for (int t = 0; t < NT; t++) {
            const __m256i bs = _mm256_loadu_si256((const __m256i *)x[t * xstride].bsums);
            isum[t] = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5));
        }
        return;
    }
    const uint8_t *scales, *qs, *qhp = NULL;
    if (type == HK_Q4_K) {
        const block_q4_K *blk = (const block_q4_K *)wb;
        scales = blk->scales; qs = blk->qs;
        *d = f16(blk->d); *dmin = f16(blk->dmin);
    } else {
        const block_q5_K *blk = (const block_q5_K *)wb;
        scales = blk->scales; qs = blk->qs; qhp = blk->qh;
        *d = f16(blk->d); *dmin = f16(blk->dmin);
    }
    __m256i sc, mn;
    KNAME(kq_scales_k4)(scales, &sc, &mn);
    const __m256i qh = qhp ? _mm256_loadu_si256((const __m256i *)qhp) : _mm256_setzero_si256();
    const __m256i one = _mm256_set1_epi8(1);
    for (int j = 0; j < 4; j++) {  // 64 elements: sub-block 2j (low nibbles), 2j + 1 (high nibbles)
        const __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * j));
        __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if (qhp) {
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j), one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * j + 1), one), 4));
        }
        const __m256i slo = KNAME(kq_lane16)(sc, 2 * j), shi = KNAME(kq_lane16)(sc, 2 * j + 1);
        for (int t = 0; t < NT; t++) {
            const int8_t *xs = x[t * xstride].qs + 64 * j;
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)xs), x1 = _mm256_loadu_si256((const __m256i *)(xs + 32));
            isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), slo),
                                                                 _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), shi)));
        }
    }
    for (int t = 0; t < NT; t++)
        msum[t] = _mm256_madd_epi16(mn, _mm256_loadu_si256((const __m256i *)x[t * xstride].bsums));
}

// Exact lane sums of four int32 vectors: [Σa Σb Σc Σd].
KTARGET HK_INLINE __m128i KNAME(kq_hsum4)(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

// One weight row · NT ≤ KQ_TOKENS activation rows (x: row 0's first block, rows xstride blocks
// apart), in fours: out[t].
KTARGET HK_INLINE void KNAME(kq_rows)(int type, const uint8_t *w, int64_t nb, const xq8k *x, int64_t xstride, int NT,
                                      float *out) {
    const int64_t bb = hk_block_bytes(type);
    const int NG = (NT + 3) / 4;
    __m128 acc[KQ_TOKENS / 4], macc[KQ_TOKENS / 4];
    for (int g = 0; g < NG; g++) acc[g] = macc[g] = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        __m256i is[KQ_TOKENS], ms[KQ_TOKENS];
        float d, dmin;
        KNAME(kq_block)(type, w + b * bb, x + b, xstride, NT, is, ms, &d, &dmin);
        for (int t = NT; t < 4 * NG; t++) is[t] = ms[t] = _mm256_setzero_si256();
        for (int g = 0; g < NG; g++) {
            float dxa[4] = {0, 0, 0, 0};
            for (int t = 4 * g; t < NT && t < 4 * g + 4; t++) dxa[t - 4 * g] = x[t * xstride + b].d;
            const __m128 dx = _mm_loadu_ps(dxa);
            const __m256i *i4 = is + 4 * g, *m4 = ms + 4 * g;
            acc[g] = _mm_fmadd_ps(_mm_mul_ps(_mm_set1_ps(d), dx), _mm_cvtepi32_ps(KNAME(kq_hsum4)(i4[0], i4[1], i4[2], i4[3])), acc[g]);
            if (type != HK_Q6_K)
                macc[g] = _mm_fmadd_ps(_mm_mul_ps(_mm_set1_ps(dmin), dx),
                                       _mm_cvtepi32_ps(KNAME(kq_hsum4)(m4[0], m4[1], m4[2], m4[3])), macc[g]);
        }
    }
    float o[KQ_TOKENS];
    for (int g = 0; g < NG; g++) _mm_storeu_ps(o + 4 * g, _mm_sub_ps(acc[g], macc[g]));
    for (int t = 0; t < NT; t++) out[t] = o[t];
}

// Two weight rows · one activation row (decode). Lanes [row 0 isum, row 0 msum, row 1 isum, row 1
// msum] share one reduction and one FMA per block. The caller passes pf, two rows a few rows ahead,
// to be prefetched meanwhile (two interleaved row streams defeat the hardware prefetcher).
KTARGET HK_INLINE void KNAME(kq_row2)(int type, const uint8_t *w0, const uint8_t *w1, int64_t nb, const xq8k *x,
                                      const uint8_t *pf, float out[2]) {
    const int64_t bb = hk_block_bytes(type);
    __m128 acc = _mm_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        for (int64_t off = 2 * b * bb; off < 2 * (b + 1) * bb; off += 64) _mm_prefetch((const char *)pf + off, _MM_HINT_T0);
        __m256i is0, ms0, is1, ms1;
        float d0, m0, d1, m1;
        KNAME(kq_block)(type, w0 + b * bb, x + b, 0, 1, &is0, &ms0, &d0, &m0);
        KNAME(kq_block)(type, w1 + b * bb, x + b, 0, 1, &is1, &ms1, &d1, &m1);
        const __m128 sums = _mm_cvtepi32_ps(KNAME(kq_hsum4)(is0, ms0, is1, ms1));
        acc = _mm_fmadd_ps(_mm_mul_ps(_mm_setr_ps(d0, m0, d1, m1), _mm_set1_ps(x[b].d)), sums, acc);
    }
    float o[4];
    _mm_storeu_ps(o, acc);
    out[0] = o[0] - o[1];
    out[1] = o[2] - o[3];
}

#define KQ_PREFETCH_ROWS 8
// Rows r0..r1: T = 1 in row pairs (an odd last row pairs with itself); T > 1 in groups of four
// activation rows outside the weight rows, so a group's activations stay in L1 while the chunk's
// weight rows (L2) pass over them.
#define KKQUANT(name, TYPE)                                                                          \
    KTARGET static void KNAME(name)(const mm_ctx *c, int tid, int64_t r0, int64_t r1) {              \
        (void)tid;                                                                                   \
        const xq8k *xq = (const xq8k *)c->xq;                                                        \
        if (c->T == 1) {                                                                             \
            for (int64_t r = r0; r < r1; r += 2) {                                                   \
                const int64_t r_next = r + 1 < r1 ? r + 1 : r;                                       \
                const int64_t r_pf = r + KQ_PREFETCH_ROWS + 1 < c->rows ? r + KQ_PREFETCH_ROWS : r;  \
                float out[2];                                                                        \
                KNAME(kq_row2)(TYPE, c->W + r * c->row_bytes, c->W + r_next * c->row_bytes, c->nb, xq, \
                               c->W + r_pf * c->row_bytes, out);                                     \
                c->Y[r] = out[0];                                                                    \
                c->Y[r_next] = out[1];                                                               \
            }                                                                                        \
            return;                                                                                  \
        }                                                                                            \
        const int64_t xs = (int64_t)(c->xq_row_bytes / sizeof(xq8k));                                \
        for (int64_t t0 = 0; t0 < c->T; t0 += KQ_TOKENS) {                                           \
            const int nt = c->T - t0 < KQ_TOKENS ? (int)(c->T - t0) : KQ_TOKENS;                     \
            const xq8k *x = xq + t0 * xs;                                                            \
            for (int64_t r = r0; r < r1; r++) {                                                      \
                const uint8_t *w = c->W + r * c->row_bytes;                                          \
                float out[KQ_TOKENS];                                                                \
                switch (nt) {                                                                        \
                KQ_CASES(TYPE)                                                                       \
                default: KNAME(kq_rows)(TYPE, w, c->nb, x, xs, 1, out); break;                       \
                }                                                                                    \
                for (int t = 0; t < nt; t++) c->Y[(t0 + t) * c->ys + r] = out[t];                    \
            }                                                                                        \
        }                                                                                            \
    }

KKQUANT(rows_q4_K, HK_Q4_K)
KKQUANT(rows_q5_K, HK_Q5_K)
KKQUANT(rows_q6_K, HK_Q6_K)

#undef KKQUANT
#undef KQ_PREFETCH_ROWS
#undef KQ_CASES
#undef KQ_CASE
#undef KQ_TOKENS
