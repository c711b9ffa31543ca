import Foundation
import HARP

/// Random-weight models in the exact layer configuration of the four models the HARP paper prunes
/// (head counts, GQA ratio, head dimension, RoPE base and scaling, biases, soft-caps, window
/// pattern, tied or untied output) at a small width and depth, with a real vocabulary. Written as
/// F32 GGUF files by the project's `GGUFWriter` from a fixed seed, so a regenerated file is
/// byte-identical to the one llama.cpp measured for `Benchmarks/references/seed-*-llamacpp.json`
/// (`Benchmarks/references/measure-seeds.py` writes them through the `SeedModelExport` test).
public struct SeedModel: CustomStringConvertible, Sendable {
    /// The file name stem (`seed-llama-3.1-8b` and so on).
    public var name: String
    public var architecture: String
    public var layers: Int
    public var d: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var ffn: Int
    public var ropeBase: Float
    public var normEpsilon: Float
    public var attentionBiases = false
    public var tiedOutput = false
    /// Llama 3.1's "llama3" RoPE scaling, stored as llama.cpp's converter stores it: a
    /// `rope_freqs.weight` tensor of per-frequency divisors (no `rope.scaling.*` keys).
    public var llama3Scaling: Llama3Scaling?
    /// Gemma 2: sliding window of the even layers, attention and final-logit soft-caps.
    public var gemma2: Gemma2Settings?
    /// The GGUF file whose `tokenizer.*` metadata is copied, relative to the package root.
    public var vocabularySource: String
    public var seed: UInt64

    public struct Llama3Scaling: Sendable {
        public var factor: Float
        public var lowFrequencyFactor: Float
        public var highFrequencyFactor: Float
        public var originalContext: Int
    }

    public struct Gemma2Settings: Sendable {
        public var slidingWindow: Int
        public var attentionSoftcap: Float
        public var finalLogitSoftcap: Float
    }

    public var description: String { name }

    /// Llama-3.1-8B: 32 query / 8 KV heads of 128, RoPE base 500000 with llama3 scaling (factor 8,
    /// low 1, high 4; original context 8192, here 32 so the test prompts pass it), untied output,
    /// Llama 3's byte-level BPE vocabulary (llama.cpp's `llama-bpe` fixture, 128256 tokens).
    public static let llama31 = SeedModel(
        name: "seed-llama-3.1-8b", architecture: "llama", layers: 3, d: 256, heads: 32, kvHeads: 8, headDim: 128,
        ffn: 512, ropeBase: 500_000, normEpsilon: 1e-5,
        llama3Scaling: Llama3Scaling(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4, originalContext: 32),
        vocabularySource: "models/vocab/ggml-vocab-llama-bpe.gguf", seed: 31)

    /// Mistral-7B-v0.3: 32 / 8 heads of 128, RoPE base 1e6, untied output, SentencePiece
    /// vocabulary (llama.cpp's `llama-spm` fixture: Llama 2's 32000 pieces; v0.3 adds 768 control
    /// tokens to the same model type).
    public static let mistral = SeedModel(
        name: "seed-mistral-7b-v0.3", architecture: "llama", layers: 3, d: 256, heads: 32, kvHeads: 8, headDim: 128,
        ffn: 512, ropeBase: 1_000_000, normEpsilon: 1e-5,
        vocabularySource: "models/vocab/ggml-vocab-llama-spm.gguf", seed: 7)

    /// Qwen2-7B: 28 / 4 heads of 128, Q/K/V biases, RoPE base 1e6, untied output, Qwen2's BPE
    /// vocabulary (llama.cpp's `qwen2` fixture, 151936 tokens).
    public static let qwen2 = SeedModel(
        name: "seed-qwen2-7b", architecture: "qwen2", layers: 3, d: 256, heads: 28, kvHeads: 4, headDim: 128,
        ffn: 512, ropeBase: 1_000_000, normEpsilon: 1e-6, attentionBiases: true,
        vocabularySource: "models/vocab/ggml-vocab-qwen2.gguf", seed: 2)

