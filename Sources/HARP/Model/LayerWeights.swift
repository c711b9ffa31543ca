/// A tensor of a decoder layer by its role, with the name llama.cpp gives it inside `blk.N.`.
public enum LayerTensor: String, CaseIterable, Sendable {
    case attentionNorm = "attn_norm.weight"
    case query = "attn_q.weight"
    case key = "attn_k.weight"
    case value = "attn_v.weight"
    case output = "attn_output.weight"
    case queryBias = "attn_q.bias"
    case keyBias = "attn_k.bias"
    case valueBias = "attn_v.bias"
    case outputBias = "attn_output.bias"
    case queryNorm = "attn_q_norm.weight"
    case keyNorm = "attn_k_norm.weight"
    case postAttentionNorm = "post_attention_norm.weight"
    case ffnNorm = "ffn_norm.weight"
    case gate = "ffn_gate.weight"
    case up = "ffn_up.weight"
    case down = "ffn_down.weight"
    case downBias = "ffn_down.bias"
    case postFFNNorm = "post_ffw_norm.weight"

    /// The tensor's name in layer `layer`.
    public func name(layer: Int) -> String { "blk.\(layer).\(rawValue)" }

    /// Matrices are stored in their own type; norms and biases are float vectors.
    public var isMatrix: Bool {
        switch self {
        case .query, .key, .value, .output, .gate, .up, .down: return true
        default: return false
        }
    }
}

/// One tensor's content: a weight matrix or a float vector (norm weights, biases).
public enum TensorValue: Sendable {
    case matrix(WeightMatrix)
    case vector([Float])

    public var parameterCount: Int {
        switch self {
        case .matrix(let m): return m.parameterCount
        case .vector(let v): return v.count
        }
    }

    /// Bytes as the runtime holds it (vectors as F32).
    public var byteCount: Int {
        switch self {
        case .matrix(let m): return m.byteCount
        case .vector(let v): return 4 * v.count
        }
    }
}

/// Q, K and V biases (Qwen2), all three or none.
public struct QKVBiases: Sendable {
    public var query: [Float], key: [Float], value: [Float]
    public init(query: [Float], key: [Float], value: [Float]) { (self.query, self.key, self.value) = (query, key, value) }
}

/// Per-head RMSNorm weights of queries and keys (Gemma 3).
public struct QueryKeyNorms: Sendable {
    public var query: [Float], key: [Float]
    public init(query: [Float], key: [Float]) { (self.query, self.key) = (query, key) }
}

/// What every attention block has around its projections: the input RMSNorm, the output bias
/// (FLAP's / the pruner's compensation) and the post-attention norm (Gemma 2/3).
public struct BlockFrame: Sendable {
    public var norm: [Float]
    public var outputBias: [Float]?
    public var postNorm: [Float]?
    public init(norm: [Float], outputBias: [Float]? = nil, postNorm: [Float]? = nil) {
        (self.norm, self.outputBias, self.postNorm) = (norm, outputBias, postNorm)
    }
}

/// Ordinary attention's projections.
public struct FullAttentionWeights: Sendable {
    public var query: WeightMatrix, key: WeightMatrix, value: WeightMatrix
    /// d × heads·headDim.
    public var output: WeightMatrix
    public var biases: QKVBiases?
    public var queryKeyNorms: QueryKeyNorms?
    public init(query: WeightMatrix, key: WeightMatrix, value: WeightMatrix, output: WeightMatrix,
                biases: QKVBiases? = nil, queryKeyNorms: QueryKeyNorms? = nil) {
        (self.query, self.key, self.value, self.output) = (query, key, value, output)
        (self.biases, self.queryKeyNorms) = (biases, queryKeyNorms)
    }
}

/// The weights of a layer's attention block; each case holds exactly what its `AttentionKind`
/// computes with, so a layer cannot carry a matrix its kind never reads.
public enum AttentionWeights: Sendable {
    case full(BlockFrame, FullAttentionWeights)
    /// HARP: `W_V` (kvHeads·headDim × d) with its bias, and `W_O′` (d × kvHeads·headDim, α and the
    /// GQA repeat folded in).
    case valueOnly(BlockFrame, value: WeightMatrix, valueBias: [Float]?, output: WeightMatrix)
    /// `W_O′ · W_V` fused into one d × d matrix (llama.cpp's `deci` linear attention).
    case linear(BlockFrame, output: WeightMatrix)
    /// No attention block; `constant` (a removed block's mean output, the pruner's compensation)
    /// is added to the residual stream when present.
    case none(constant: [Float]?)

