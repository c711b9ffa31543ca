// HARP compute kernels: the small C API the Swift runtime calls for everything hot.
//
// Conventions
// - Matrices are row-major. A weight matrix W has `rows` output rows of `cols` inputs each, stored
//   as `rows` consecutive rows of hk_row_size(type, cols) bytes (the GGUF/ggml layout).
// - Activations are float32, T rows of `cols` (one row per token).
// - Every kernel has an AVX2/FMA/F16C path chosen at run time and a portable scalar path.
// - No global mutable state: threads and scratch memory belong to an hk_pool the caller owns.
//   A pool runs one operation at a time; use one pool per concurrently running model instance.
#ifndef HARP_CKERNELS_H
#define HARP_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Tensor element types, numbered as ggml/GGUF numbers them.
typedef enum {
    HK_F32 = 0,
    HK_F16 = 1,
    HK_Q4_0 = 2,
    HK_Q4_1 = 3,
    HK_Q5_0 = 6,
    HK_Q5_1 = 7,
    HK_Q8_0 = 8,
    HK_Q8_1 = 9,
    HK_Q2_K = 10,
    HK_Q3_K = 11,
    HK_Q4_K = 12,
    HK_Q5_K = 13,
    HK_Q6_K = 14,
    HK_Q8_K = 15,
    HK_BF16 = 30,
} hk_type;

// 1 when this library can dequantize and multiply with `type`, else 0.
int hk_type_supported(int type);
// Elements per block (1 for F32/F16/BF16, 32 for Q4_0.., 256 for k-quants); 0 for an unknown type.
int64_t hk_block_size(int type);
// Bytes per block; 0 for an unknown type.
int64_t hk_block_bytes(int type);
// 1 when hk_quantize_row can produce `type`.
int hk_type_quantizable(int type);

// Converts n elements (n a multiple of the block size) of one row.
void hk_dequantize_row(int type, const void *src, float *dst, int64_t n);
void hk_quantize_row(int type, const float *src, void *dst, int64_t n);

// Half-precision conversion helpers (IEEE binary16 and bfloat16).
float hk_f16_to_f32(uint16_t h);
uint16_t hk_f32_to_f16(float f);
float hk_bf16_to_f32(uint16_t h);

// ---- Threads ----------------------------------------------------------------------------------

typedef struct hk_pool hk_pool;

// A pool of n_threads workers (the caller's thread counts as one). n_threads < 1 means 1.
// Every function taking a pool needs a valid one (it also owns the kernels' scratch memory).
// Workers spin briefly between operations and then sleep, so an idle pool costs no CPU.
hk_pool *hk_pool_create(int n_threads);
void hk_pool_destroy(hk_pool *pool);
int hk_pool_threads(const hk_pool *pool);

// Runs fn(ctx, i) for i in [0, n) over the pool's threads and returns when all are done.
typedef void (*hk_task_fn)(void *ctx, int64_t i);
void hk_parallel_for(hk_pool *pool, int64_t n, hk_task_fn fn, void *ctx);

// ---- Linear algebra -----------------------------------------------------------------------------

// Y[t][r] = sum_c W[r][c] * X[t][c] for t < T, r < rows (Y = X · Wᵀ).
// X has row stride x_stride floats, Y has row stride y_stride floats.
// Quantized weights meet int8-quantized activations (as in llama.cpp) at every T: the activations are
// quantized once per call and each unpacked weight block is multiplied with a group of activation
// rows in integers (T = 1 reads each weight byte once, in row pairs; T > 1 tiles one weight row ×
// 8 activation rows with AVX2, × 16 with AVX-512). Float weights multiply float activations
// directly for T < 16 and through OpenBLAS sgemm for T ≥ 16.
// Determinism: for a given pool SIMD level, output row t depends only on W and X row t — bit for
// bit, whatever T, the other rows, the thread count or the thread that computes it — for every
// quantized type at every T, and for float weights within T < 16 or within T ≥ 16 (the sgemm
// threshold). The k-quants (Q4_K/Q5_K/Q6_K) reduce each super-block's integer sums exactly and then
// follow one float order, so their results are also the same bits at every SIMD level.
void hk_matmul(hk_pool *pool, int wtype, const void *W, int64_t rows, int64_t cols,
               const float *X, int64_t x_stride, int64_t T, float *Y, int64_t y_stride);

// ---- Elementwise and normalisation ------------------------------------------------------------

// y = x / sqrt(mean(x²) + eps) * w, for T rows of n (w may be NULL: no weight). y may equal x.
void hk_rmsnorm(const float *x, const float *w, float *y, int64_t n, int64_t T, float eps);
// y[i] = silu(g[i]) * u[i]   (SwiGLU);  y may equal g or u.
void hk_silu_mul(const float *g, const float *u, float *y, int64_t n);
// y[i] = gelu_tanh(g[i]) * u[i]   (GeGLU as Gemma computes it).
void hk_gelu_mul(const float *g, const float *u, float *y, int64_t n);
// y[i] += a * x[i]
void hk_axpy(float a, const float *x, float *y, int64_t n);
// x[i] *= a
void hk_scale(float *x, float a, int64_t n);

