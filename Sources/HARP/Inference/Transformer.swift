import CKernels
import Foundation

/// Receives intermediate activations of a forward pass (the pruner's calibration statistics).
/// Pointers are valid only during the call; rows are the batch's tokens.
public protocol ForwardObserver: AnyObject {
    /// The residual stream entering layer `layer` (T × d).
    func layerInput(_ layer: Int, hidden: UnsafeBufferPointer<Float>, rows: Int)
    /// The normalised input of the attention block (T × d).
    func attentionInput(_ layer: Int, normed: UnsafeBufferPointer<Float>, rows: Int)
    /// The input of the attention output projection of a full-attention layer: each head's
    /// attended values (T × heads·headDim).
    func attentionValues(_ layer: Int, attended: UnsafeBufferPointer<Float>, rows: Int)
    /// The attention block's output with its output bias, before any post-attention norm (T × d).
    func attentionOutput(_ layer: Int, output: UnsafeBufferPointer<Float>, rows: Int)
    /// The input of the MLP down projection, after the gate activation (T × ffnWidth).
    func ffnHidden(_ layer: Int, hidden: UnsafeBufferPointer<Float>, rows: Int)
    /// The residual stream leaving layer `layer` (T × d).
    func layerOutput(_ layer: Int, hidden: UnsafeBufferPointer<Float>, rows: Int)
}

extension ForwardObserver {
    public func layerInput(_ layer: Int, hidden: UnsafeBufferPointer<Float>, rows: Int) {}
    public func attentionInput(_ layer: Int, normed: UnsafeBufferPointer<Float>, rows: Int) {}
    public func attentionValues(_ layer: Int, attended: UnsafeBufferPointer<Float>, rows: Int) {}
    public func attentionOutput(_ layer: Int, output: UnsafeBufferPointer<Float>, rows: Int) {}
    public func ffnHidden(_ layer: Int, hidden: UnsafeBufferPointer<Float>, rows: Int) {}
    public func layerOutput(_ layer: Int, hidden: UnsafeBufferPointer<Float>, rows: Int) {}
}

/// The decoder forward pass over a batch of tokens, layer by layer, following each layer's
/// `LayerSpec`. Holds scratch memory sized for the largest batch seen, so it is used by one
/// caller at a time (an engine owns one).
public final class Transformer: @unchecked Sendable {  // single-threaded use by contract; see Engine
    public let model: Model
    public let pool: ComputePool
    private let scratch = Scratch()

    public init(model: Model, pool: ComputePool) {
        self.model = model
        self.pool = pool
    }

    public var config: ModelConfig { model.config }

    /// Runs the batch through the model, storing its keys and values in `cache`, and returns the
    /// logits of `batch.logitRows` (row-major, logitRows.count × vocabularySize).
    public func forward(_ batch: Batch, cache: KVCache, observer: ForwardObserver? = nil) throws -> [Float] {
        try validate(batch, cache: cache)
        let hidden = embed(batch)
        for layer in config.layers.indices {
            runLayer(layer, hidden: hidden, batch: batch, cache: cache, observer: observer)
        }
        return logits(hidden: hidden, rows: batch.logitRows)
    }

    /// Checks a batch against the model and the cache before any state changes.
    public func validate(_ batch: Batch, cache: KVCache) throws {
        let n = batch.count
        guard n > 0 else { throw HARPError.invalidRequest("empty batch") }
        guard batch.positions.count == n, batch.sequences.count == n else {
            throw HARPError.invalidRequest("batch arrays have different lengths")
        }
        let vocab = config.vocabularySize
        for i in 0..<n {
            guard batch.tokens[i] >= 0, Int(batch.tokens[i]) < vocab else {
                throw HARPError.invalidRequest("token id \(batch.tokens[i]) is outside the vocabulary (0..<\(vocab))")
            }
            guard batch.positions[i] >= 0, batch.positions[i] < cache.contextLength else {
                throw HARPError.invalidRequest("position \(batch.positions[i]) is outside the context of \(cache.contextLength) tokens")
            }
            guard batch.sequences[i] >= 0, batch.sequences[i] < cache.sequenceCount else {
                throw HARPError.invalidRequest("sequence \(batch.sequences[i]) is outside the cache's \(cache.sequenceCount) sequences")
            }
        }
        guard batch.logitRows.allSatisfy({ $0 >= 0 && $0 < n }) else {
            throw HARPError.invalidRequest("logit row outside the batch")
        }
        if cache.hasWindowBuffers { try validateSlidingWindowHistory(batch, cache: cache) }
    }

