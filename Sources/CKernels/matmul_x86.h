// x86 row kernels of hk_matmul, included by matmul.c once per instruction-set level with
//   KTARGET      the function target attribute,
//   KNAME(x)     the level's suffixed name of x,
//   MUL_SUM(u,s) 8 int32 lanes of sums of u8·s8 products over 32 bytes.
// Every kernel computes Y[t][r] for rows r0..r1 and all T activation rows, unpacking each weight
// block once for up to four activation rows (legacy formats: c->xq4, four rows interleaved).

// Legacy 32-element formats. Q4_0/Q5_0 are handled as unsigned levels whose offset comes off the
// integer sum (Σ(q−8)x = Σqx − 8Σx, Σx comes with the activation block), which saves the sign
// trick; only Q8_0 needs maddubs' signed-operand workaround.
KTARGET HK_INLINE __m256i KNAME(legacy_unpack)(int type, const uint8_t *w, int64_t b, float *d, float *m) {
    switch (type) {
    case HK_Q4_0: {
        const block_q4_0 *blk = (const block_q4_0 *)w + b;
        *d = f16(blk->d); *m = 0.0f;
        return nibbles32(blk->qs);
    }
    case HK_Q4_1: {
        const block_q4_1 *blk = (const block_q4_1 *)w + b;
        *d = f16(blk->d); *m = f16(blk->m);
        return nibbles32(blk->qs);
    }
    case HK_Q5_0: {
        const block_q5_0 *blk = (const block_q5_0 *)w + b;
        *d = f16(blk->d); *m = 0.0f;
        return _mm256_or_si256(nibbles32(blk->qs), _mm256_and_si256(bits32(load_u32(blk->qh)), _mm256_set1_epi8(0x10)));
    }
    case HK_Q5_1: {
        const block_q5_1 *blk = (const block_q5_1 *)w + b;
        *d = f16(blk->d); *m = f16(blk->m);
        return _mm256_or_si256(nibbles32(blk->qs), _mm256_and_si256(bits32(load_u32(blk->qh)), _mm256_set1_epi8(0x10)));
    }
    default: {  // HK_Q8_0
        const block_q8_0 *blk = (const block_q8_0 *)w + b;
        *d = f16(blk->d); *m = 0.0f;
        return _mm256_loadu_si256((const __m256i *)blk->qs);
    }
    }
}

// Offset of the unsigned levels legacy_unpack returns, as a power of two (0: none).
KTARGET HK_INLINE int KNAME(legacy_offset_shift)(int type) { return type == HK_Q4_0 ? 3 : type == HK_Q5_0 ? 4 : 0; }

// u8·s8 block sum of weights q and activations xv (signed q8_0 weights: sign moved onto xv).
KTARGET HK_INLINE __m256i KNAME(legacy_dot)(int type, __m256i q, const int8_t *xs) {
    const __m256i xv = _mm256_loadu_si256((const __m256i *)xs);
    if (type == HK_Q8_0) return MUL_SUM(_mm256_sign_epi8(q, q), _mm256_sign_epi8(xv, q));
    return MUL_SUM(q, xv);
}

