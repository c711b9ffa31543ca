import HARP

extension ModelEditor {
    /// Turns full-attention `layer` into HARP's value-only form: Q, K (and RoPE, softmax) removed,
    /// `W_O′ = α · W_O · R` where R sums the query heads of each KV group (the GQA repeat), so
    /// W_O′ is d × kvHeads·headDim. With a post-attention norm (Gemma) α scales that norm's weight
    /// instead, since the norm would cancel a scale inside it. α = 0 removes the block.
    ///
    /// With `means` (not in the paper) the output bias becomes `E[dense block] − W_O′ · E[value]`,
    /// so the block keeps the dense block's mean output over the calibration tokens (at α = 0 the
    /// block is that constant).
    mutating func makeValueOnly(_ layer: Int, alpha: Float, groupedOutput: [Float], means: AttentionMeans? = nil) throws {
        guard alpha != 0 else {
            removeAttention(layer)
            layers[layer].attention = .none(constant: means?.dense)
            return
        }
        guard case .full(_, let kvHeads, let headDim) = source.config.layers[layer].attention,
              case .full(var frame, let p) = source.weights.layers[layer].attention else {
            throw HARPError.invalidArgument("layer \(layer) is not a dense full-attention layer; harp-prune needs a dense model")
        }
        let kvWidth = kvHeads * headDim
        let scaled = frame.postNorm == nil ? groupedOutput.map { $0 * alpha } : groupedOutput
        frame.postNorm = frame.postNorm.map { norm in norm.map { $0 * alpha } }
        if frame.postNorm == nil { frame.outputBias = frame.outputBias.map { b in b.map { $0 * alpha } } }
        let folded = try matrix(like: p.output, rows: p.output.rows, cols: kvWidth, floats: scaled)
        if let means {
            // From W_O′ as stored (re-encoded, α inside), so the mean is kept exactly.
            frame.outputBias = zip(means.dense, folded.product(means.value)).map { $0 - $1 }
        }
        layers[layer].attention = .valueOnly(frame, value: p.value, valueBias: p.biases?.value, output: folded)
        specs[layer].attention = .valueOnly(kvHeads: kvHeads, headDim: headDim)
    }
}

/// Means over the calibration tokens of a searched layer's attention block: its dense output, and
/// the value vector `W_V · E[x] + b_V` that a value-only block maps through W_O′ (it is linear in
/// the normed input x).
struct AttentionMeans {
    var dense: [Float]
    var value: [Float]

    init(layer: LayerWeights, attended: [Float], normedInput: [Float]) throws {
        guard let output = layer.attention.output, let (valueWeight, valueBias) = layer.attention.value else {
            throw HARPError.invalidArgument("internal: mean compensation needs W_O and W_V")
        }
        dense = output.product(attended)
        if let b = layer.attention.frame?.outputBias { dense = zip(dense, b).map { $0 + $1 } }
        value = valueWeight.product(normedInput)
        if let b = valueBias { value = zip(value, b).map { $0 + $1 } }
    }
}

enum HARPFolding {
    /// W_O · R: the column blocks of W_O (d × heads·headDim) that share a KV head, summed
    /// (d × kvHeads·headDim). Each token attends only to itself, so every query head of a group
    /// outputs that group's value row, and the heads' W_O blocks can be added.
    static func groupedOutput(_ output: WeightMatrix, heads: Int, kvHeads: Int, headDim: Int) -> [Float] {
        let wo = output.floats()
        let d = output.rows, groupSize = heads / kvHeads, kvWidth = kvHeads * headDim
        var folded = [Float](repeating: 0, count: d * kvWidth)
        for r in 0..<d {
            for h in 0..<heads {
                let from = r * heads * headDim + h * headDim, to = r * kvWidth + (h / groupSize) * headDim
                for i in 0..<headDim { folded[to + i] += wo[from + i] }
            }
        }
        return folded
    }
}

/// HARP's greedy α search, top layer first: for each searched layer and each α of the grid, the
/// candidate model (layers above already fixed) is scored by the runtime on the calibration rows,
/// starting from the cached dense input of that layer. Layers below a searched layer are still
/// dense and unchanged, so they are never re-run; each candidate costs the layers from the searched
/// one to the top plus the LM head, over the scored rows only.
///
/// The greedy pass picks the upper layers' α while the layers below still have their attention.
/// Refinement sweeps then revisit every searched layer with all the others pruned, trying the
/// grid neighbours of its α (coordinate descent on the same calibration perplexity); a sweep that
/// moves nothing ends them. All searched layers mix no tokens, so these candidates replay from the
/// lowest searched layer's cached input.
struct HARPSearch {
    /// Searched layers, top first.
    let layers: [Int]
    let grid: [Float]
    /// At most this many refinement sweeps after the greedy pass.
    var refinementSweeps = 0
    /// Per searched layer, the dense means that mean compensation keeps (empty: plain HARP).
    var means: [Int: AttentionMeans] = [:]
    let pool: ComputePool

    struct Result {
        var editor: ModelEditor
        /// α chosen for each searched layer, in `layers` order.
        var alphas: [Float]
        /// Calibration perplexity of every grid value in the greedy pass, per searched layer.
        var perplexities: [[Double]]
        /// Calibration perplexity (searched rows) after the greedy pass and after each refinement sweep.
        var sweepPerplexities: [Double]
        /// Candidate models scored, and the decoder layers they replayed in all (each over the searched rows).
        var candidates: Int
        var layerPasses: Int
    }

