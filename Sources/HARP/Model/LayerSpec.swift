/// What a decoder layer's attention block computes. Pruned layers are explicit kinds, never
/// "head count 0" sentinels.
public enum AttentionKind: Sendable, Equatable, Hashable {
    /// Ordinary multi-head / grouped-query attention with a KV cache.
    case full(heads: Int, kvHeads: Int, headDim: Int)
    /// HARP: Q and K removed, each token attends only to itself, so the block is the linear map
    /// `W_O′ · W_V · norm(h)` with α and the GQA repeat folded into `W_O′` (d × kvHeads·headDim).
    case valueOnly(kvHeads: Int, headDim: Int)
    /// `W_O′ · W_V` fused into one d × d matrix (llama.cpp's `deci` "linear attention").
    case linear
    /// The attention block is removed (α = 0).
    case none

    /// Whether the layer keeps a KV cache slot.
    public var needsKVCache: Bool {
        if case .full = self { return true }
        return false
    }

    /// The name used in tables and in the `harp.attention.kind` metadata.
    public var name: String {
        switch self {
        case .full: return "full"
        case .valueOnly: return "value-only"
        case .linear: return "linear"
        case .none: return "none"
        }
    }
}

/// The structure of one decoder layer.
public struct LayerSpec: Sendable, Equatable {
    public var attention: AttentionKind
    /// Hidden width of the gated MLP; 0 removes the MLP block.
    public var ffnWidth: Int
    /// Attention window in tokens for sliding-window layers (Gemma 3 local layers), nil for global.
    public var slidingWindow: Int?
    /// RoPE base frequency of this layer.
    public var ropeBase: Float

    public init(attention: AttentionKind, ffnWidth: Int, slidingWindow: Int? = nil, ropeBase: Float) {
        self.attention = attention
        self.ffnWidth = ffnWidth
        self.slidingWindow = slidingWindow
        self.ropeBase = ropeBase
    }

    /// Width of one token's K (and V) row in this layer's cache, 0 when it has none.
    public var kvWidth: Int {
        if case .full(_, let kvHeads, let headDim) = attention { return kvHeads * headDim }
        return 0
    }
}
