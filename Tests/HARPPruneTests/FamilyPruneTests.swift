import Foundation
import Testing
@testable import HARP
@testable import HARPPrune
import HARPTestSupport

/// harp-prune on the other real families: Qwen2 (q/k/v biases, GQA 7:1) and Gemma 3 (α folded into
/// the post-attention norm, sliding-window layers). A short calibration keeps each case quick.
@Suite("Pruner on Qwen2.5 and Gemma 3", .serialized)
struct FamilyPruneTests {
    static let families: [(name: String, file: String)] = [
        ("Qwen2.5-Coder-0.5B", "models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
        ("Gemma-3-270M", "models/gemma-3-270m-q4_k_m.gguf"),
    ]

    @Test("--drop-last 2: the top layers lose their KV cache, the file reloads and generates",
          arguments: families.map(\.name))
    func dropLast2(family: String) throws {
        let path = try #require(Self.families.first { $0.name == family }).file
        let modelPath = PruneFixtures.packageRoot.appendingPathComponent(path).path
        #expect(FileManager.default.fileExists(atPath: modelPath), "\(modelPath) is missing (tools/test.sh fetches it)")
        let file = try GGUFFile(path: modelPath)
        let dense = try Model(file: file)
        let tokenizer = try TokenizerLoader.load(from: file)
        let calibration = try CalibrationSet.load(path: PruneFixtures.wikiValidPath, tokenizer: tokenizer, count: 2, length: 32, seed: 0)
        var options = PruneOptions()
        options.dropLast = 2
        options.alphaGrid = [0.5, 1]
        options.refinementSweeps = 0
        let pool = ComputePool(threads: 2)
        let outcome = try Pruner(model: dense, calibration: calibration, options: options, pool: pool).run()
        let layers = dense.config.layerCount
        #expect(outcome.model.config.layers[(layers - 2)...].allSatisfy { !$0.attention.needsKVCache })
        #expect(outcome.model.config.layers[..<(layers - 2)] == dense.config.layers[..<(layers - 2)])
        // Layers that keep a KV cache keep their bytes: the pruned model needs exactly theirs.
        let keptKV = dense.config.layers[..<(layers - 2)].reduce(0) { $0 + 2 * $1.kvWidth * 2 }
        #expect(outcome.model.config.kvBytesPerToken(elementBytes: 2) == keptKV)
        #expect(outcome.report.after.calibrationPerplexity.isFinite)
        if dense.config.sandwichNorms {
            // A post-attention norm rescales each token's block output: a mean cannot be kept in a bias.
            var compensated = options
            compensated.meanCompensation = true
            #expect(throws: HARPError.invalidArgument("--compensate needs a model without a post-attention norm (gemma3 has one)")) {
                try Pruner(model: dense, calibration: calibration, options: compensated, pool: pool)
            }
        }

        let out = TinyDense.temporaryPath("family-pruned")
        defer { try? FileManager.default.removeItem(atPath: out) }
        try ModelWriter.write(outcome.model, to: out, layout: .native, extraMetadata: Pruner.provenance(outcome.report), protecting: modelPath)
        let reloaded = try Model(path: out)
        // Family settings (sliding windows, their RoPE base, soft-caps) survive the round trip.
        for (l, (a, b)) in zip(reloaded.config.layers, outcome.model.config.layers).enumerated() where a != b {
            Issue.record("layer \(l) reloads as \(a), was \(b)")
        }
        #expect(reloaded.config == outcome.model.config)
        let prompt = tokenizer.encode("The capital of France is", parseSpecial: false)
        // The reloaded file is the in-memory model: the same greedy tokens.
        func greedy(_ model: Model) throws -> [Int32] {
            try greedyTokens(Transformer(model: model, pool: pool), prompt: prompt, steps: 6, contextLength: 64, kvType: .f16)
        }
        #expect(try greedy(reloaded) == greedy(outcome.model))
    }
}
