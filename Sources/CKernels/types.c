// Type traits, half-precision conversion, dequantization of every supported ggml format and the
// reference (round-to-nearest) quantizers, plus the int8 activation quantizers used by hk_matmul.
#include "internal.h"

#include <math.h>

// ---- Type traits -----------------------------------------------------------------------------------

int hk_type_supported(int type) {
    switch (type) {
    case HK_F32: case HK_F16: case HK_BF16:
    case HK_Q4_0: case HK_Q4_1: case HK_Q5_0: case HK_Q5_1: case HK_Q8_0:
    case HK_Q4_K: case HK_Q5_K: case HK_Q6_K:
        return 1;
    default:
        return 0;
    }
}

int64_t hk_block_size(int type) {
    switch (type) {
    case HK_F32: case HK_F16: case HK_BF16: return 1;
    case HK_Q4_0: case HK_Q4_1: case HK_Q5_0: case HK_Q5_1: case HK_Q8_0: case HK_Q8_1: return QK;
    case HK_Q2_K: case HK_Q3_K: case HK_Q4_K: case HK_Q5_K: case HK_Q6_K: case HK_Q8_K: return QK_K;
    default: return 0;
    }
}

int64_t hk_block_bytes(int type) {
    switch (type) {
    case HK_F32: return 4;
    case HK_F16: case HK_BF16: return 2;
    case HK_Q4_0: return sizeof(block_q4_0);
    case HK_Q4_1: return sizeof(block_q4_1);
    case HK_Q5_0: return sizeof(block_q5_0);
    case HK_Q5_1: return sizeof(block_q5_1);
    case HK_Q8_0: return sizeof(block_q8_0);
    case HK_Q8_1: return sizeof(block_q8_1);
    case HK_Q2_K: return 84;   // ggml block_q2_K (size only; not supported for compute)
    case HK_Q3_K: return 110;  // ggml block_q3_K (size only)
    case HK_Q4_K: return sizeof(block_q4_K);
    case HK_Q5_K: return sizeof(block_q5_K);
    case HK_Q6_K: return sizeof(block_q6_K);
    case HK_Q8_K: return sizeof(block_q8_K);
    default: return 0;
    }
}

int hk_type_quantizable(int type) {
    switch (type) {
    case HK_F32: case HK_F16: case HK_BF16:
    case HK_Q4_0: case HK_Q4_1: case HK_Q5_0: case HK_Q5_1: case HK_Q8_0: case HK_Q8_1:
        return 1;
    default:
        return 0;
    }
}

// ---- Half precision (bit-exact with ggml's portable conversions; round to nearest even) ------------

static inline float f32_from_bits(uint32_t w) { float f; memcpy(&f, &w, 4); return f; }
static inline uint32_t f32_to_bits(float f) { uint32_t w; memcpy(&w, &f, 4); return w; }

