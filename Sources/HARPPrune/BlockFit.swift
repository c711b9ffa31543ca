import HARP

/// How HARP's pruned attention blocks are rebuilt (`harp-prune --fit`).
public enum FitMode: String, Sendable, CaseIterable {
    /// The paper: `α · W_O′ · W_V` with α from a grid search (the default).
    case alpha
    /// Keep W_V; fit W_O′ (d × kvHeads·headDim) and an output bias by ridge least squares.
    case output
    /// Reduced-rank regression: fit W_V and W_O′ at rank kvHeads·headDim (the value-only shapes),
    /// and an output bias.
    case rank
    /// A full d × d map plus bias (`AttentionKind.linear`, llama.cpp deci's "linear attention").
    case linear
}

/// The closed-form reconstruction of one pruned attention block from its Gram matrices: inputs x
/// are the block's normed inputs, targets y the dense block's outputs (before any post-attention
/// norm) on the inputs the already-pruned model gives it. Every fit minimises
/// `E‖y − f(x)‖² + λ‖·‖²` with the ridge λ relative to the mean input energy:
/// `λ = ridge · tr(C)/n` over the regularised (non-constant) inputs of the solve.
struct BlockFit {
    let mode: FitMode
    /// Relative ridge (see above).
    let ridge: Double
    /// Fit a free constant (the output bias, or for `rank` the value bias); off for deci export.
    let bias: Bool
    let threads: Int

    /// What replaces the block.
    enum Solution {
        /// Value-only: `W_O′ · (W_V x + b_V) + b_O`.
        case valueOnly(value: [Float]?, valueBias: [Float]?, output: [Float], outputBias: [Float]?)
        /// `W x + b`, W d × d.
        case linear(output: [Float], outputBias: [Float]?)
    }

    struct Result {
        var solution: Solution
        /// `E‖y − ŷ‖² / E‖y‖²` on the calibration statistics (with the fitted weights before re-encoding).
        var relativeResidual: Double
    }

    /// `value` (kv × d, with `valueBias`) is the layer's W_V; `kvWidth` the rank of `rank`.
    func solve(_ gram: GramMatrices, value: [Float], valueBias: [Float]?, kvWidth: Int) throws -> Result {
        let d = gram.inputWidth
        let cxx = gram.inputMoments, cyx = gram.crossMoments
        // Inputs of the regression: x̃ = [x; 1] with a free constant, else x.
        let n = bias ? d + 1 : d
        func regularised(_ c: DoubleMatrix, count: Int) -> DoubleMatrix {
            c.addingToDiagonal(ridge * c.trace(first: count) / Double(max(count, 1)), first: count)
        }
        switch mode {
        case .alpha:
            throw HARPError.invalidArgument("internal: --fit alpha has no closed form")
        case .output:
            // z̃ = T x̃ with T = [W_V | b_V] (kv × (d+1)) and, with a free constant, a last row e_{d+1}.
            let zWidth = bias ? kvWidth + 1 : kvWidth
            var t = DoubleMatrix(rows: zWidth, cols: d + 1)
            for r in 0..<kvWidth {
                for c in 0..<d { t[r, c] = Double(value[r * d + c]) }
                t[r, d] = Double(valueBias?[r] ?? 0)
            }
            if bias { t[kvWidth, d] = 1 }
            let czz = try t.times(try cxx.times(t, transposingOther: true, threads: threads), threads: threads).symmetrized
            let cyz = try cyx.times(t, transposingOther: true, threads: threads)
            let w = try cyz.solvingRight(regularised(czz, count: kvWidth))
            let residual = try Self.residual(gram, map: try w.times(t, threads: threads))
            let output = w.block(rows: d, cols: kvWidth)
            return Result(solution: .valueOnly(value: nil, valueBias: valueBias, output: output.floats,
                                               outputBias: bias ? w.column(kvWidth).map(Float.init) : nil),
                          relativeResidual: residual)
        case .linear, .rank:
            let c = cxx.block(rows: n, cols: n)
            let cr = regularised(c, count: d)
            let cy = cyx.block(rows: d, cols: n)
            let m = try cy.solvingRight(cr)  // M = C_yx (C_xx + λI)⁻¹, d × n
            if mode == .linear {
                return Result(solution: .linear(output: m.block(rows: d, cols: d).floats, outputBias: bias ? m.column(d).map(Float.init) : nil),
                              relativeResidual: try Self.residual(gram, map: Self.padded(m, to: d + 1)))
            }
            guard bias else {
                // No constant: the principal subspace of the fitted outputs, M (C_xx + λI) Mᵀ = C_yx Mᵀ.
                let u = try Self.principalRows(try cy.times(m, transposingOther: true, threads: threads), count: kvWidth)
                let v = try u.times(m, threads: threads)  // W_V = U_rᵀ M
                let projected = try u.times(v, transposingSelf: true, threads: threads)
                return Result(solution: .valueOnly(value: v.floats, valueBias: nil, output: u.transposed.floats, outputBias: nil),
                              relativeResidual: try Self.residual(gram, map: Self.padded(projected, to: d + 1)))
            }
            // With a constant the regression is on centred data (the unpenalised intercept): M = [M_c | ȳ − M_c μ].
            // The rank-r map is fitted to the centred outputs and the constant goes to the output
            // bias, b_O = ȳ − U_r U_rᵀ M_c μ, which can lie outside the span of W_O′.
            let mc = m.block(rows: d, cols: d)
            let mean = (0..<d).map { cxx[$0, d] }, targetMean = cyx.column(d)
            var centred = cyx.block(rows: d, cols: d)  // Σ_yx = C_yx − ȳ μᵀ
            for i in 0..<d { for j in 0..<d { centred[i, j] -= targetMean[i] * mean[j] } }
            let u = try Self.principalRows(try centred.times(mc, transposingOther: true, threads: threads), count: kvWidth)
            let v = try u.times(mc, threads: threads)  // W_V = U_rᵀ M_c
            var projected = try u.times(v, transposingSelf: true, threads: threads)  // U_r U_rᵀ M_c
            let shift = DoubleMatrix(rows: d, cols: 1, values: mean)
            let projectedMean = try projected.times(shift, threads: threads).values
            let outputBias = zip(targetMean, projectedMean).map { $0 - $1 }
            projected = Self.padded(projected, to: d + 1)
            for i in 0..<d { projected[i, d] = outputBias[i] }
            return Result(solution: .valueOnly(value: v.floats, valueBias: nil, output: u.transposed.floats, outputBias: outputBias.map(Float.init)),
                          relativeResidual: try Self.residual(gram, map: projected))
        }
    }

