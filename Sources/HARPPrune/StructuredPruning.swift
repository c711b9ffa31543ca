import HARP

/// FLAP's MLP pruning (An et al., 2024): channel score = variance of the down-projection input
/// channel over the calibration tokens × squared norm of the matching `W_down` column (WIFV),
/// standardized within each layer, one global threshold; removed channels are compensated by
/// `bias_down += W_down[:, removed] · mean[removed]`. Kept widths are rounded to the quantization block.
enum FLAPMLP {
    static func prune(_ editor: inout ModelEditor, moments: [Int: ChannelMoments], ratio: Float) throws {
        guard ratio > 0 else { return }
        var scores: [Int: [Float]] = [:]
        var standardized: [Float] = []
        for (layer, w) in editor.layers.enumerated() where editor.specs[layer].ffnWidth > 0 {
            guard let down = w.mlp.gated?.down, let m = moments[layer] else {
                throw HARPError.invalidArgument("internal: no MLP statistics for layer \(layer)")
            }
            let columnNorms = squaredColumnNorms(down)
            let s = zip(m.variance, columnNorms).map { $0 * $1 }
            scores[layer] = s
            standardized += zScores(s)
        }
        guard !standardized.isEmpty else { return }
        let threshold = standardized.sorted()[min(standardized.count - 1, Int(Float(standardized.count) * ratio))]
        for (layer, s) in scores.sorted(by: { $0.key < $1.key }) {
            guard let down = editor.layers[layer].mlp.gated?.down, let m = moments[layer] else { continue }
            let block = down.type.blockSize > 1 ? down.type.blockSize : 32
            let above = zScores(s).filter { $0 >= threshold }.count
            let width = min(s.count, Int((Float(above) / Float(block)).rounded()) * block)
            guard width < s.count else { continue }
            let kept = s.indices.sorted { s[$0] > s[$1] }.prefix(width).sorted()
            let keptSet = Set(kept)
            let removed = s.indices.filter { !keptSet.contains($0) }
            let compensation = HeadPruning.biasCompensation(down, columns: removed, mean: m.mean)
            try editor.keepMLPChannels(layer, Array(kept), compensation: compensation)
        }
    }

    static func squaredColumnNorms(_ m: WeightMatrix) -> [Float] {
        let f = m.floats()
        var norms = [Float](repeating: 0, count: m.cols)
        for r in 0..<m.rows { for c in 0..<m.cols { norms[c] += f[r * m.cols + c] * f[r * m.cols + c] } }
        return norms
    }

    static func zScores(_ s: [Float]) -> [Float] {
        let n = Float(s.count)
        let mean = s.reduce(0, +) / n
        let std = (s.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n).squareRoot()
        return s.map { std > 0 ? ($0 - mean) / std : 0 }
    }
}

/// The attention-head baselines: whole KV groups (a KV head with its query heads) are removed, so
/// the KV cache shrinks by the same share as HARP's. Scores are over the columns of `W_O` that
/// read the group's heads (FLAP's pruning code scores heads the same way):
/// - FLAP: Σ variance(input channel) × ‖W_O column‖², removed heads compensated in the output bias
///   (a layer losing every group keeps that bias as a constant block);
/// - Wanda-sp: Σ mean|W_O column| × RMS(input channel);
/// - magnitude-sp: Σ ‖W_O column‖.
/// Scores are standardized within each layer (FLAP's adaptive structure) and the lowest groups
/// across all layers are removed. Raw Wanda and magnitude scores are not comparable across layers:
/// ranked globally they strip the early layers' attention entirely.
public enum HeadScore: String, Sendable, CaseIterable {
    case flap, wandaSP = "wanda-sp", magnitudeSP = "magnitude-sp"
}