float hk_f16_to_f32(uint16_t h) {
    const uint32_t w = (uint32_t)h << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    // Normal numbers: shift the exponent/mantissa into place and rebias with one multiply.
    const float normalized = f32_from_bits((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    // Subnormals: build 0.5 + m·2^-24 and subtract 0.5.
    const float denormalized = f32_from_bits((two_w >> 17) | (126u << 23)) - 0.5f;
    const uint32_t result = sign | (two_w < (1u << 27) ? f32_to_bits(denormalized) : f32_to_bits(normalized));
    return f32_from_bits(result);
}

uint16_t hk_f32_to_f16(float f) {
    // Scaling to infinity and back lets the FPU do the rounding to 11 significant bits.
    float base = (fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = f32_to_bits(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = f32_from_bits((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = f32_to_bits(base);
    const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
    const uint32_t mantissa_bits = bits & 0x00000FFFu;
    const uint32_t nonsign = exp_bits + mantissa_bits;
    return (uint16_t)((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

float hk_bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

// Round to nearest even; NaNs stay quiet NaNs (as ggml_compute_fp32_to_bf16).
static uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

#define F16(h) hk_f16_to_f32(h)

// ---- Scalar dequantization -------------------------------------------------------------------------

static void dequant_q4_K_block(const block_q4_K *b, float *y) {
    const float d = F16(b->d), dmin = F16(b->dmin);
    const uint8_t *q = b->qs;
    for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
        uint8_t sc, m;
        get_scale_min_k4(is, b->scales, &sc, &m);
        const float d1 = d * sc, m1 = dmin * m;
        get_scale_min_k4(is + 1, b->scales, &sc, &m);
        const float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
    }
}

static void dequant_q5_K_block(const block_q5_K *b, float *y) {
    const float d = F16(b->d), dmin = F16(b->dmin);
    const uint8_t *ql = b->qs, *qh = b->qh;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
        uint8_t sc, m;
        get_scale_min_k4(is, b->scales, &sc, &m);
        const float d1 = d * sc, m1 = dmin * m;
        get_scale_min_k4(is + 1, b->scales, &sc, &m);
        const float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
    }
}

static void dequant_q6_K_block(const block_q6_K *b, float *y) {
    const float d = F16(b->d);
    const uint8_t *ql = b->ql, *qh = b->qh;
    const int8_t *sc = b->scales;
    for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
        for (int l = 0; l < 32; l++) {
            const int is = l / 16;
            const int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l + 0] = d * sc[is + 0] * q1;
            y[l + 32] = d * sc[is + 2] * q2;
            y[l + 64] = d * sc[is + 4] * q3;
            y[l + 96] = d * sc[is + 6] * q4;
        }
    }
}

static void dequantize_row_scalar(int type, const void *src, float *y, int64_t n) {
    switch (type) {
    case HK_F32:
        memcpy(y, src, (size_t)n * sizeof(float));
        return;
    case HK_F16: {
        const uint16_t *x = src;
        for (int64_t i = 0; i < n; i++) y[i] = F16(x[i]);
        return;
    }
    case HK_BF16: {
        const uint16_t *x = src;
        for (int64_t i = 0; i < n; i++) y[i] = hk_bf16_to_f32(x[i]);
        return;
    }
    default:
        break;
    }
    const int64_t nb = n / hk_block_size(type);
    for (int64_t i = 0; i < nb; i++) {
        switch (type) {
        case HK_Q4_0: {
            const block_q4_0 *b = (const block_q4_0 *)src + i;
            const float d = F16(b->d);
            for (int j = 0; j < 16; j++) {
                y[j] = ((b->qs[j] & 0xF) - 8) * d;
                y[j + 16] = ((b->qs[j] >> 4) - 8) * d;
            }
            y += QK;
            break;
        }
        case HK_Q4_1: {
            const block_q4_1 *b = (const block_q4_1 *)src + i;
            const float d = F16(b->d), m = F16(b->m);
            for (int j = 0; j < 16; j++) {
                y[j] = (b->qs[j] & 0xF) * d + m;
                y[j + 16] = (b->qs[j] >> 4) * d + m;
            }
            y += QK;
            break;
        }
        case HK_Q5_0: {
            const block_q5_0 *b = (const block_q5_0 *)src + i;
            const float d = F16(b->d);
            const uint32_t qh = load_u32(b->qh);
            for (int j = 0; j < 16; j++) {
                const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
                y[j] = (((b->qs[j] & 0xF) | h0) - 16) * d;
                y[j + 16] = (((b->qs[j] >> 4) | h1) - 16) * d;
            }
            y += QK;
            break;
        }
        case HK_Q5_1: {
            const block_q5_1 *b = (const block_q5_1 *)src + i;
            const float d = F16(b->d), m = F16(b->m);
            const uint32_t qh = load_u32(b->qh);
            for (int j = 0; j < 16; j++) {
                const int h0 = ((qh >> j) << 4) & 0x10, h1 = (qh >> (j + 12)) & 0x10;
                y[j] = ((b->qs[j] & 0xF) | h0) * d + m;
                y[j + 16] = ((b->qs[j] >> 4) | h1) * d + m;
            }
            y += QK;
            break;
        }
        case HK_Q8_0: {
            const block_q8_0 *b = (const block_q8_0 *)src + i;
            const float d = F16(b->d);
            for (int j = 0; j < QK; j++) y[j] = b->qs[j] * d;
            y += QK;
            break;
        }
        case HK_Q8_1: {
            const block_q8_1 *b = (const block_q8_1 *)src + i;
            const float d = F16(b->d);
            for (int j = 0; j < QK; j++) y[j] = b->qs[j] * d;
            y += QK;
            break;
        }
        case HK_Q4_K: dequant_q4_K_block((const block_q4_K *)src + i, y); y += QK_K; break;
        case HK_Q5_K: dequant_q5_K_block((const block_q5_K *)src + i, y); y += QK_K; break;
        case HK_Q6_K: dequant_q6_K_block((const block_q6_K *)src + i, y); y += QK_K; break;
        case HK_Q8_K: {
            const block_q8_K *b = (const block_q8_K *)src + i;
            for (int j = 0; j < QK_K; j++) y[j] = b->qs[j] * b->d;
            y += QK_K;
            break;
        }
        default:
            return;
        }
    }
}

// ---- AVX2 dequantization of the common formats (the prefill path dequantizes whole matrices) -----

#if HK_X86
// Writes 32 int8 values times d plus m as floats.
HK_AVX2 static inline void store_i8x32(float *y, __m256i q, __m256 d, __m256 m) {
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    _mm256_storeu_ps(y + 0, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo)), d, m));
    _mm256_storeu_ps(y + 8, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8))), d, m));
    _mm256_storeu_ps(y + 16, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi)), d, m));
    _mm256_storeu_ps(y + 24, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8))), d, m));
}