    /// U_rᵀ (count × n): the eigenvectors of symmetric `s` with the `count` largest eigenvalues, as rows.
    static func principalRows(_ s: DoubleMatrix, count: Int) throws -> DoubleMatrix {
        let (_, vectors) = try s.symmetrized.symmetricEigen()
        return DoubleMatrix(rows: count, cols: s.cols, values: Array(vectors.values.suffix(count * s.cols)))  // ascending order
    }

    /// `m` with zero columns appended up to `cols` (a map that ignores the constant input).
    static func padded(_ m: DoubleMatrix, to cols: Int) -> DoubleMatrix {
        guard m.cols < cols else { return m }
        var out = DoubleMatrix(rows: m.rows, cols: cols)
        for r in 0..<m.rows { for c in 0..<m.cols { out[r, c] = m[r, c] } }
        return out
    }

    /// `E‖y − A x̃‖² / E‖y‖²` from the Gram matrices, A being e × (d+1).
    static func residual(_ gram: GramMatrices, map a: DoubleMatrix) throws -> Double {
        let cxx = gram.inputMoments, cyx = gram.crossMoments
        // E‖y − A x̃‖² = E‖y‖² − 2 tr(A C_yxᵀ) + tr(A C_xx Aᵀ)
        var cross = 0.0, quadratic = 0.0
        let ac = try a.times(cxx, threads: 1)
        for i in 0..<a.values.count {
            cross += a.values[i] * cyx.values[i]
            quadratic += ac.values[i] * a.values[i]
        }
        let energy = gram.targetEnergy
        return energy > 0 ? max(0, energy - 2 * cross + quadratic) / energy : 0
    }
}

extension ModelEditor {
    /// Replaces full-attention `layer` by a fitted block: Q, K and their norms dropped; for a
    /// value-only solution W_V (kept when `value` is nil), W_O′ and the biases set; for a linear
    /// one a d × d W and its bias. Matrices are stored like the source's W_V and W_O (re-encoded).
    /// A post-attention norm (Gemma) is kept: the fit's target is the block output before it.
    mutating func setFitted(_ layer: Int, _ solution: BlockFit.Solution) throws {
        guard case .full(_, let kvHeads, let headDim) = source.config.layers[layer].attention,
              case .full(var frame, let dense) = source.weights.layers[layer].attention else {
            throw HARPError.invalidArgument("layer \(layer) is not a dense full-attention layer; harp-prune needs a dense model")
        }
        let d = dense.output.rows, kvWidth = kvHeads * headDim
        switch solution {
        case .valueOnly(let fittedValue, let valueBias, let fittedOutput, let outputBias):
            let value = try fittedValue.map { try matrix(like: dense.value, rows: kvWidth, cols: d, floats: $0) } ?? dense.value
            frame.outputBias = outputBias
            layers[layer].attention = .valueOnly(frame, value: value, valueBias: valueBias,
                                                 output: try matrix(like: dense.output, rows: d, cols: kvWidth, floats: fittedOutput))
            specs[layer].attention = .valueOnly(kvHeads: kvHeads, headDim: headDim)
        case .linear(let fittedOutput, let outputBias):
            frame.outputBias = outputBias
            layers[layer].attention = .linear(frame, output: try matrix(like: dense.output, rows: d, cols: d, floats: fittedOutput))
            specs[layer].attention = .linear
        }
    }
}

