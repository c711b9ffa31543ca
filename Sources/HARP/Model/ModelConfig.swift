/// How RoPE pairs dimensions: llama.cpp's "normal" (2i, 2i+1) or NeoX (i, i + n/2).
public enum RopeLayout: Sendable, Equatable {
    case normal, neox
}

/// The MLP's gate activation.
public enum GateActivation: Sendable, Equatable {
    case silu   // SwiGLU (Llama, Qwen2)
    case gelu   // GeGLU, tanh approximation (Gemma)
}

/// Everything about a model's structure that the forward pass needs.
public struct ModelConfig: Sendable, Equatable {
    /// The GGUF architecture name (`llama`, `qwen2`, `gemma3`, ...).
    public var architecture: String
    public var embeddingLength: Int
    public var vocabularySize: Int
    /// The context length the model was trained for.
    public var contextLength: Int
    public var layers: [LayerSpec]
    public var normEpsilon: Float
    public var ropeDimensions: Int
    public var ropeFreqScale: Float
    public var ropeLayout: RopeLayout
    public var activation: GateActivation
    /// The output projection is the token embedding matrix.
    public var tiedOutput: Bool
    /// Multiplier applied to embeddings (Gemma: √d), 1 otherwise.
    public var embeddingScale: Float
    /// Norms after the attention and MLP blocks as well as before (Gemma 2/3).
    public var sandwichNorms: Bool
    /// RMS-normalised queries and keys per head (Gemma 3).
    public var queryKeyNorms: Bool
    /// Attention score scale; nil means 1/√headDim.
    public var attentionScale: Float?
    /// Soft-capping of attention scores and of final logits (Gemma 2), nil when off.
    public var attentionSoftcap: Float?
    public var finalLogitSoftcap: Float?

    public init(architecture: String, embeddingLength: Int, vocabularySize: Int, contextLength: Int,
                layers: [LayerSpec], normEpsilon: Float, ropeDimensions: Int, ropeFreqScale: Float = 1,
                ropeLayout: RopeLayout, activation: GateActivation = .silu, tiedOutput: Bool,
                embeddingScale: Float = 1, sandwichNorms: Bool = false, queryKeyNorms: Bool = false,
                attentionScale: Float? = nil, attentionSoftcap: Float? = nil, finalLogitSoftcap: Float? = nil) {
        self.architecture = architecture
        self.embeddingLength = embeddingLength
        self.vocabularySize = vocabularySize
        self.contextLength = contextLength
        self.layers = layers
        self.normEpsilon = normEpsilon
        self.ropeDimensions = ropeDimensions
        self.ropeFreqScale = ropeFreqScale
        self.ropeLayout = ropeLayout
        self.activation = activation
        self.tiedOutput = tiedOutput
        self.embeddingScale = embeddingScale
        self.sandwichNorms = sandwichNorms
        self.queryKeyNorms = queryKeyNorms
        self.attentionScale = attentionScale
        self.attentionSoftcap = attentionSoftcap
        self.finalLogitSoftcap = finalLogitSoftcap
    }

    public var layerCount: Int { layers.count }

    /// Indices of the layers that keep a KV cache.
    public var cachedLayers: [Int] { layers.indices.filter { layers[$0].attention.needsKVCache } }

    /// K and V bytes one token occupies in the cache, over all layers, for a cache element of `elementBytes`.
    public func kvBytesPerToken(elementBytes: Int) -> Int {
        layers.reduce(0) { $0 + 2 * $1.kvWidth * elementBytes }
    }
}
