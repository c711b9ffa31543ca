extension ArchitectureTraits {
    /// llama.cpp's `deci` (Nemotron-NAS) layout: the Llama graph with per-layer head counts,
    /// `head_count_kv = 0` for linear-attention layers and `head_count = 0` for attention-free
    /// ones. HARP exports pruned models in this layout so other GGUF runtimes can run them.
    static let deci = ArchitectureTraits(ropeLayout: .normal, ropeFrequencyFactors: true)
}