enum HeadPruning {
    static func prune(_ editor: inout ModelEditor, score: HeadScore, groupsToRemove: Int,
                      moments: [Int: ChannelMoments]) throws {
        var candidates: [(layer: Int, group: Int, score: Float)] = []
        for (layer, spec) in editor.specs.enumerated() {
            guard case .full(let heads, let kvHeads, let headDim) = spec.attention, let o = editor.layers[layer].attention.output else { continue }
            let f = o.floats()
            var absMean = [Float](repeating: 0, count: o.cols), squares = [Float](repeating: 0, count: o.cols)
            for r in 0..<o.rows {
                for c in 0..<o.cols {
                    let v = f[r * o.cols + c]
                    absMean[c] += abs(v) / Float(o.rows)
                    squares[c] += v * v
                }
            }
            let channel: [Float]
            switch score {
            case .flap:
                guard let m = moments[layer] else { throw HARPError.invalidArgument("internal: no attention statistics for layer \(layer)") }
                channel = zip(m.variance, squares).map { $0 * $1 }
            case .wandaSP:
                guard let m = moments[layer] else { throw HARPError.invalidArgument("internal: no attention statistics for layer \(layer)") }
                channel = zip(m.meanSquare, absMean).map { $0.squareRoot() * $1 }
            case .magnitudeSP:
                channel = squares.map { $0.squareRoot() }
            }
            let groupWidth = heads / kvHeads * headDim
            let groups = (0..<kvHeads).map { g in channel[(g * groupWidth)..<((g + 1) * groupWidth)].reduce(0, +) }
            candidates += FLAPMLP.zScores(groups).enumerated().map { (layer, $0.offset, $0.element) }
        }
        guard groupsToRemove <= candidates.count else {
            throw HARPError.invalidArgument("cannot remove \(groupsToRemove) KV heads: the model has \(candidates.count)")
        }
        let removed = candidates.sorted { $0.score < $1.score }.prefix(groupsToRemove)
        for layer in Set(removed.map(\.layer)).sorted() {
            guard case .full(let heads, let kvHeads, let headDim) = editor.specs[layer].attention else { continue }
            let gone = Set(removed.filter { $0.layer == layer }.map(\.group))
            var compensation: [Float]?
            if score == .flap, let o = editor.layers[layer].attention.output, let m = moments[layer] {
                let groupWidth = heads / kvHeads * headDim
                let columns = gone.sorted().flatMap { g in (g * groupWidth)..<((g + 1) * groupWidth) }
                compensation = biasCompensation(o, columns: columns, mean: m.mean)
            }
            try editor.keepKVGroups(layer, (0..<kvHeads).filter { !gone.contains($0) }, compensation: compensation)
        }
    }

    /// FLAP's bias compensation: `W[:, columns] · mean[columns]`, what the removed input channels
    /// contributed to the output on average over the calibration tokens.
    static func biasCompensation(_ w: WeightMatrix, columns: [Int], mean: [Float]) -> [Float] {
        w.product(mean, columns: columns)
    }
}

/// ShortGPT (Men et al., 2024): block influence BI = 1 − mean cos(layer input, layer output);
/// the layers with the lowest influence are removed whole.
enum LayerRemoval {
    static func prune(_ editor: inout ModelEditor, layersToRemove: Int, similarities: [Int: Double]) throws -> [Int] {
        guard layersToRemove <= editor.specs.count else {
            throw HARPError.invalidArgument("cannot remove \(layersToRemove) layers: the model has \(editor.specs.count)")
        }
        let influence = editor.specs.indices.map { (layer: $0, bi: 1 - (similarities[$0] ?? 0)) }
        let removed = influence.sorted { $0.bi < $1.bi }.prefix(layersToRemove).map(\.layer).sorted()
        for layer in removed {
            editor.removeAttention(layer)
            editor.removeMLP(layer)
        }
        return removed
    }
}

extension WeightMatrix {
    /// `W · x` over the given columns (all by default): the pruner's means through a matrix.
    func product(_ x: [Float], columns: [Int]? = nil) -> [Float] {
        let f = floats()
        let columns = columns ?? Array(0..<cols)
        return (0..<rows).map { r in columns.reduce(Float(0)) { $0 + f[r * cols + $1] * x[$1] } }
    }
}