// Two weight rows · one activation row in the canonical order of every legacy kernel (see
// dot_legacy_scalar): per block the exact integer sum, then acc += (d·dx)·isum, macc += m·s.
// The FMA chains carry from block to block, so two rows run side by side to overlap theirs, and
// two blocks of both rows share one horizontal reduction (two rounds of hadd, then the halves).
// The two interleaved row streams defeat the hardware prefetcher, so the caller passes pf, the
// pair ROW2_PREFETCH_ROWS rows ahead, to be prefetched meanwhile (measured best from 8 rows on:
// whole SmolLM2 Q8_0 step 182 → 226 tokens/s on one thread compared with 4 rows).
KTARGET HK_INLINE void KNAME(legacy_row2)(int type, const uint8_t *w0, const uint8_t *w1, int64_t nb, const xq8 *x,
                                          const uint8_t *pf, float out[2]) {
    float acc0 = 0.0f, acc1 = 0.0f, macc0 = 0.0f, macc1 = 0.0f;
    const int64_t pf_step = 2 * hk_block_bytes(type);  // two rows' bytes per block
    for (int64_t b = 0; b < nb; b += 2) {
        for (int64_t off = b * pf_step; off < (b + 2) * pf_step; off += 64) _mm_prefetch((const char *)pf + off, _MM_HINT_T0);
        const int64_t c = b + 1 < nb ? b + 1 : b;  // odd nb: the last block pairs with itself
        float d0b, m0b, d0c, m0c, d1b, m1b, d1c, m1c;  // d/m of row 0/1, block b/c
        const __m256i p0b = KNAME(legacy_dot)(type, KNAME(legacy_unpack)(type, w0, b, &d0b, &m0b), x[b].qs);
        const __m256i p0c = KNAME(legacy_dot)(type, KNAME(legacy_unpack)(type, w0, c, &d0c, &m0c), x[c].qs);
        const __m256i p1b = KNAME(legacy_dot)(type, KNAME(legacy_unpack)(type, w1, b, &d1b, &m1b), x[b].qs);
        const __m256i p1c = KNAME(legacy_dot)(type, KNAME(legacy_unpack)(type, w1, c, &d1c, &m1c), x[c].qs);
        const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0b, p0c), _mm256_hadd_epi32(p1b, p1c));
        __m128i isum = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        const int shift = KNAME(legacy_offset_shift)(type);
        if (shift) isum = _mm_sub_epi32(isum, _mm_slli_epi32(_mm_setr_epi32(x[b].sum, x[c].sum, x[b].sum, x[c].sum), shift));
        float f[4];  // [row 0 block b, row 0 block c, row 1 block b, row 1 block c]
        _mm_storeu_ps(f, _mm_cvtepi32_ps(isum));
        acc0 = fmaf(d0b * x[b].d, f[0], acc0);
        acc1 = fmaf(d1b * x[b].d, f[2], acc1);
        macc0 = fmaf(m0b, x[b].s, macc0);
        macc1 = fmaf(m1b, x[b].s, macc1);
        if (c == b) break;
        acc0 = fmaf(d0c * x[c].d, f[1], acc0);
        acc1 = fmaf(d1c * x[c].d, f[3], acc1);
        macc0 = fmaf(m0c, x[c].s, macc0);
        macc1 = fmaf(m1c, x[c].s, macc1);
    }
    out[0] = acc0 + macc0;
    out[1] = acc1 + macc1;
}

// One weight row · NG groups of four interleaved activation rows (NG = 1 or 2: the unpacked
// block is shared by up to eight rows). Each group's four int32 dot vectors are reduced exactly
// (two rounds of hadd, then the two halves) to the block sums [t0 t1 t2 t3], which are scaled and
// accumulated per lane in the canonical order (bit-identical to legacy_row1 for each row).
KTARGET HK_INLINE void KNAME(legacy_rows4)(int type, const uint8_t *w, int64_t nb, const xq8x4 *x, int64_t gstride,
                                           int NG, float *out) {
    __m128 acc[2] = {_mm_setzero_ps(), _mm_setzero_ps()};
    __m128 macc[2] = {_mm_setzero_ps(), _mm_setzero_ps()};
    for (int64_t b = 0; b < nb; b++) {
        float d, m;
        const __m256i q = KNAME(legacy_unpack)(type, w, b, &d, &m);
        const __m128 vd = _mm_set1_ps(d), vm = _mm_set1_ps(m);
        for (int g = 0; g < NG; g++) {
            const xq8x4 *xb = x + g * gstride + b;
            const __m256i p0 = KNAME(legacy_dot)(type, q, xb->qs[0]), p1 = KNAME(legacy_dot)(type, q, xb->qs[1]);
            const __m256i p2 = KNAME(legacy_dot)(type, q, xb->qs[2]), p3 = KNAME(legacy_dot)(type, q, xb->qs[3]);
            const __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
            __m128i isum = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            const int shift = KNAME(legacy_offset_shift)(type);
            if (shift) isum = _mm_sub_epi32(isum, _mm_slli_epi32(_mm_loadu_si128((const __m128i *)xb->sum), shift));
            const __m128 dd = _mm_mul_ps(vd, _mm_loadu_ps(xb->d));
            acc[g] = _mm_fmadd_ps(dd, _mm_cvtepi32_ps(isum), acc[g]);
            macc[g] = _mm_fmadd_ps(vm, _mm_loadu_ps(xb->s), macc[g]);
        }
    }
    for (int g = 0; g < NG; g++) _mm_storeu_ps(out + 4 * g, _mm_add_ps(acc[g], macc[g]));
}

