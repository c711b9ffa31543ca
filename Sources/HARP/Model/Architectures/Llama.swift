extension ArchitectureTraits {
    /// Llama (also SmolLM2, Mistral): RMSNorm, SwiGLU, GQA; GGUF stores Q/K for "normal"
    /// (adjacent-pair) RoPE.
    static let llama = ArchitectureTraits(ropeLayout: .normal, ropeFrequencyFactors: true)
}