/// Fits HARP's pruned layers bottom-up. Each layer's statistics come from one replay of the
/// calibration windows from the lowest pruned layer's cached input, with the layers below already
/// replaced by their fits and the layer itself still dense: its normed input x and its dense
/// attention output y on the pruned model's own trajectory.
struct BlockFitter {
    /// Fitted layers, bottom first.
    let layers: [Int]
    let fit: BlockFit
    let pool: ComputePool

    struct Result {
        var editor: ModelEditor
        /// Relative residual of each fitted layer, in `layers` order.
        var residuals: [Double]
        var statisticsSeconds = 0.0
        var solveSeconds = 0.0
    }

    /// `input`: the residual stream entering `layers.first` at every calibration position
    /// (windows × windowLength × d), from the dense pass.
    func run(_ editor: ModelEditor, input: [Float], calibration: CalibrationSet, progress: (Int, Int) -> Void) throws -> Result {
        guard let bottom = layers.first else { return Result(editor: editor, residuals: []) }
        var result = Result(editor: editor, residuals: [])
        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        let total = layers.count * calibration.windows.count
        for (i, layer) in layers.enumerated() {
            let started = clock.now
            let model = result.editor.build()
            guard case .full(_, let kvHeads, let headDim) = model.config.layers[layer].attention,
                  let value = model.weights.layers[layer].attention.value else {
                throw HARPError.invalidArgument("layer \(layer) is not a dense full-attention layer; harp-prune needs a dense model")
            }
            let observer = BlockGramObserver(layer: layer, width: model.config.embeddingLength, threads: pool.threadCount)
            try FitPass.replay(model, from: bottom, through: layer, input: input, calibration: calibration, pool: pool, observer: observer) {
                progress(i * calibration.windows.count + $0, total); _ = $1
            }
            if let failure = observer.failure { throw failure }
            let solving = clock.now
            result.statisticsSeconds += seconds(solving - started)
            let solved: BlockFit.Result
            do {
                solved = try fit.solve(observer.gram, value: value.weight.floats(), valueBias: value.bias,
                                       kvWidth: kvHeads * headDim)
            } catch let error as HARPError {
                throw HARPError.invalidArgument("--fit \(fit.mode.rawValue), layer \(layer): \(error.description)")
            }
            try result.editor.setFitted(layer, solved.solution)
            result.residuals.append(solved.relativeResidual)
            result.solveSeconds += seconds(clock.now - solving)
        }
        progress(total, total)
        return result
    }
}

/// Runs layers `from...through` over the calibration windows (every position, windows batched as
/// in `CalibrationPass`) from their cached input, with a KV cache for the layers that still have
/// full attention. No embedding, no layers above, no LM head.
enum FitPass {
    static func replay(_ model: Model, from bottom: Int, through top: Int, input: [Float], calibration: CalibrationSet,
                       pool: ComputePool, observer: ForwardObserver, progress: (Int, Int) -> Void) throws {
        let d = model.config.embeddingLength, length = calibration.windowLength
        guard input.count == calibration.tokenCount * d else {
            throw HARPError.invalidArgument("internal: \(input.count) cached values for \(calibration.tokenCount) positions of \(d)")
        }
        let perBatch = CalibrationPass.windowsPerBatch(calibration)
        let cache = try KVCache(config: model.config, sequences: perBatch, contextLength: length, type: .f32)
        let transformer = Transformer(model: model, pool: pool)
        var hidden = [Float](repeating: 0, count: perBatch * length * d)
        var done = 0
        while done < calibration.windows.count {
            let windows = calibration.windows[done..<min(done + perBatch, calibration.windows.count)]
            var batch = Batch()
            for (sequence, window) in windows.enumerated() {
                for (position, token) in window.enumerated() {
                    batch.append(token: token, position: position, sequence: sequence, wantLogits: false)
                }
            }
            let values = batch.count * d, offset = done * length * d
            hidden.replaceSubrange(0..<values, with: input[offset..<(offset + values)])
            hidden.withUnsafeMutableBufferPointer { buffer in
                let view = UnsafeMutableBufferPointer(rebasing: buffer[0..<values])
                for l in bottom...top { transformer.runLayer(l, hidden: view, batch: batch, cache: cache, observer: observer) }
            }
            done += windows.count
            progress(done, calibration.windows.count)
        }
    }
}