    /// Window buffers keep only recent positions: each sequence's positions in a batch must be
    /// consecutive, and the window of its first one must still be held.
    private func validateSlidingWindowHistory(_ batch: Batch, cache: KVCache) throws {
        var lastPosition: [Int: Int] = [:]
        for (sequence, position) in zip(batch.sequences, batch.positions) {
            if let previous = lastPosition[sequence] {
                guard position == previous + 1 else {
                    throw HARPError.invalidRequest("sequence \(sequence): position \(position) follows \(previous) in the batch; models with sliding-window attention need consecutive positions")
                }
            } else if let missing = cache.missingHistory(sequence: sequence, position: position) {
                throw HARPError.invalidRequest("sequence \(sequence): position \(position) attends back to position \(missing.position), which the \(missing.window)-token sliding-window cache no longer holds; restart the sequence from position 0")
            }
            lastPosition[sequence] = position
        }
    }

    // MARK: - Steps (public for the pruner, which replays layers from cached inputs)

    /// The residual stream after the embedding: a T × d buffer owned by the transformer's scratch.
    public func embed(_ batch: Batch) -> UnsafeMutableBufferPointer<Float> {
        let d = config.embeddingLength
        let x = scratch.hidden.reserve(batch.count * d)
        let table = model.weights.tokenEmbedding
        for (i, token) in batch.tokens.enumerated() {
            hk_dequantize_row(Int32(table.type.rawValue), table.data + Int(token) * table.rowBytes, x + i * d, Int64(d))
        }
        if config.embeddingScale != 1 { hk_scale(x, config.embeddingScale, Int64(batch.count * d)) }
        return UnsafeMutableBufferPointer(start: x, count: batch.count * d)
    }

    /// Applies decoder layer `layer` to `hidden` (T × d) in place.
    public func runLayer(_ layer: Int, hidden: UnsafeMutableBufferPointer<Float>, batch: Batch,
                         cache: KVCache?, observer: ForwardObserver? = nil) {
        guard let x = hidden.baseAddress else { return }
        let spec = config.layers[layer]
        let w = model.weights.layers[layer]
        let t = batch.count
        let d = config.embeddingLength
        observer?.layerInput(layer, hidden: UnsafeBufferPointer(hidden), rows: t)

        if let frame = w.attention.frame {
            let xn = scratch.normed.reserve(t * d)
            hk_rmsnorm(x, frame.norm, xn, Int64(d), Int64(t), config.normEpsilon)
            observer?.attentionInput(layer, normed: UnsafeBufferPointer(start: xn, count: t * d), rows: t)
            let out = scratch.blockOut.reserve(t * d)
            switch (spec.attention, w.attention) {
            case (.full(let heads, let kvHeads, let headDim), .full(_, let p)):
                fullAttention(layer: layer, p: p, heads: heads, kvHeads: kvHeads, headDim: headDim,
                              spec: spec, input: xn, output: out, batch: batch, cache: cache, observer: observer)
            case (.valueOnly(let kvHeads, let headDim), .valueOnly(_, let value, let valueBias, let output)):
                // Each token attends only to itself: softmax over one score is 1, so the block is W_O′·W_V·x.
                let v = scratch.v.reserve(t * kvHeads * headDim)
                matmul(value, xn, rows: t, into: v)
                addBias(valueBias, to: v, rows: t)
                matmul(output, v, rows: t, into: out)
            case (.linear, .linear(_, let output)):
                matmul(output, xn, rows: t, into: out)
            default:
                preconditionFailure("layer \(layer): \(spec.attention.name) spec with \(w.attention.kindName) weights")
            }
            addBias(frame.outputBias, to: out, rows: t)
            observer?.attentionOutput(layer, output: UnsafeBufferPointer(start: out, count: t * d), rows: t)
            if let post = frame.postNorm { hk_rmsnorm(out, post, out, Int64(d), Int64(t), config.normEpsilon) }
            hk_axpy(1, out, x, Int64(t * d))
        } else if case .none(let constant) = w.attention {
            // A pruned block reduced to its mean output (the pruner's compensation) is a constant.
            addBias(constant, to: x, rows: t)
        }

        if case .gated(let mlp) = w.mlp {
            let f = spec.ffnWidth
            precondition(f == mlp.gate.rows, "layer \(layer): ffnWidth \(f) with a gate of \(mlp.gate.rows) rows")
            let xn = scratch.normed.reserve(t * d)
            hk_rmsnorm(x, mlp.norm, xn, Int64(d), Int64(t), config.normEpsilon)
            let gate = scratch.gate.reserve(t * f), up = scratch.up.reserve(t * f)
            matmul(mlp.gate, xn, rows: t, into: gate)
            matmul(mlp.up, xn, rows: t, into: up)
            switch config.activation {
            case .silu: hk_silu_mul(gate, up, gate, Int64(t * f))
            case .gelu: hk_gelu_mul(gate, up, gate, Int64(t * f))
            }
            observer?.ffnHidden(layer, hidden: UnsafeBufferPointer(start: gate, count: t * f), rows: t)
            let out = scratch.blockOut.reserve(t * d)
            matmul(mlp.down, gate, rows: t, into: out)
            addBias(mlp.downBias, to: out, rows: t)
            if let post = mlp.postNorm { hk_rmsnorm(out, post, out, Int64(d), Int64(t), config.normEpsilon) }
            hk_axpy(1, out, x, Int64(t * d))
        }
        observer?.layerOutput(layer, hidden: UnsafeBufferPointer(hidden), rows: t)
    }