// Rotary embedding applied in place to n_heads heads of head_dim floats (one token), rotating the
// first n_rot dims of each head at position pos with theta_i = freq_scale * pos * base^(-2i/n_rot) / f_i,
// where f_i = freq_factors[i] (n_rot/2 values: Llama 3.1's rope_freqs.weight, ggml_rope_ext's
// freq_factors) or 1 when freq_factors is NULL.
// neox = 0: pairs (2i, 2i+1) (llama.cpp "normal", GGUF llama); neox = 1: pairs (i, i + n_rot/2).
void hk_rope(float *x, int64_t n_heads, int64_t head_dim, int64_t n_rot, int64_t pos,
             float base, float freq_scale, const float *freq_factors, int neox);

// Softmax in place over n floats.
void hk_softmax(float *x, int64_t n);

// ---- Attention ----------------------------------------------------------------------------------

// One query token attending to a contiguous run of cached positions of one sequence.
typedef struct {
    const float *q;      // n_head × head_dim query (already rotated)
    float *out;          // n_head × head_dim result
    const void *k;       // K rows of the first attended position; row = n_kv_head × head_dim elements
    const void *v;       // V rows, same layout as k
    int64_t n_kv;        // number of attended positions (rows of k and v)
} hk_attn_query;

// For every query: out_h = softmax(scale · q_h · K_gᵀ [soft-capped]) · V_g, with g = h / (n_head / n_kv_head).
// kv_type is HK_F32 or HK_F16. softcap ≤ 0 disables soft-capping (Gemma 2: score = c·tanh(score/c),
// applied to the scaled score). n_kv = 0 yields zeros.
// Parallel over queries × KV heads × runs of 256 positions on the pool. A query's output depends
// only on its own q, K, V and n_kv (bit for bit, for a given SIMD level), not on the other
// queries of the call or the thread count.
void hk_attention(hk_pool *pool, const hk_attn_query *queries, int64_t n_queries,
                  int64_t n_head, int64_t n_kv_head, int64_t head_dim, int kv_type,
                  float scale, float softcap);

// Copies n floats into a row of the KV cache, converting to kv_type (HK_F32 or HK_F16).
void hk_store_row(int kv_type, const float *src, void *dst, int64_t n);

// ---- Double-precision linear algebra (the pruner's block fits; OpenBLAS + its LAPACK) ---------

// Gram matrices of `rows` row pairs: with X (rows × x_cols) augmented by a column of ones when
// `augment` (n = x_cols + augment columns), cxx (n × n, row-major; only its upper triangle is
// updated) += Xᵀ X and cyx (y_cols × n) += Yᵀ X. Y may be NULL with y_cols = 0. BLAS runs on
// `threads` threads. Returns 0, or a negative value for sizes beyond int or no memory.
int hk_gram_accumulate(const float *x, int64_t x_cols, const float *y, int64_t y_cols, int64_t rows,
                       int augment, double *cxx, double *cyx, int threads);
// c (m × n) = op(a) · op(b), row-major, op transposing when trans_* is nonzero (k the inner size).
int hk_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const double *a, const double *b,
             double *c, int threads);
// Solves A X = B for symmetric positive-definite A (n × n, both triangles filled; overwritten by
// its Cholesky factor) and B of nrhs rows of n values (row-major nrhs × n, i.e. column-major
// n × nrhs; overwritten by X in the same layout). Returns LAPACK's info: 0 on success, > 0 when A
// is not positive definite, < 0 for a bad argument.
int hk_spd_solve(int64_t n, double *a, int64_t nrhs, double *b);
// Eigen-decomposition of symmetric A (n × n, both triangles filled): eigenvalues ascending in w,
// eigenvector k in row k of a (row-major). Returns LAPACK's info (0 on success).
int hk_sym_eigen(int64_t n, double *a, double *w);

// ---- SIMD level (for tests and benchmarks) ------------------------------------------------------

// Highest SIMD level this CPU runs: 0 portable scalar, 1 AVX2+FMA+F16C, 2 the same plus AVX-VNNI,
// 3 the same plus AVX-512 F/BW/VL/VNNI (levels 2 and 3 only speed up hk_matmul's int8 dot products).
int hk_simd_level(void);
// Caps the SIMD level of the kernels that run on this pool (hk_matmul, hk_attention) so tests can
// exercise the scalar path; levels above hk_simd_level() are clamped. Default: hk_simd_level().
void hk_pool_set_simd_level(hk_pool *pool, int level);

// The pool-less kernels of one SIMD level, same semantics as the hk_* functions of the same name
// (which dispatch to hk_ops_for_level(hk_simd_level())).
typedef struct {
    void (*dequantize_row)(int type, const void *src, float *dst, int64_t n);
    void (*rmsnorm)(const float *x, const float *w, float *y, int64_t n, int64_t T, float eps);
    void (*silu_mul)(const float *g, const float *u, float *y, int64_t n);
    void (*gelu_mul)(const float *g, const float *u, float *y, int64_t n);
    void (*axpy)(float a, const float *x, float *y, int64_t n);
    void (*scale)(float *x, float a, int64_t n);
    void (*softmax)(float *x, int64_t n);
    void (*store_row)(int kv_type, const float *src, void *dst, int64_t n);
} hk_ops;
// Kernel table for `level` (clamped to hk_simd_level()); never NULL.
const hk_ops *hk_ops_for_level(int level);

#ifdef __cplusplus
}
#endif

#endif