HK_AVX2 static void dequantize_row_avx2(int type, const void *src, float *y, int64_t n) {
    switch (type) {
    case HK_F16: {
        const uint16_t *x = src;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
        for (; i < n; i++) y[i] = F16(x[i]);
        return;
    }
    case HK_BF16: {
        const uint16_t *x = src;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + i)));
            _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
        }
        for (; i < n; i++) y[i] = hk_bf16_to_f32(x[i]);
        return;
    }
    case HK_Q4_0: case HK_Q4_1: case HK_Q5_0: case HK_Q5_1: case HK_Q8_0:
        break;
    default:
        dequantize_row_scalar(type, src, y, n);
        return;
    }
    const int64_t nb = n / QK;
    const __m256 zero = _mm256_setzero_ps();
    for (int64_t i = 0; i < nb; i++, y += QK) {
        switch (type) {
        case HK_Q4_0: {
            const block_q4_0 *b = (const block_q4_0 *)src + i;
            const __m256i q = _mm256_sub_epi8(nibbles32(b->qs), _mm256_set1_epi8(8));
            store_i8x32(y, q, _mm256_set1_ps(f16(b->d)), zero);
            break;
        }
        case HK_Q4_1: {
            const block_q4_1 *b = (const block_q4_1 *)src + i;
            store_i8x32(y, nibbles32(b->qs), _mm256_set1_ps(f16(b->d)), _mm256_set1_ps(f16(b->m)));
            break;
        }
        case HK_Q5_0: {
            const block_q5_0 *b = (const block_q5_0 *)src + i;
            // Missing high bit means value - 16: OR in 0xF0 where the bit is clear.
            const __m256i hb = _mm256_andnot_si256(bits32(load_u32(b->qh)), _mm256_set1_epi8((char)0xF0));
            store_i8x32(y, _mm256_or_si256(nibbles32(b->qs), hb), _mm256_set1_ps(f16(b->d)), zero);
            break;
        }
        case HK_Q5_1: {
            const block_q5_1 *b = (const block_q5_1 *)src + i;
            const __m256i hb = _mm256_and_si256(bits32(load_u32(b->qh)), _mm256_set1_epi8(0x10));
            store_i8x32(y, _mm256_or_si256(nibbles32(b->qs), hb), _mm256_set1_ps(f16(b->d)),
                        _mm256_set1_ps(f16(b->m)));
            break;
        }
        case HK_Q8_0: {
            const block_q8_0 *b = (const block_q8_0 *)src + i;
            store_i8x32(y, _mm256_loadu_si256((const __m256i *)b->qs), _mm256_set1_ps(f16(b->d)), zero);
            break;
        }
        }
    }
}
#endif

void hk_dequantize_row_level(int level, int type, const void *src, float *dst, int64_t n) {
#if HK_X86
    if (level >= HK_LEVEL_AVX2) {
        dequantize_row_avx2(type, src, dst, n);
        return;
    }
#endif
    (void)level;
    dequantize_row_scalar(type, src, dst, n);
}