    /// Final norm and LM head for the given rows of the residual stream.
    public func logits(hidden: UnsafeMutableBufferPointer<Float>, rows: [Int]) -> [Float] {
        guard !rows.isEmpty, let x = hidden.baseAddress else { return [] }
        let d = config.embeddingLength, vocab = config.vocabularySize
        let selected = scratch.normed.reserve(rows.count * d)
        for (i, r) in rows.enumerated() {
            hk_rmsnorm(x + r * d, model.weights.outputNorm, selected + i * d, Int64(d), 1, config.normEpsilon)
        }
        var result = [Float](repeating: 0, count: rows.count * vocab)
        result.withUnsafeMutableBufferPointer { out in
            guard let o = out.baseAddress else { return }
            matmul(model.weights.output, selected, rows: rows.count, into: o)
            if let cap = config.finalLogitSoftcap {
                for i in 0..<out.count { o[i] = cap * tanhf(o[i] / cap) }
            }
        }
        return result
    }

    // MARK: - Attention

    private func fullAttention(layer: Int, p: FullAttentionWeights, heads: Int, kvHeads: Int, headDim: Int, spec: LayerSpec,
                               input xn: UnsafeMutablePointer<Float>, output out: UnsafeMutablePointer<Float>,
                               batch: Batch, cache: KVCache?, observer: ForwardObserver?) {
        let t = batch.count
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim
        let q = scratch.q.reserve(t * qWidth), k = scratch.k.reserve(t * kvWidth), v = scratch.v.reserve(t * kvWidth)
        matmul(p.query, xn, rows: t, into: q)
        matmul(p.key, xn, rows: t, into: k)
        matmul(p.value, xn, rows: t, into: v)
        if let b = p.biases {
            addBias(b.query, to: q, rows: t)
            addBias(b.key, to: k, rows: t)
            addBias(b.value, to: v, rows: t)
        }
        if let norms = p.queryKeyNorms {
            hk_rmsnorm(q, norms.query, q, Int64(headDim), Int64(t * heads), config.normEpsilon)
            hk_rmsnorm(k, norms.key, k, Int64(headDim), Int64(t * kvHeads), config.normEpsilon)
        }
        let neox: Int32 = config.ropeLayout == .neox ? 1 : 0
        withOptionalBuffer(model.weights.ropeFrequencyFactors) { factors in
            for i in 0..<t {
                let pos = Int64(batch.positions[i]), n = Int64(config.ropeDimensions)
                hk_rope(q + i * qWidth, Int64(heads), Int64(headDim), n, pos, spec.ropeBase, config.ropeFreqScale, factors, neox)
                hk_rope(k + i * kvWidth, Int64(kvHeads), Int64(headDim), n, pos, spec.ropeBase, config.ropeFreqScale, factors, neox)
            }
        }
        let attended = scratch.attended.reserve(t * qWidth)
        let queries = scratch.queries.reserve(t)
        if let cache, let slot = cache.slotOfLayer[layer] {
            // A sliding-window slot takes the batch in groups small enough not to move out
            // positions the group's own queries read.
            let groupRows = cache.rowsPerWrite(slot: slot, batchRows: t)
            for start in stride(from: 0, to: t, by: groupRows) {
                let rows = start..<min(start + groupRows, t)
                if cache.isWindowBuffer(slot: slot) { prepareWindowWrite(rows, slot: slot, batch: batch, cache: cache) }
                for i in rows {
                    let s = batch.sequences[i], p = batch.positions[i]
                    hk_store_row(cache.type.kernelType, k + i * kvWidth, cache.keyRow(slot: slot, sequence: s, position: p), Int64(kvWidth))
                    hk_store_row(cache.type.kernelType, v + i * kvWidth, cache.valueRow(slot: slot, sequence: s, position: p), Int64(kvWidth))
                }
                for i in rows {
                    let s = batch.sequences[i], p = batch.positions[i]
                    let first = spec.slidingWindow.map { max(0, p - $0 + 1) } ?? 0
                    queries[i] = hk_attn_query(q: q + i * qWidth, out: attended + i * qWidth,
                                               k: cache.keyRow(slot: slot, sequence: s, position: first),
                                               v: cache.valueRow(slot: slot, sequence: s, position: first),
                                               n_kv: Int64(p - first + 1))
                }
                hk_attention(pool.raw, queries + rows.lowerBound, Int64(rows.count), Int64(heads), Int64(kvHeads), Int64(headDim),
                             cache.type.kernelType, attentionScale(headDim), config.attentionSoftcap ?? 0)
            }
        } else {
            // No cache (calibration replays): each token attends to itself only.
            for i in 0..<t {
                queries[i] = hk_attn_query(q: q + i * qWidth, out: attended + i * qWidth, k: k + i * kvWidth, v: v + i * kvWidth, n_kv: 1)
            }
            hk_attention(pool.raw, queries, Int64(t), Int64(heads), Int64(kvHeads), Int64(headDim), Int32(HK_F32.rawValue),
                         attentionScale(headDim), config.attentionSoftcap ?? 0)
        }
        observer?.attentionValues(layer, attended: UnsafeBufferPointer(start: attended, count: t * qWidth), rows: t)
        matmul(p.output, attended, rows: t, into: out)
    }