    func run(_ editor: ModelEditor, inputs: [Int: [Float]], targets: [Int32],
             progress: (Int, Int) -> Void) throws -> Result {
        var current = editor
        var chosen: [Int] = []  // grid index per searched layer
        var perplexities: [[Double]] = []
        var currentPerplexity = Double.infinity
        let greedyTotal = layers.count * grid.count
        // Progress counts the greedy candidates plus two neighbours per layer and sweep (an upper bound).
        let total = greedyTotal + refinementSweeps * 2 * layers.count
        var done = 0, layerPasses = 0
        let top = (layers.max() ?? 0) + 1
        // W_O · R per searched layer, folded once for the greedy pass and the sweeps.
        let grouped = try layers.map { try groupedOutput($0, editor.source) }
        for (i, layer) in layers.enumerated() {
            guard let input = inputs[layer] else { throw HARPError.invalidArgument("internal: no cached input for layer \(layer)") }
            var best: (ppl: Double, editor: ModelEditor, index: Int)?
            var row: [Double] = []
            for (index, alpha) in grid.enumerated() {
                var candidate = current
                try candidate.makeValueOnly(layer, alpha: alpha, groupedOutput: grouped[i], means: means[layer])
                let ppl = try Replay.perplexity(candidate.build(), from: layer, input: input, targets: targets, pool: pool)
                layerPasses += top - layer
                row.append(ppl)
                if best.map({ ppl < $0.ppl }) ?? true { best = (ppl, candidate, index) }
                done += 1
                progress(done, total)
            }
            guard let best else { throw HARPError.invalidArgument("the α grid is empty") }
            current = best.editor
            chosen.append(best.index)
            perplexities.append(row)
            currentPerplexity = best.ppl
        }
        // No searched layer (--drop-last 0): no greedy pass, so no figure to report.
        var sweepPerplexities = layers.isEmpty ? [] : [currentPerplexity]
        if let bottom = layers.min(), let input = inputs[bottom], grid.count > 1 {
            sweeps: for _ in 0..<refinementSweeps {
                var moved = false
                for (i, layer) in layers.enumerated() {
                    for index in [chosen[i] - 1, chosen[i] + 1] where grid.indices.contains(index) {
                        var candidate = current
                        try candidate.makeValueOnly(layer, alpha: grid[index], groupedOutput: grouped[i], means: means[layer])
                        let ppl = try Replay.perplexity(candidate.build(), from: bottom, input: input, targets: targets, pool: pool)
                        layerPasses += top - bottom
                        done += 1
                        progress(done, total)
                        if ppl < currentPerplexity {
                            (current, chosen[i], currentPerplexity, moved) = (candidate, index, ppl, true)
                        }
                    }
                }
                sweepPerplexities.append(currentPerplexity)
                if !moved { break sweeps }
            }
        }
        progress(total, total)
        return Result(editor: current, alphas: chosen.map { grid[$0] }, perplexities: perplexities,
                      sweepPerplexities: sweepPerplexities, candidates: done, layerPasses: layerPasses)
    }

    private func groupedOutput(_ layer: Int, _ source: Model) throws -> [Float] {
        guard case .full(let heads, let kvHeads, let headDim) = source.config.layers[layer].attention,
              case .full(_, let p) = source.weights.layers[layer].attention else {
            throw HARPError.invalidArgument("layer \(layer) is not a dense full-attention layer; harp-prune needs a dense model")
        }
        return HARPFolding.groupedOutput(p.output, heads: heads, kvHeads: kvHeads, headDim: headDim)
    }
}

/// Scores a model from a cached residual stream: runs layers `layer...` and the LM head on rows
/// that are independent tokens. Valid only when no replayed layer mixes tokens (no full
/// attention at or above `layer`), which holds for the layers HARP has pruned.
enum Replay {
    static let rowsPerChunk = 256

    static func perplexity(_ model: Model, from layer: Int, input: [Float], targets: [Int32], pool: ComputePool) throws -> Double {
        let config = model.config
        let d = config.embeddingLength
        guard input.count == targets.count * d else {
            throw HARPError.invalidArgument("internal: \(input.count) cached values for \(targets.count) rows of \(d)")
        }
        if let mixing = (layer..<config.layerCount).first(where: { config.layers[$0].attention.needsKVCache }) {
            throw HARPError.invalidArgument("internal: cannot replay from layer \(layer): layer \(mixing) still has full attention")
        }
        let transformer = Transformer(model: model, pool: pool)
        var loss = NextTokenLoss()
        var hidden = [Float](repeating: 0, count: rowsPerChunk * d)
        var start = 0
        while start < targets.count {
            let rows = min(rowsPerChunk, targets.count - start)
            hidden.replaceSubrange(0..<(rows * d), with: input[(start * d)..<((start + rows) * d)])
            let batch = Batch(tokens: Array(repeating: 0, count: rows), startPosition: 0, allLogits: true)
            var logits = hidden.withUnsafeMutableBufferPointer { buffer -> [Float] in
                let view = UnsafeMutableBufferPointer(rebasing: buffer[0..<(rows * d)])
                for l in layer..<config.layerCount { transformer.runLayer(l, hidden: view, batch: batch, cache: nil) }
                return transformer.logits(hidden: view, rows: Array(0..<rows))
            }
            loss.add(logits: &logits, vocabularySize: config.vocabularySize, targets: Array(targets[start..<(start + rows)]))
            start += rows
        }
        return loss.perplexity
    }
}