// T > 1: activation groups in slabs of LEGACY_SLAB (32 rows ≈ 20–50 KB, L1/L2-resident) outside
// the weight-row loop, so large T streams neither the activations nor the weights from memory.
#define LEGACY_SLAB 8
#define ROW2_PREFETCH_ROWS 8
#define KLEGACY(name, TYPE)                                                                          \
    KTARGET static void KNAME(name)(const mm_ctx *c, int tid, int64_t r0, int64_t r1) {              \
        (void)tid;                                                                                   \
        if (c->T == 1) { /* rows in twos; an odd last row pairs with itself */                      \
            for (int64_t r = r0; r < r1; r += 2) {                                                   \
                const int64_t r_next = r + 1 < r1 ? r + 1 : r;                                       \
                const int64_t r_pf = r + ROW2_PREFETCH_ROWS + 1 < c->rows ? r + ROW2_PREFETCH_ROWS : r; \
                float out[2];                                                                        \
                KNAME(legacy_row2)(TYPE, c->W + r * c->row_bytes, c->W + r_next * c->row_bytes, c->nb,  \
                                   (const xq8 *)c->xq, c->W + r_pf * c->row_bytes, out);             \
                c->Y[r] = out[0];                                                                    \
                c->Y[r_next] = out[1];                                                               \
            }                                                                                        \
            return;                                                                                  \
        }                                                                                            \
        const int64_t groups = (c->T + 3) / 4;                                                       \
        for (int64_t g0 = 0; g0 < groups; g0 += LEGACY_SLAB) {                                       \
            const int64_t g1 = g0 + LEGACY_SLAB < groups ? g0 + LEGACY_SLAB : groups;                \
            for (int64_t r = r0; r < r1; r++) {                                                      \
                const uint8_t *w = c->W + r * c->row_bytes;                                          \
                for (int64_t g = g0; g < g1; g += 2) {                                               \
                    float out[8];                                                                    \
                    const int ng = g + 1 < g1 ? 2 : 1;                                               \
                    if (ng == 2) KNAME(legacy_rows4)(TYPE, w, c->nb, c->xq4 + g * c->nb, c->nb, 2, out); \
                    else KNAME(legacy_rows4)(TYPE, w, c->nb, c->xq4 + g * c->nb, c->nb, 1, out);     \
                    for (int64_t t = 4 * g; t < c->T && t < 4 * (g + ng); t++)                       \
                        c->Y[t * c->ys + r] = out[t - 4 * g];                                        \
                }                                                                                    \
            }                                                                                        \
        }                                                                                            \
    }

KLEGACY(rows_q4_0, HK_Q4_0)
KLEGACY(rows_q4_1, HK_Q4_1)
KLEGACY(rows_q5_0, HK_Q5_0)
KLEGACY(rows_q5_1, HK_Q5_1)
KLEGACY(rows_q8_0, HK_Q8_0)

#undef KLEGACY
#undef ROW2_PREFETCH_ROWS
#undef LEGACY_SLAB