    /// The norm/bias frame of a block (nil for `none`); setting it on `none` does nothing.
    public var frame: BlockFrame? {
        get {
            switch self {
            case .full(let f, _), .valueOnly(let f, _, _, _), .linear(let f, _): return f
            case .none: return nil
            }
        }
        set {
            guard let newValue else { return }
            switch self {
            case .full(_, let p): self = .full(newValue, p)
            case .valueOnly(_, let v, let b, let o): self = .valueOnly(newValue, value: v, valueBias: b, output: o)
            case .linear(_, let o): self = .linear(newValue, output: o)
            case .none: break
            }
        }
    }

    /// The output projection (`W_O`, `W_O′` or the fused matrix), nil for `none`.
    public var output: WeightMatrix? {
        switch self {
        case .full(_, let p): return p.output
        case .valueOnly(_, _, _, let o), .linear(_, let o): return o
        case .none: return nil
        }
    }

    /// The value projection and its bias (full and value-only blocks).
    public var value: (weight: WeightMatrix, bias: [Float]?)? {
        switch self {
        case .full(_, let p): return (p.value, p.biases?.value)
        case .valueOnly(_, let v, let b, _): return (v, b)
        case .linear, .none: return nil
        }
    }

    /// The name of the kind, as in `AttentionKind.name`.
    public var kindName: String {
        switch self {
        case .full: return "full"
        case .valueOnly: return "value-only"
        case .linear: return "linear"
        case .none: return "none"
        }
    }
}

/// The gated MLP (SwiGLU / GeGLU): `down(act(gate·x) ⊙ up·x) + downBias`.
public struct GatedMLPWeights: Sendable {
    public var norm: [Float]
    public var gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix
    /// FLAP's compensation for removed channels.
    public var downBias: [Float]?
    /// Gemma 2/3's post-MLP norm.
    public var postNorm: [Float]?
    public init(norm: [Float], gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix,
                downBias: [Float]? = nil, postNorm: [Float]? = nil) {
        (self.norm, self.gate, self.up, self.down, self.downBias, self.postNorm) = (norm, gate, up, down, downBias, postNorm)
    }
}

public enum MLPWeights: Sendable {
    case gated(GatedMLPWeights)
    /// The MLP block is removed (ffnWidth 0).
    case none

    public var gated: GatedMLPWeights? {
        if case .gated(let m) = self { return m }
        return nil
    }
}

/// The weights of one decoder layer, shaped by its `LayerSpec`.
public struct LayerWeights: Sendable {
    public var attention: AttentionWeights
    public var mlp: MLPWeights

    public init(attention: AttentionWeights, mlp: MLPWeights) {
        self.attention = attention
        self.mlp = mlp
    }

    /// Every tensor of the layer by role: the inverse of `init(kind:tensors:)`, what the writer stores.
    public var tensors: [(LayerTensor, TensorValue)] {
        var out: [(LayerTensor, TensorValue)] = []
        func add(_ role: LayerTensor, _ v: [Float]?) { if let v { out.append((role, .vector(v))) } }
        func add(_ role: LayerTensor, _ m: WeightMatrix) { out.append((role, .matrix(m))) }
        let frame = attention.frame
        add(.attentionNorm, frame?.norm)
        switch attention {
        case .full(_, let p):
            add(.query, p.query); add(.key, p.key); add(.value, p.value); add(.output, p.output)
            add(.queryBias, p.biases?.query); add(.keyBias, p.biases?.key); add(.valueBias, p.biases?.value)
            add(.queryNorm, p.queryKeyNorms?.query); add(.keyNorm, p.queryKeyNorms?.key)
        case .valueOnly(_, let v, let b, let o):
            add(.value, v); add(.output, o); add(.valueBias, b)
        case .linear(_, let o):
            add(.output, o)
        case .none(let constant):
            add(.outputBias, constant)
        }
        add(.outputBias, frame?.outputBias)
        add(.postAttentionNorm, frame?.postNorm)
        if case .gated(let m) = mlp {
            add(.ffnNorm, m.norm); add(.gate, m.gate); add(.up, m.up); add(.down, m.down)
            add(.downBias, m.downBias); add(.postFFNNorm, m.postNorm)
        }
        return out
    }