    /// Gemma2-9B: 16 / 8 heads of 256 (query_pre_attn_scalar 256 = head_dim, while d / heads is 16
    /// here and 224 in the real model), soft-caps 50 and 30, every even layer a sliding window
    /// (4096 in the real model, 32 here), GeGLU, sandwich norms, tied output. No Gemma 2 vocabulary
    /// ships with llama.cpp's fixtures: the tokenizer is Gemma 3 270M's (SentencePiece, 262144
    /// pieces — Gemma 2's 256000 plus 6144 more).
    public static let gemma2 = SeedModel(
        name: "seed-gemma2-9b", architecture: "gemma2", layers: 4, d: 256, heads: 16, kvHeads: 8, headDim: 256,
        ffn: 512, ropeBase: 10_000, normEpsilon: 1e-6, tiedOutput: true,
        gemma2: Gemma2Settings(slidingWindow: 32, attentionSoftcap: 50, finalLogitSoftcap: 30),
        vocabularySource: "models/gemma-3-270m-q4_k_m.gguf", seed: 9)

    /// The seeds with a committed llama.cpp reference. Not yet measured: `qwen2` (llama.cpp's qwen2
    /// loader wants attn_q to be d × d, so the tiny width must be 28 × 128 = 3584 — a 2 GB F32 file
    /// with this vocabulary) and `gemma2`.
    public static let all: [SeedModel] = [llama31, mistral]

    /// Context length written to the file (llama.cpp warns when a context exceeds it).
    public static let contextLength = 512

    /// llama.cpp's conversion of the llama3 scaling (`LlamaModel.generate_extra_tensors`): the
    /// divisor of each RoPE frequency base^(−2i/headDim).
    public static func llama3RopeFactors(_ s: Llama3Scaling, base: Float, headDim: Int) -> [Float] {
        let lowWavelength = Double(s.originalContext) / Double(s.lowFrequencyFactor)
        let highWavelength = Double(s.originalContext) / Double(s.highFrequencyFactor)
        return stride(from: 0, to: headDim, by: 2).map { i -> Float in
            let frequency = 1 / pow(Double(base), Double(i) / Double(headDim))
            let wavelength = 2 * Double.pi / frequency
            if wavelength < highWavelength { return 1 }
            if wavelength > lowWavelength { return s.factor }
            let smooth = (Double(s.originalContext) / wavelength - Double(s.lowFrequencyFactor))
                / Double(s.highFrequencyFactor - s.lowFrequencyFactor)
            return Float(1 / ((1 - smooth) / Double(s.factor) + smooth))
        }
    }

    /// Writes the model (regenerated from its seed) to a new temporary file and returns its path.
    public func materialize(packageRoot: URL, withRopeFreqs: Bool = true) throws -> String {
        let path = TinyModel.temporaryPath(name)
        try writer(packageRoot: packageRoot, withRopeFreqs: withRopeFreqs).write(to: path)
        return path
    }