void hk_dequantize_row_scalar(int type, const void *src, float *dst, int64_t n) {
    dequantize_row_scalar(type, src, dst, n);
}

#if HK_X86
void hk_dequantize_row_avx2(int type, const void *src, float *dst, int64_t n) {
    dequantize_row_avx2(type, src, dst, n);
}
#endif

void hk_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    hk_dequantize_row_level(hk_simd_level(), type, src, dst, n);
}

// ---- Reference quantizers (ggml's quantize_row_*_ref) ------------------------------------------------

static void quantize_q4_0(const float *x, block_q4_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        float amax = 0.0f, max = 0.0f;  // max keeps the sign of the largest-magnitude element
        for (int j = 0; j < QK; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = max / -8, id = d ? 1.0f / d : 0.0f;
        y[i].d = hk_f32_to_f16(d);
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t a = (uint8_t)(int8_t)(x[j] * id + 8.5f), b = (uint8_t)(int8_t)(x[j + 16] * id + 8.5f);
            y[i].qs[j] = (uint8_t)((a < 15 ? a : 15) | ((b < 15 ? b : 15) << 4));
        }
    }
}

static void quantize_q4_1(const float *x, block_q4_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        float min = INFINITY, max = -INFINITY;
        for (int j = 0; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
        y[i].d = hk_f32_to_f16(d);
        y[i].m = hk_f32_to_f16(min);
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t a = (uint8_t)(int8_t)((x[j] - min) * id + 0.5f);
            const uint8_t b = (uint8_t)(int8_t)((x[j + 16] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((a < 15 ? a : 15) | ((b < 15 ? b : 15) << 4));
        }
    }
}

static void quantize_q5_0(const float *x, block_q5_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = max / -16, id = d ? 1.0f / d : 0.0f;
        y[i].d = hk_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            int a = (int8_t)(x[j] * id + 16.5f), b = (int8_t)(x[j + 16] * id + 16.5f);
            a = a < 31 ? a : 31;
            b = b < 31 ? b : 31;
            y[i].qs[j] = (uint8_t)((a & 0x0F) | ((b & 0x0F) << 4));
            qh |= ((uint32_t)(a & 0x10) >> 4) << j;
            qh |= ((uint32_t)(b & 0x10) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void quantize_q5_1(const float *x, block_q5_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        float min = INFINITY, max = -INFINITY;
        for (int j = 0; j < QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
        y[i].d = hk_f32_to_f16(d);
        y[i].m = hk_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            const uint8_t a = (uint8_t)((x[j] - min) * id + 0.5f), b = (uint8_t)((x[j + 16] - min) * id + 0.5f);
            y[i].qs[j] = (uint8_t)((a & 0x0F) | ((b & 0x0F) << 4));
            qh |= ((uint32_t)(a & 0x10) >> 4) << j;
            qh |= ((uint32_t)(b & 0x10) >> 4) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static float block_amax(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) amax = fmaxf(amax, fabsf(x[j]));
    return amax;
}

static void quantize_q8_0(const float *x, block_q8_0 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        const float d = block_amax(x, QK) / 127, id = d ? 1.0f / d : 0.0f;
        y[i].d = hk_f32_to_f16(d);
        for (int j = 0; j < QK; j++) y[i].qs[j] = (int8_t)roundf(x[j] * id);
    }
}

static void quantize_q8_1(const float *x, block_q8_1 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        const float d = block_amax(x, QK) / 127, id = d ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            y[i].qs[j] = (int8_t)roundf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = hk_f32_to_f16(d);
        y[i].s = hk_f32_to_f16(sum * d);
    }
}

void hk_quantize_row(int type, const float *src, void *dst, int64_t n) {
    switch (type) {
    case HK_F32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case HK_F16: for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = hk_f32_to_f16(src[i]); break;
    case HK_BF16: for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_bf16(src[i]); break;
    case HK_Q4_0: quantize_q4_0(src, dst, n / QK); break;
    case HK_Q4_1: quantize_q4_1(src, dst, n / QK); break;
    case HK_Q5_0: quantize_q5_0(src, dst, n / QK); break;
    case HK_Q5_1: quantize_q5_1(src, dst, n / QK); break;
    case HK_Q8_0: quantize_q8_0(src, dst, n / QK); break;
    case HK_Q8_1: quantize_q8_1(src, dst, n / QK); break;
    default: break;
    }
}

// ---- Activation quantizers ---------------------------------------------------------------------------

static void quantize_xq8_scalar(const float *x, xq8 *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK) {
        const float d = block_amax(x, QK) / 127, id = d ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            y[i].qs[j] = (int8_t)lrintf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = d;
        y[i].s = d * sum;
        y[i].sum = sum;
    }
}

#if HK_X86
HK_AVX2 static void quantize_xq8_avx2(const float *x, xq8 *y, int64_t nb) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t i = 0; i < nb; i++, x += QK) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        __m256 amax = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)),
                                    _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float d = _mm_cvtss_f32(m4) / 127, id = d ? 1.0f / d : 0.0f;
        const __m256 mul = _mm256_set1_ps(id);
        // cvtps rounds to nearest even, like lrintf in the scalar path.
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, mul)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, mul));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, mul)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, mul));
        const __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        s4 = _mm_hadd_epi32(s4, s4);
        s4 = _mm_hadd_epi32(s4, s4);
        // Pack 32-bit → 16-bit → 8-bit; packs interleave 128-bit lanes, the permute restores order.
        i0 = _mm256_packs_epi32(i0, i1);
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_packs_epi16(i0, i2);
        i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[i].qs, i0);
        y[i].d = d;
        y[i].sum = _mm_cvtsi128_si32(s4);
        y[i].s = d * y[i].sum;
    }
}
#endif

