extension ArchitectureSchema {
    /// Llama (also SmolLM2, Mistral, Llama 3.1/3.2): RMSNorm, SwiGLU, GQA; GGUF stores Q/K for
    /// "normal" (adjacent-pair) RoPE. Q/K/V and output biases are optional, as in llama.cpp.
    /// `rope_freqs.weight` carries Llama 3.1's "llama3" frequency scaling. llama.cpp's llama graph
    /// reads no `attention.sliding_window` (Mistral 7B v0.1's window is ignored there; v0.3 has
    /// none), and neither does this one.
    static let llama = ArchitectureSchema(name: "llama", ropeLayout: .normal, ropeFrequencyFactors: .optional)
}