    /// The model as a writer. `packageRoot` locates the vocabulary source. With
    /// `withRopeFreqs: false` the Llama 3.1 model is written without its scaling tensor (the
    /// same weights otherwise), which is what a runtime ignoring `rope_freqs.weight` computes.
    public func writer(packageRoot: URL, withRopeFreqs: Bool = true) throws -> GGUFWriter {
        let vocabularyPath = packageRoot.appendingPathComponent(vocabularySource).path
        let vocabulary = try GGUFFile(path: vocabularyPath)
        guard let tokens = vocabulary.metadata["tokenizer.ggml.tokens"]?.arrayValue else {
            throw HARPError.invalidModel(path: vocabularyPath, reason: "no tokenizer.ggml.tokens")
        }
        let vocab = tokens.count
        var rng = TestRandom(seed: seed)
        var w = GGUFWriter()
        let a = architecture
        w.set("general.architecture", .string(a))
        w.set("general.name", .string(name))
        w.set("general.file_type", .uint32(0))  // all F32
        w.set("\(a).block_count", .uint32(UInt32(layers)))
        w.set("\(a).context_length", .uint32(UInt32(Self.contextLength)))
        w.set("\(a).embedding_length", .uint32(UInt32(d)))
        w.set("\(a).feed_forward_length", .uint32(UInt32(ffn)))
        w.set("\(a).attention.head_count", .uint32(UInt32(heads)))
        w.set("\(a).attention.head_count_kv", .uint32(UInt32(kvHeads)))
        w.set("\(a).attention.key_length", .uint32(UInt32(headDim)))
        w.set("\(a).attention.value_length", .uint32(UInt32(headDim)))
        w.set("\(a).rope.dimension_count", .uint32(UInt32(headDim)))
        w.set("\(a).rope.freq_base", .float32(ropeBase))
        w.set("\(a).attention.layer_norm_rms_epsilon", .float32(normEpsilon))
        w.set("\(a).vocab_size", .uint32(UInt32(vocab)))
        if let g = gemma2 {
            w.set("\(a).attention.sliding_window", .uint32(UInt32(g.slidingWindow)))
            w.set("\(a).attn_logit_softcapping", .float32(g.attentionSoftcap))
            w.set("\(a).final_logit_softcapping", .float32(g.finalLogitSoftcap))
        }
        w.copyMetadata(from: vocabulary) { !$0.hasPrefix("tokenizer.") }

        // Uniform weights of unit variance gain (±√3/√cols), norms near 1, embeddings ±1: logits of a
        // few units' spread, so top-10 rankings and greedy steps are mostly decisive.
        func matrix(_ name: String, rows: Int, cols: Int) throws {
            let scale = Float(3).squareRoot() / Float(cols).squareRoot()
            try w.addTensor(name: name, shape: [cols, rows], type: .f32, floats: rng.floats(rows * cols, scale: scale))
        }
        func vector(_ name: String, count: Int, center: Float, spread: Float) throws {
            try w.addTensor(name: name, shape: [count], type: .f32, floats: (0..<count).map { _ in center + rng.float(spread) })
        }
        try w.addTensor(name: "token_embd.weight", shape: [d, vocab], type: .f32, floats: rng.floats(vocab * d, scale: 1))
        if let scaling = llama3Scaling, withRopeFreqs {
            try w.addTensor(name: "rope_freqs.weight", shape: [headDim / 2], type: .f32,
                            floats: Self.llama3RopeFactors(scaling, base: ropeBase, headDim: headDim))
        }
        let qWidth = heads * headDim, kvWidth = kvHeads * headDim
        for l in 0..<layers {
            let p = "blk.\(l)."
            try vector(p + "attn_norm.weight", count: d, center: 1, spread: 0.2)
            try matrix(p + "attn_q.weight", rows: qWidth, cols: d)
            try matrix(p + "attn_k.weight", rows: kvWidth, cols: d)
            try matrix(p + "attn_v.weight", rows: kvWidth, cols: d)
            if attentionBiases {
                try vector(p + "attn_q.bias", count: qWidth, center: 0, spread: 0.5)
                try vector(p + "attn_k.bias", count: kvWidth, center: 0, spread: 0.5)
                try vector(p + "attn_v.bias", count: kvWidth, center: 0, spread: 0.5)
            }
            try matrix(p + "attn_output.weight", rows: d, cols: qWidth)
            if gemma2 != nil { try vector(p + "post_attention_norm.weight", count: d, center: 1, spread: 0.2) }
            try vector(p + "ffn_norm.weight", count: d, center: 1, spread: 0.2)
            try matrix(p + "ffn_gate.weight", rows: ffn, cols: d)
            try matrix(p + "ffn_up.weight", rows: ffn, cols: d)
            try matrix(p + "ffn_down.weight", rows: d, cols: ffn)
            if gemma2 != nil { try vector(p + "post_ffw_norm.weight", count: d, center: 1, spread: 0.2) }
        }
        try vector("output_norm.weight", count: d, center: 1, spread: 0.2)
        if !tiedOutput {
            try w.addTensor(name: "output.weight", shape: [d, vocab], type: .f32, floats: rng.floats(vocab * d, scale: 0.5))
        }
        return w
    }
}