// Float weights (F32/F16/BF16): 8 weights loaded/converted once, FMA'd into NT accumulators;
// two accumulator sets on alternating 8-element steps keep the FMA pipes busy at small NT.
KTARGET HK_INLINE __m256 KNAME(load_w8)(int type, const uint8_t *w, int64_t i) {
    switch (type) {
    case HK_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    case HK_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i))), 16));
    default: return _mm256_loadu_ps((const float *)w + i);
    }
}

KTARGET HK_INLINE void KNAME(float_row)(int type, const uint8_t *w, int64_t n, const float *const *x, int NT, float *out) {
    __m256 acc0[4], acc1[4];
    for (int t = 0; t < NT; t++) acc0[t] = acc1[t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = KNAME(load_w8)(type, w, i), w1 = KNAME(load_w8)(type, w, i + 8);
        for (int t = 0; t < NT; t++) {
            acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[t] + i), acc0[t]);
            acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[t] + i + 8), acc1[t]);
        }
    }
    for (; i + 8 <= n; i += 8) {
        const __m256 w0 = KNAME(load_w8)(type, w, i);
        for (int t = 0; t < NT; t++) acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[t] + i), acc0[t]);
    }
    for (int t = 0; t < NT; t++) {
        out[t] = hk_hsum8(_mm256_add_ps(acc0[t], acc1[t]));
        for (int64_t j = i; j < n; j++) out[t] += load_w_scalar(type, w, j) * x[t][j];
    }
}

// Row loop: activation rows in groups of four, each group a compile-time NT.
#define KROWS(name, TYPE, ROWFN, XT, XBASE, XSTRIDE, LEN)                                             \
    KTARGET static void KNAME(name)(const mm_ctx *c, int tid, int64_t r0, int64_t r1) {              \
        (void)tid;                                                                                   \
        for (int64_t r = r0; r < r1; r++) {                                                          \
            const uint8_t *w = c->W + r * c->row_bytes;                                              \
            for (int64_t t0 = 0; t0 < c->T; t0 += 4) {                                               \
                const int nt = c->T - t0 < 4 ? (int)(c->T - t0) : 4;                                 \
                XT x[4];                                                                             \
                float out[4];                                                                        \
                for (int t = 0; t < nt; t++) x[t] = (XT)(XBASE + (t0 + t) * (XSTRIDE));             \
                switch (nt) {                                                                        \
                case 4: KNAME(ROWFN)(TYPE, w, LEN, x, 4, out); break;                                \
                case 3: KNAME(ROWFN)(TYPE, w, LEN, x, 3, out); break;                                \
                case 2: KNAME(ROWFN)(TYPE, w, LEN, x, 2, out); break;                                \
                default: KNAME(ROWFN)(TYPE, w, LEN, x, 1, out); break;                               \
                }                                                                                    \
                for (int t = 0; t < nt; t++) c->Y[(t0 + t) * c->ys + r] = out[t];                    \
            }                                                                                        \
        }                                                                                            \
    }

KROWS(rows_f32, HK_F32, float_row, const float *, c->X, c->xs, c->cols)
KROWS(rows_f16, HK_F16, float_row, const float *, c->X, c->xs, c->cols)
KROWS(rows_bf16, HK_BF16, float_row, const float *, c->X, c->xs, c->cols)

#undef KROWS

KTARGET static rows_fn KNAME(pick_rows)(int type) {
    switch (type) {
    case HK_Q4_0: return KNAME(rows_q4_0);
    case HK_Q4_1: return KNAME(rows_q4_1);
    case HK_Q5_0: return KNAME(rows_q5_0);
    case HK_Q5_1: return KNAME(rows_q5_1);
    case HK_Q8_0: return KNAME(rows_q8_0);
    case HK_Q4_K: return KNAME(rows_q4_K);
    case HK_Q5_K: return KNAME(rows_q5_K);
    case HK_Q6_K: return KNAME(rows_q6_K);
    case HK_F32: return KNAME(rows_f32);
    case HK_F16: return KNAME(rows_f16);
    case HK_BF16: return KNAME(rows_bf16);
    default: return NULL;
    }
}
