extension ArchitectureSchema {
    /// Qwen2 (also Qwen2.5): the Llama graph with Q/K/V biases and NeoX RoPE (GGUF keeps the
    /// checkpoint's rotate-half layout for this family).
    static let qwen2 = ArchitectureSchema(name: "qwen2", ropeLayout: .neox, defaultNormEpsilon: 1e-6, attentionBiases: .required)
}
