// Double-precision linear algebra for the pruner's closed-form block fits: Gram accumulation
// (BLAS dsyrk/dgemm), symmetric positive-definite solves (LAPACK dposv) and symmetric
// eigendecompositions (LAPACK dsyevd). Debian's OpenBLAS ships LAPACK's Fortran symbols but not
// LAPACKE, so the two Fortran routines are declared here.
#include "internal.h"

#include <cblas.h>
#include <stdlib.h>

extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda,
                   double *b, const int *ldb, int *info, size_t uplo_len);
extern void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                    double *w, double *work, const int *lwork, int *iwork, const int *liwork, int *info,
                    size_t jobz_len, size_t uplo_len);

static int fits_int(int64_t n) { return n > 0 && n <= 0x7fffffff; }

int hk_gram_accumulate(const float *x, int64_t x_cols, const float *y, int64_t y_cols, int64_t rows,
                       int augment, double *cxx, double *cyx, int threads) {
    const int64_t n = x_cols + (augment ? 1 : 0);
    if (rows <= 0) return 0;
    if (!fits_int(n) || !fits_int(rows) || y_cols < 0 || !fits_int(y_cols + 1)) return -1;
    double *xd = malloc((size_t)rows * (size_t)n * sizeof(double));
    double *yd = y_cols > 0 ? malloc((size_t)rows * (size_t)y_cols * sizeof(double)) : NULL;
    if (!xd || (y_cols > 0 && !yd)) { free(xd); free(yd); return -2; }
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < x_cols; j++) xd[r * n + j] = x[r * x_cols + j];
        if (augment) xd[r * n + x_cols] = 1.0;
        for (int64_t j = 0; j < y_cols; j++) yd[r * y_cols + j] = y[r * y_cols + j];
    }
    openblas_set_num_threads(threads > 0 ? threads : 1);
    // Upper triangle of cxx += Xᵀ X (row-major n × n); the caller mirrors it when done.
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)n, (int)rows, 1.0, xd, (int)n, 1.0, cxx, (int)n);
    if (y_cols > 0)
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)y_cols, (int)n, (int)rows, 1.0, yd, (int)y_cols,
                    xd, (int)n, 1.0, cyx, (int)n);
    free(xd);
    free(yd);
    return 0;
}

int hk_dgemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, const double *a, const double *b,
             double *c, int threads) {
    if (!fits_int(m) || !fits_int(n) || !fits_int(k)) return -1;
    openblas_set_num_threads(threads > 0 ? threads : 1);
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, 1.0, a, trans_a ? (int)m : (int)k, b, trans_b ? (int)k : (int)n,
                0.0, c, (int)n);
    return 0;
}

int hk_spd_solve(int64_t n, double *a, int64_t nrhs, double *b) {
    if (!fits_int(n) || !fits_int(nrhs)) return -1;
    const int ni = (int)n, nr = (int)nrhs;
    int info = 0;
    // a is symmetric, so its row-major upper triangle is LAPACK's column-major lower one.
    dposv_("L", &ni, &nr, a, &ni, b, &ni, &info, 1);
    return info;
}

int hk_sym_eigen(int64_t n, double *a, double *w) {
    if (!fits_int(n)) return -1;
    const int ni = (int)n;
    int info = 0, lwork = -1, liwork = -1, iwork_size = 0;
    double work_size = 0;
    dsyevd_("V", "L", &ni, a, &ni, w, &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1);
    if (info != 0) return info;
    lwork = (int)work_size + 1;
    liwork = iwork_size;
    double *work = malloc((size_t)lwork * sizeof(double));
    int *iwork = malloc((size_t)liwork * sizeof(int));
    if (!work || !iwork) { free(work); free(iwork); return -2; }
    dsyevd_("V", "L", &ni, a, &ni, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work);
    free(iwork);
    return info;
}
