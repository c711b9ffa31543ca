// CPU feature dispatch, the elementwise/normalisation kernels, RoPE and the kernel tables.
#include "internal.h"

#include <math.h>

// ---- Dispatch ----------------------------------------------------------------------------------------

int hk_simd_level(void) {
#if HK_X86
    // Read-only after the first call; racing first calls compute the same value.
    static int level = -1;
    int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
    if (l < 0) {
        __builtin_cpu_init();
        l = HK_LEVEL_SCALAR;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
            l = __builtin_cpu_supports("avxvnni") ? HK_LEVEL_VNNI : HK_LEVEL_AVX2;
        if (l == HK_LEVEL_VNNI && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
            __builtin_cpu_supports("avx512vl") &&
            __builtin_cpu_supports("avx512vnni"))
            l = HK_LEVEL_AVX512;
        __atomic_store_n(&level, l, __ATOMIC_RELAXED);
    }
    return l;
#else
    return HK_LEVEL_SCALAR;
#endif
}

// ---- Scalar kernels ----------------------------------------------------------------------------------

static void rmsnorm_scalar(const float *x, const float *w, float *y, int64_t n, int64_t T, float eps) {
    for (int64_t t = 0; t < T; t++, x += n, y += n) {
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
        const float scale = 1.0f / sqrtf((float)(sum / n) + eps);
        for (int64_t i = 0; i < n; i++) y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
    }
}

static inline float silu(float x) { return x / (1.0f + expf(-x)); }

// ggml's tanh approximation of GELU.
static inline float gelu(float x) {
    const float c = 0.79788456080286535588f;  // sqrt(2/pi)
    return 0.5f * x * (1.0f + tanhf(c * x * (1.0f + 0.044715f * x * x)));
}

static void silu_mul_scalar(const float *g, const float *u, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = silu(g[i]) * u[i];
}

static void gelu_mul_scalar(const float *g, const float *u, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = gelu(g[i]) * u[i];
}

static void axpy_scalar(float a, const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void scale_scalar(float *x, float a, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] *= a;
}

static void softmax_scalar(float *x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) max = fmaxf(max, x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

static void store_row_scalar(int kv_type, const float *src, void *dst, int64_t n) {
    if (kv_type == HK_F16) {
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = hk_f32_to_f16(src[i]);
    } else {
        memcpy(dst, src, (size_t)n * sizeof(float));
    }
}

// ---- AVX2 kernels ------------------------------------------------------------------------------------

#if HK_X86
// Cephes-style expf: e^x = 2^n · e^r with |r| ≤ ln2/2 and a degree-6 polynomial for e^r.
HK_AVX2 __m256 hk_exp8(__m256 x) {
    const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.33654f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    // n ∈ [-126, 127] after the clamps, so the biased exponent stays in range.
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    const __m256 y = _mm256_mul_ps(p, _mm256_castsi256_ps(e));
    return _mm256_andnot_ps(underflow, y);
}

// tanh(y) = 1 - 2 / (e^{2y} + 1); saturates correctly through hk_exp8's clamps.
HK_AVX2 static inline __m256 tanh8(__m256 y) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 e = hk_exp8(_mm256_add_ps(y, y));
    return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
}

HK_AVX2 static void rmsnorm_avx2(const float *x, const float *w, float *y, int64_t n, int64_t T, float eps) {
    for (int64_t t = 0; t < T; t++, x += n, y += n) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) {
            const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
            a0 = _mm256_fmadd_ps(v0, v0, a0);
            a1 = _mm256_fmadd_ps(v1, v1, a1);
        }
        float sum = hk_hsum8(_mm256_add_ps(a0, a1));
        for (; i < n; i++) sum += x[i] * x[i];
        const float scale = 1.0f / sqrtf(sum / (float)n + eps);
        const __m256 s = _mm256_set1_ps(scale);
        i = 0;
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), s);
            if (w) v = _mm256_mul_ps(v, _mm256_loadu_ps(w + i));
            _mm256_storeu_ps(y + i, v);
        }
        for (; i < n; i++) y[i] = w ? x[i] * scale * w[i] : x[i] * scale;
    }
}

HK_AVX2 static void silu_mul_avx2(const float *g, const float *u, float *y, int64_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = hk_exp8(_mm256_xor_ps(x, sign));
        const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, e));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) y[i] = silu(g[i]) * u[i];
}

