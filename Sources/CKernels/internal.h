// Private declarations shared by the CKernels sources: ggml block layouts, the activation
// formats used by the integer dot products, CPU dispatch and the pool's internal API.
#ifndef HARP_CKERNELS_INTERNAL_H
#define HARP_CKERNELS_INTERNAL_H

#include "ckernels.h"

#include <stdint.h>
#include <string.h>

// Function-level ISA selection: the package builds without -mavx2, so every SIMD function
// carries this attribute and is only called when hk_simd_level() says the CPU has it.
#define HK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define HK_INLINE static inline __attribute__((always_inline))

#if defined(__x86_64__) || defined(__i386__)
#define HK_X86 1
#include <immintrin.h>
#else
#define HK_X86 0
#endif

// ---- ggml block layouts (ggml-common.h) ----------------------------------------------------------

#define QK 32     // legacy block size
#define QK_K 256  // k-quant super-block size
#define K_SCALE_SIZE 12

typedef struct { uint16_t d; uint8_t qs[QK / 2]; } block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[QK / 2]; } block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[QK / 2]; } block_q5_1;
typedef struct { uint16_t d; int8_t qs[QK]; } block_q8_0;
typedef struct { uint16_t d, s; int8_t qs[QK]; } block_q8_1;
typedef struct { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

_Static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(block_q8_1) == 36, "q8_1 layout");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(block_q5_K) == 176, "q5_K layout");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K layout");
_Static_assert(sizeof(block_q8_K) == 292, "q8_K layout");

// ---- Activation formats (internal; never stored) -------------------------------------------------

// 32 int8 values with a float scale, the scaled block sum s = d·Σq (needed by Q4_1/Q5_1, whose
// offset m multiplies the plain sum of the activations) and the integer sum Σq (for the integer
// offsets of Q4_0/Q5_0 and of Q8_0 levels stored unsigned). Floats instead of ggml's f16 keep a
// little more precision at no cost.
typedef struct { float d, s; int32_t sum; int8_t qs[QK]; } xq8;
// 256 int8 values with 16-element partial sums, for the k-quants (ggml's block_q8_K).
typedef block_q8_K xq8k;

void hk_quantize_xq8(int level, const float *x, xq8 *y, int64_t n);
void hk_quantize_xq8k(int level, const float *x, xq8k *y, int64_t n);

// k-quant 6-bit scale/min unpacking (ggml's get_scale_min_k4).
HK_INLINE void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

HK_INLINE uint32_t load_u32(const void *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

// ---- Dispatch --------------------------------------------------------------------------------------

// Levels are cumulative: VNNI implies AVX2 (+FMA, F16C), AVX512 implies VNNI (+AVX-512 F/BW/VL/VNNI);
// only the int8 dot products use the levels above AVX2.
enum { HK_LEVEL_SCALAR = 0, HK_LEVEL_AVX2 = 1, HK_LEVEL_VNNI = 2, HK_LEVEL_AVX512 = 3 };

// Dequantizes with the given SIMD level (0 = scalar); the two fixed-level variants fill hk_ops.
void hk_dequantize_row_level(int level, int type, const void *src, float *dst, int64_t n);
void hk_dequantize_row_scalar(int type, const void *src, float *dst, int64_t n);
void hk_dequantize_row_avx2(int type, const void *src, float *dst, int64_t n);

// Vectorised exp for the AVX2 kernels (max rel. error ~2e-7 on the normal range).
#if HK_X86
HK_AVX2 __m256 hk_exp8(__m256 x);

// 32 nibbles → 32 bytes: low nibbles in bytes 0..15, high nibbles in 16..31 (ggml element order).
HK_AVX2 static inline __m256i nibbles32(const uint8_t *qs) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i both = _mm256_insertf128_si256(_mm256_castsi128_si256(t), _mm_srli_epi16(t, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}

// Bit i of the 32-bit mask → byte i = 0xFF when set (Q5 high bits).
HK_AVX2 static inline __m256i bits32(uint32_t x) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

HK_AVX2 static inline float f16(uint16_t h) { return _cvtsh_ss(h); }

HK_AVX2 static inline float hk_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

// ---- Pool internals --------------------------------------------------------------------------------

// Runs fn(ctx, tid, nth) on the caller (tid 0) and on every worker that joins before the caller
// has finished its own call (each tid at most once). fn must therefore hand out its work
// dynamically (atomic counters), never assume all nth threads take part.
typedef void (*hk_job_fn)(void *ctx, int tid, int nth);
void hk_pool_run(hk_pool *pool, hk_job_fn fn, void *ctx);
// Thread tid's private scratch, at least `bytes`, 64-byte aligned; valid until its next call.
void *hk_pool_scratch(hk_pool *pool, int tid, size_t bytes);
// Scratch shared by all threads of one operation; call from the caller thread before running.
void *hk_pool_shared(hk_pool *pool, size_t bytes);
int hk_pool_level(const hk_pool *pool);

#endif