void hk_quantize_xq8(int level, const float *x, xq8 *y, int64_t n) {
#if HK_X86
    if (level >= HK_LEVEL_AVX2) {
        quantize_xq8_avx2(x, y, n / QK);
        return;
    }
#endif
    (void)level;
    quantize_xq8_scalar(x, y, n / QK);
}

// Symmetric 8-bit super-blocks with 16-element sums (the sums fold the k-quant minimums in).
// Both paths give the same bytes (cvtps rounds to nearest even like lrintf).
static void quantize_xq8k_scalar(const float *x, xq8k *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        const float d = block_amax(x, QK_K) / 127, id = d ? 1.0f / d : 0.0f;
        for (int j = 0; j < QK_K; j++) y[i].qs[j] = (int8_t)lrintf(x[j] * id);
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += y[i].qs[j * 16 + l];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = d;
    }
}

#if HK_X86
HK_AVX2 static void quantize_xq8k_avx2(const float *x, xq8k *y, int64_t nb) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        __m256 amax = _mm256_setzero_ps();
        for (int j = 0; j < QK_K; j += 8) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float d = _mm_cvtss_f32(m4) / 127, id = d ? 1.0f / d : 0.0f;
        const __m256 mul = _mm256_set1_ps(id);
        for (int j = 0; j < QK_K; j += 32) {
            __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), mul));
            __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 8), mul));
            __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 16), mul));
            __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j + 24), mul));
            // Pack 32-bit → 16-bit → 8-bit; packs interleave 128-bit lanes, the permute restores order.
            i0 = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
            const __m256i q = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y[i].qs + j), q);
            // Sums of 4 → lanes 0-3 (elements 0-15) and 4-7 (16-31) → two hadds → lane 0 of each half.
            __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
            s = _mm256_hadd_epi32(s, s);
            s = _mm256_hadd_epi32(s, s);
            y[i].bsums[j / 16] = (int16_t)_mm256_cvtsi256_si32(s);
            y[i].bsums[j / 16 + 1] = (int16_t)_mm_cvtsi128_si32(_mm256_extracti128_si256(s, 1));
        }
        y[i].d = d;
    }
}
#endif

void hk_quantize_xq8k(int level, const float *x, xq8k *y, int64_t n) {
#if HK_X86
    if (level >= HK_LEVEL_AVX2) {
        quantize_xq8k_avx2(x, y, n / QK_K);
        return;
    }
#endif
    (void)level;
    quantize_xq8k_scalar(x, y, n / QK_K);
}