    /// Moves each sequence's sliding-window buffer so the positions of `rows` fit behind their windows.
    private func prepareWindowWrite(_ rows: Range<Int>, slot: Int, batch: Batch, cache: KVCache) {
        var spans: [Int: ClosedRange<Int>] = [:]
        for i in rows {
            let p = batch.positions[i]
            spans[batch.sequences[i]] = spans[batch.sequences[i]].map { min($0.lowerBound, p)...max($0.upperBound, p) } ?? p...p
        }
        for (sequence, span) in spans {
            cache.prepareWindowWrite(slot: slot, sequence: sequence, first: span.lowerBound, last: span.upperBound)
        }
    }

    private func attentionScale(_ headDim: Int) -> Float {
        config.attentionScale ?? 1 / Float(headDim).squareRoot()
    }

    // MARK: - Helpers

    /// out (rows × W.rows) = x (rows × W.cols) · Wᵀ
    private func matmul(_ w: WeightMatrix, _ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        hk_matmul(pool.raw, Int32(w.type.rawValue), w.data, Int64(w.rows), Int64(w.cols),
                  x, Int64(w.cols), Int64(rows), out, Int64(w.rows))
    }

    /// Calls `body` with a pointer to `values`, or nil when there are none.
    private func withOptionalBuffer(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> Void) {
        guard let values else { return body(nil) }
        values.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    private func addBias(_ bias: [Float]?, to y: UnsafeMutablePointer<Float>, rows: Int) {
        guard let bias else { return }
        let n = bias.count
        bias.withUnsafeBufferPointer { b in
            guard let bp = b.baseAddress else { return }
            for r in 0..<rows { hk_axpy(1, bp, y + r * n, Int64(n)) }
        }
    }
}

/// Growable scratch buffers reused across forward passes.
private final class Scratch {
    let hidden = GrowableBuffer<Float>(), normed = GrowableBuffer<Float>(), blockOut = GrowableBuffer<Float>()
    let q = GrowableBuffer<Float>(), k = GrowableBuffer<Float>(), v = GrowableBuffer<Float>()
    let attended = GrowableBuffer<Float>(), gate = GrowableBuffer<Float>(), up = GrowableBuffer<Float>()
    let queries = GrowableBuffer<hk_attn_query>()
}

/// A heap buffer that only grows; `reserve` returns storage for at least `count` elements.
final class GrowableBuffer<Element> {
    private var pointer: UnsafeMutablePointer<Element>?
    private var capacity = 0

    func reserve(_ count: Int) -> UnsafeMutablePointer<Element> {
        if let pointer, count <= capacity { return pointer }
        pointer?.deallocate()
        capacity = max(count, capacity * 3 / 2, 16)
        let p = UnsafeMutablePointer<Element>.allocate(capacity: capacity)
        pointer = p
        return p
    }

    deinit { pointer?.deallocate() }
}
