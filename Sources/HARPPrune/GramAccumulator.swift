import CKernels
import HARP

/// A dense row-major matrix of doubles: the pruner's fitting arithmetic (Gram matrices, their
/// solves and eigenvectors), run by OpenBLAS / LAPACK through CKernels.
struct DoubleMatrix: Equatable {
    let rows: Int
    let cols: Int
    var values: [Double]

    init(rows: Int, cols: Int, values: [Double]? = nil) {
        precondition(values.map { $0.count == rows * cols } ?? true, "internal: matrix size")
        self.rows = rows
        self.cols = cols
        self.values = values ?? Array(repeating: 0, count: rows * cols)
    }

    subscript(r: Int, c: Int) -> Double {
        get { values[r * cols + c] }
        set { values[r * cols + c] = newValue }
    }

    /// `self · other` (`transposing*` uses the transpose of that operand).
    func times(_ other: DoubleMatrix, transposingSelf: Bool = false, transposingOther: Bool = false, threads: Int) throws -> DoubleMatrix {
        let (m, k) = transposingSelf ? (cols, rows) : (rows, cols)
        let (k2, n) = transposingOther ? (other.cols, other.rows) : (other.rows, other.cols)
        guard k == k2 else { throw HARPError.invalidArgument("internal: \(m)×\(k) times \(k2)×\(n)") }
        var out = DoubleMatrix(rows: m, cols: n)
        let status = values.withUnsafeBufferPointer { a in
            other.values.withUnsafeBufferPointer { b in
                out.values.withUnsafeMutableBufferPointer { c in
                    hk_dgemm(transposingSelf ? 1 : 0, transposingOther ? 1 : 0, Int64(m), Int64(n), Int64(k),
                             a.baseAddress, b.baseAddress, c.baseAddress, Int32(threads))
                }
            }
        }
        guard status == 0 else { throw HARPError.invalidArgument("internal: a \(m)×\(n) product is too large for BLAS") }
        return out
    }

    /// The leading `rows × cols` block.
    func block(rows r: Int, cols c: Int) -> DoubleMatrix {
        var out = DoubleMatrix(rows: r, cols: c)
        for i in 0..<r { for j in 0..<c { out[i, j] = self[i, j] } }
        return out
    }

    /// Column `c`.
    func column(_ c: Int) -> [Double] { (0..<rows).map { self[$0, c] } }

    var transposed: DoubleMatrix {
        var out = DoubleMatrix(rows: cols, cols: rows)
        for i in 0..<rows { for j in 0..<cols { out[j, i] = self[i, j] } }
        return out
    }

    var floats: [Float] { values.map { Float($0) } }

    /// The sum of the first `count` diagonal entries (all when nil).
    func trace(first count: Int? = nil) -> Double {
        (0..<(count ?? min(rows, cols))).reduce(0) { $0 + self[$1, $1] }
    }

    /// X with `X · A = self` for symmetric positive-definite `a` (rows of self are right-hand sides).
    func solvingRight(_ a: DoubleMatrix) throws -> DoubleMatrix {
        guard a.rows == a.cols, a.cols == cols else { throw HARPError.invalidArgument("internal: solve of \(rows)×\(cols) by \(a.rows)×\(a.cols)") }
        var factor = a.values
        var x = values
        // X A = B ⇔ A Xᵀ = Bᵀ; row-major X (rows × n) is column-major Xᵀ (n × rows).
        let info = factor.withUnsafeMutableBufferPointer { f in
            x.withUnsafeMutableBufferPointer { b in hk_spd_solve(Int64(cols), f.baseAddress, Int64(rows), b.baseAddress) }
        }
        guard info == 0 else {
            throw HARPError.invalidArgument(info > 0 ? "the Gram matrix is not positive definite (raise --ridge)"
                                                     : "internal: LAPACK dposv rejected argument \(-info)")
        }
        return DoubleMatrix(rows: rows, cols: cols, values: x)
    }

    /// Eigenvalues (ascending) and eigenvectors (row k for eigenvalue k) of this symmetric matrix.
    func symmetricEigen() throws -> (values: [Double], vectors: DoubleMatrix) {
        guard rows == cols else { throw HARPError.invalidArgument("internal: eigen-decomposition of a \(rows)×\(cols) matrix") }
        var a = values
        var w = [Double](repeating: 0, count: rows)
        let info = a.withUnsafeMutableBufferPointer { ap in
            w.withUnsafeMutableBufferPointer { wp in hk_sym_eigen(Int64(rows), ap.baseAddress, wp.baseAddress) }
        }
        guard info == 0 else { throw HARPError.invalidArgument("internal: LAPACK dsyevd failed (info \(info))") }
        return (w, DoubleMatrix(rows: rows, cols: cols, values: a))
    }

