extension ArchitectureTraits {
    /// Gemma 2: Gemma 3's graph without query/key norms, with attention-score and final-logit
    /// soft-capping, and every other layer local (4096-token window, the global RoPE base).
    static let gemma2 = ArchitectureTraits(
        ropeLayout: .neox, activation: .gelu, scalesEmbedding: true, sandwichNorms: true,
        defaultNormEpsilon: 1e-6,
        customize: { config, meta in
            try GemmaLayout.apply(to: &config, meta, defaults: .init(
                slidingWindow: 4096, pattern: 2, localRopeBase: nil, attentionSoftcap: 50,
                finalLogitSoftcap: 30, largeModelLayerCount: 46))
        })
}