    /// Builds a layer of `kind` (and an MLP when `hasMLP`) from tensors by role. Missing required
    /// tensors and tensors the kind does not hold are errors naming them (`describe` gives the
    /// tensor's name for the message).
    public init(kind: AttentionKind, hasMLP: Bool, tensors: [LayerTensor: TensorValue],
                describe: (LayerTensor) -> String = { $0.rawValue }) throws {
        var unused = tensors
        func take(_ role: LayerTensor) -> TensorValue? { unused.removeValue(forKey: role) }
        func vector(_ role: LayerTensor) throws -> [Float]? {
            guard let t = take(role) else { return nil }
            guard case .vector(let v) = t else { throw HARPError.invalidArgument("tensor \(describe(role)) must be a vector") }
            return v
        }
        func matrix(_ role: LayerTensor) throws -> WeightMatrix {
            guard let t = take(role) else { throw HARPError.invalidArgument("missing tensor \(describe(role))") }
            guard case .matrix(let m) = t else { throw HARPError.invalidArgument("tensor \(describe(role)) must be a matrix") }
            return m
        }
        func requiredVector(_ role: LayerTensor) throws -> [Float] {
            guard let v = try vector(role) else { throw HARPError.invalidArgument("missing tensor \(describe(role))") }
            return v
        }
        /// All of `roles` or none of them.
        func group(_ roles: [LayerTensor]) throws -> [[Float]]? {
            let present = roles.filter { tensors[$0] != nil }
            guard !present.isEmpty else { return nil }
            guard present.count == roles.count else {
                let missing = roles.filter { tensors[$0] == nil }.map(describe).joined(separator: ", ")
                throw HARPError.invalidArgument("tensor \(describe(present[0])) needs \(missing) as well")
            }
            return try roles.map(requiredVector)
        }

        if kind == .none {
            attention = .none(constant: try vector(.outputBias))
        } else {
            var frame = BlockFrame(norm: try requiredVector(.attentionNorm))
            frame.outputBias = try vector(.outputBias)
            frame.postNorm = try vector(.postAttentionNorm)
            switch kind {
            case .full:
                let q = try matrix(.query), k = try matrix(.key), v = try matrix(.value), o = try matrix(.output)
                let biases = try group([.queryBias, .keyBias, .valueBias]).map { QKVBiases(query: $0[0], key: $0[1], value: $0[2]) }
                let norms = try group([.queryNorm, .keyNorm]).map { QueryKeyNorms(query: $0[0], key: $0[1]) }
                attention = .full(frame, FullAttentionWeights(query: q, key: k, value: v, output: o, biases: biases, queryKeyNorms: norms))
            case .valueOnly:
                let v = try matrix(.value)
                attention = .valueOnly(frame, value: v, valueBias: try vector(.valueBias), output: try matrix(.output))
            case .linear:
                attention = .linear(frame, output: try matrix(.output))
            case .none:
                attention = .none(constant: nil)
            }
        }
        if hasMLP {
            let norm = try requiredVector(.ffnNorm)
            let gate = try matrix(.gate), up = try matrix(.up), down = try matrix(.down)
            mlp = .gated(GatedMLPWeights(norm: norm, gate: gate, up: up, down: down,
                                         downBias: try vector(.downBias), postNorm: try vector(.postFFNNorm)))
        } else {
            mlp = .none
        }
        if let extra = LayerTensor.allCases.first(where: { unused[$0] != nil }) {
            throw HARPError.invalidArgument("tensor \(describe(extra)) has no place in a layer with \(kind.name) attention\(hasMLP ? "" : " and no MLP")")
        }
    }

    /// Parameters of the attention block (projections, biases; norms excluded) and of the MLP.
    public var attentionParameters: Int {
        tensors.filter { [.query, .key, .value, .output, .queryBias, .keyBias, .valueBias, .outputBias].contains($0.0) }
            .reduce(0) { $0 + $1.1.parameterCount }
    }

    public var mlpParameters: Int {
        tensors.filter { [.gate, .up, .down, .downBias].contains($0.0) }.reduce(0) { $0 + $1.1.parameterCount }
    }

    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.1.parameterCount } }
    public var byteCount: Int { tensors.reduce(0) { $0 + $1.1.byteCount } }

    /// Every matrix of the layer.
    public var matrices: [WeightMatrix] {
        tensors.compactMap { if case .matrix(let m) = $0.1 { return m } else { return nil } }
    }
}