    /// (self + selfᵀ) / 2: removes rounding asymmetry before a symmetric solver.
    var symmetrized: DoubleMatrix {
        var out = self
        for i in 0..<rows { for j in 0..<i { let m = (self[i, j] + self[j, i]) / 2; out[i, j] = m; out[j, i] = m } }
        return out
    }

    /// Adds `lambda` to the first `count` diagonal entries.
    func addingToDiagonal(_ lambda: Double, first count: Int) -> DoubleMatrix {
        var out = self
        for i in 0..<count { out[i, i] += lambda }
        return out
    }
}

/// Second moments of (input, target) row pairs over calibration tokens, accumulated in double
/// precision: with x̃ = [x; 1], `xx = (1/T) Σ x̃ x̃ᵀ` ((d+1) × (d+1)) and `yx = (1/T) Σ y x̃ᵀ`
/// (e × (d+1)), plus `(1/T) Σ ‖y‖²` for the fit's residual. Memory O(d²), not O(T·d).
struct GramMatrices {
    let inputWidth: Int
    let outputWidth: Int
    private var xxSum: [Double]
    private var yxSum: [Double]
    private var yySum = 0.0
    private(set) var count = 0

    init(inputWidth: Int, outputWidth: Int) {
        self.inputWidth = inputWidth
        self.outputWidth = outputWidth
        xxSum = Array(repeating: 0, count: (inputWidth + 1) * (inputWidth + 1))
        yxSum = Array(repeating: 0, count: outputWidth * (inputWidth + 1))
    }

    /// Adds `rows` pairs: x (rows × inputWidth) and y (rows × outputWidth), row-major.
    mutating func add(x: UnsafePointer<Float>, y: UnsafePointer<Float>, rows: Int, threads: Int) throws {
        let status = xxSum.withUnsafeMutableBufferPointer { xx in
            yxSum.withUnsafeMutableBufferPointer { yx in
                hk_gram_accumulate(x, Int64(inputWidth), y, Int64(outputWidth), Int64(rows), 1,
                                   xx.baseAddress, yx.baseAddress, Int32(threads))
            }
        }
        guard status == 0 else { throw HARPError.invalidArgument("internal: Gram accumulation of \(rows) rows failed (\(status))") }
        for i in 0..<(rows * outputWidth) { yySum += Double(y[i]) * Double(y[i]) }
        count += rows
    }

    /// `(1/T) Σ x̃ x̃ᵀ`, both triangles filled.
    var inputMoments: DoubleMatrix {
        let n = inputWidth + 1, scale = 1 / Double(max(count, 1))
        var m = DoubleMatrix(rows: n, cols: n)
        for i in 0..<n {
            for j in i..<n {
                let v = xxSum[i * n + j] * scale  // dsyrk filled the upper triangle
                m[i, j] = v
                m[j, i] = v
            }
        }
        return m
    }

    /// `(1/T) Σ y x̃ᵀ`.
    var crossMoments: DoubleMatrix {
        let scale = 1 / Double(max(count, 1))
        return DoubleMatrix(rows: outputWidth, cols: inputWidth + 1, values: yxSum.map { $0 * scale })
    }

    /// `(1/T) Σ ‖y‖²`.
    var targetEnergy: Double { yySum / Double(max(count, 1)) }
}

/// Collects the Gram matrices of one layer's attention block over a forward pass: its normed
/// input x (`attentionInput`) and its output y before any post-attention norm (`attentionOutput`).
final class BlockGramObserver: ForwardObserver {
    let layer: Int
    let threads: Int
    private(set) var gram: GramMatrices
    private var pending: [Float] = []
    private(set) var failure: Error?

    init(layer: Int, width: Int, threads: Int) {
        self.layer = layer
        self.threads = threads
        gram = GramMatrices(inputWidth: width, outputWidth: width)
    }

    func attentionInput(_ layer: Int, normed: UnsafeBufferPointer<Float>, rows: Int) {
        guard layer == self.layer else { return }
        pending = Array(normed)
    }

    func attentionOutput(_ layer: Int, output: UnsafeBufferPointer<Float>, rows: Int) {
        guard layer == self.layer, failure == nil, let y = output.baseAddress else { return }
        guard pending.count == output.count else {
            failure = HARPError.invalidArgument("internal: layer \(layer) gave \(output.count) outputs for \(pending.count) inputs")
            return
        }
        do {
            try pending.withUnsafeBufferPointer { x in
                guard let xp = x.baseAddress else { return }
                try gram.add(x: xp, y: y, rows: rows, threads: threads)
            }
        } catch { failure = error }
        pending = []
    }
}
