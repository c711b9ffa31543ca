extension ArchitectureSchema {
    /// Gemma 2 (llama.cpp `llama_model_gemma2`): Gemma 3's graph without query/key norms, with
    /// attention-score soft-capping (50) and final-logit soft-capping (30), and the even layers
    /// local (4096-token window, the global RoPE base unless `rope.freq_base_swa`), the odd ones
    /// global. Queries are scaled by 1/√headDim, or 1/√(d / heads) on the 46-layer 27B model
    /// (gemma_pytorch's `query_pre_attn_scalar`, which llama.cpp derives from the layer count).
    static let gemma2 = ArchitectureSchema(
        name: "gemma2", ropeLayout: .neox, activation: .gelu, scalesEmbedding: true, defaultNormEpsilon: 1e-6,
        attentionBiases: .absent, sandwichNorms: true,
        readKeys: { config, meta in try GemmaLayout.read(into: &config, meta, defaults: .gemma2) },
        writeKeys: { config in try GemmaLayout.keys(config, defaults: .gemma2) })
}

extension GemmaLayout.Defaults {
    /// llama.cpp's `llama_model_gemma2::load_arch_hparams`.
    static let gemma2 = Self(slidingWindow: 4096, pattern: 2, localRopeBase: nil, attentionSoftcap: 50,
                             finalLogitSoftcap: 30, largeModelLayerCount: 46)
}