HK_AVX2 static void gelu_mul_avx2(const float *g, const float *u, float *y, int64_t n) {
    const __m256 c = _mm256_set1_ps(0.79788456080286535588f), k = _mm256_set1_ps(0.044715f);
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 inner = _mm256_mul_ps(_mm256_mul_ps(c, x), _mm256_fmadd_ps(_mm256_mul_ps(k, x), x, one));
        const __m256 r = _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, tanh8(inner)));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(r, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) y[i] = gelu(g[i]) * u[i];
}

HK_AVX2 static void axpy_avx2(float a, const float *x, float *y, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

HK_AVX2 static void scale_avx2(float *x, float a, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(va, _mm256_loadu_ps(x + i)));
    for (; i < n; i++) x[i] *= a;
}

HK_AVX2 static void softmax_avx2(float *x, int64_t n) {
    __m256 vmax = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float max = _mm_cvtss_f32(m4);
    for (; i < n; i++) max = fmaxf(max, x[i]);
    const __m256 vm = _mm256_set1_ps(max);
    __m256 acc = _mm256_setzero_ps();
    i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 e = hk_exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hk_hsum8(acc);
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    scale_avx2(x, 1.0f / sum, n);
}

HK_AVX2 static void store_row_avx2(int kv_type, const float *src, void *dst, int64_t n) {
    if (kv_type != HK_F16) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    uint16_t *d = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) d[i] = hk_f32_to_f16(src[i]);
}
#endif

// ---- Tables and public entry points ------------------------------------------------------------------

static const hk_ops ops_scalar = {
    .dequantize_row = hk_dequantize_row_scalar,
    .rmsnorm = rmsnorm_scalar,
    .silu_mul = silu_mul_scalar,
    .gelu_mul = gelu_mul_scalar,
    .axpy = axpy_scalar,
    .scale = scale_scalar,
    .softmax = softmax_scalar,
    .store_row = store_row_scalar,
};

#if HK_X86
static const hk_ops ops_avx2 = {
    .dequantize_row = hk_dequantize_row_avx2,
    .rmsnorm = rmsnorm_avx2,
    .silu_mul = silu_mul_avx2,
    .gelu_mul = gelu_mul_avx2,
    .axpy = axpy_avx2,
    .scale = scale_avx2,
    .softmax = softmax_avx2,
    .store_row = store_row_avx2,
};
#endif

const hk_ops *hk_ops_for_level(int level) {
#if HK_X86
    if (level >= HK_LEVEL_AVX2 && hk_simd_level() >= HK_LEVEL_AVX2) return &ops_avx2;
#endif
    (void)level;
    return &ops_scalar;
}

#define OPS hk_ops_for_level(hk_simd_level())

void hk_rmsnorm(const float *x, const float *w, float *y, int64_t n, int64_t T, float eps) {
    OPS->rmsnorm(x, w, y, n, T, eps);
}
void hk_silu_mul(const float *g, const float *u, float *y, int64_t n) { OPS->silu_mul(g, u, y, n); }
void hk_gelu_mul(const float *g, const float *u, float *y, int64_t n) { OPS->gelu_mul(g, u, y, n); }
void hk_axpy(float a, const float *x, float *y, int64_t n) { OPS->axpy(a, x, y, n); }
void hk_scale(float *x, float a, int64_t n) { OPS->scale(x, a, n); }
void hk_softmax(float *x, int64_t n) { OPS->softmax(x, n); }
void hk_store_row(int kv_type, const float *src, void *dst, int64_t n) { OPS->store_row(kv_type, src, dst, n); }

// ---- RoPE --------------------------------------------------------------------------------------------

// As llama.cpp (ggml_rope_cache_init): theta starts at pos and is multiplied by
// base^(-2/n_rot) once per pair, in float, divided by the pair's frequency factor, then scaled by
// freq_scale. One cos/sin per pair serves every head, so the work is O(n_rot) trig calls plus a
// rotation per element: no SIMD path (the projections around it dominate by orders of magnitude).
void hk_rope(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, int64_t pos,
             float base, float freq_scale, const float *freq_factors, int neox) {
    if (n_rot > head_dim) n_rot = head_dim;
    const int64_t half = n_rot / 2;
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int64_t i = 0; i < half; i++, theta *= theta_scale) {
        const float t = freq_scale * (freq_factors ? theta / freq_factors[i] : theta);
        const float c = cosf(t), s = sinf(t);
        const int64_t i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        for (float *v = x; v < x + n_heads * head_dim; v += head_dim) {
            const float x0 = v[i0], x1 = v[i1];
            v[i0] = x0 * c - x1 * s;
            v[i1] = x0 * s + x1 * c;
        }
    }
}
