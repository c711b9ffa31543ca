import Foundation
import Testing
import HARPTestSupport
@testable import HARP

/// llama.cpp's figures for one seed-configuration model (Benchmarks/references/seed-NAME-llamacpp.json,
/// written by measure-families.py).
struct SeedReference: Decodable {
    var modelSha256: String
    var prompts: FamilyReference.Cases<FamilyReference.PromptCase>
    var perplexity: FamilyReference.PerplexityFigure

    static func load(_ seed: SeedModel) throws -> SeedReference {
        let path = Fixtures.packageRoot.appendingPathComponent("Benchmarks/references/\(seed.name)-llamacpp.json")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(SeedReference.self, from: Data(contentsOf: path))
    }
}

extension SeedModel: CustomTestStringConvertible {
    public var testDescription: String { name }
}

/// Tier 3 without the 7–9B files: the four seed configurations of the HARP paper as tiny F32 models
/// with real vocabularies, against llama.cpp on byte-identical files.
///
/// Tolerance: weights, activations and both KV caches are F32 in both runtimes (llama-probe runs
/// with an f32 cache; the perplexity runs use f16 caches on both sides), so logits differ only by
/// f32 summation order — dot products of up to 4096 terms in a different association. Measured
/// differences are below 2e-4 on logits of magnitude ≤ 30; the tolerance 2e-3 leaves ten times
/// that, while a wrong RoPE frequency, scale or window moves logits by whole units (the
/// `rope_freqs` check below). Greedy steps are compared while llama.cpp's top-two margin exceeds
/// twice the tolerance (each of the two logits may move by the tolerance).
@Suite("Seed configurations vs llama.cpp", .serialized)
struct SeedModelTests {
    static let logitTolerance: Float = 2e-3
    static var decisionMargin: Float { 2 * logitTolerance }

    static func tokenize(_ text: String, _ tokenizer: any Tokenizer) -> [Int32] {
        (tokenizer.addBOS ? tokenizer.bosID.map { [$0] } ?? [] : []) + tokenizer.encode(text, parseSpecial: false)
    }

    static func sha256(_ path: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
        process.arguments = [path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: output, as: UTF8.self).split(separator: " ").first.map(String.init) ?? ""
    }

    /// Longest span the seed's configuration cares about: its sliding window or llama3 original context.
    static func span(_ seed: SeedModel) -> Int? {
        seed.gemma2?.slidingWindow ?? seed.llama3Scaling?.originalContext
    }

    @Test("the regenerated file is the one llama.cpp measured; prompt ids, top-10 logits, greedy and perplexity agree",
          arguments: SeedModel.all)
    func agreesWithLlamaCpp(_ seed: SeedModel) throws {
        let reference = try SeedReference.load(seed)
        let path = try seed.materialize(packageRoot: Fixtures.packageRoot)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try Self.sha256(path) == reference.modelSha256,
                "\(seed.name): the generator no longer writes the file the reference was measured on (rerun measure-families.py)")

        let model = try Model(path: path)
        let transformer = Transformer(model: model, pool: ComputePool())
        let tokenizer = try TokenizerLoader.load(from: model.file)
        if let span = Self.span(seed) {
            #expect(reference.prompts.cases.contains { $0.promptIds.count > span + 8 }, "no prompt reaches past \(span) tokens")
        }
        for c in reference.prompts.cases {
            let prompt = Self.tokenize(c.prompt, tokenizer)
            #expect(prompt == c.promptIds, "\(seed.name) \(c.prompt.prefix(30).debugDescription): prompt ids")
            let cache = try KVCache(config: transformer.config, contextLength: 256, type: .f32)
            let logits = try transformer.forward(Batch(tokens: c.promptIds, startPosition: 0), cache: cache)
            let worst = c.top10.map { abs(logits[$0.id] - $0.logit) }.max() ?? 0
            #expect(worst < Self.logitTolerance, "\(seed.name) \(c.prompt.prefix(30).debugDescription): top-10 logits differ by \(worst)")
            let ours = Array(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(10))
            for (rank, entry) in c.top10.enumerated() where c.top10.indices.allSatisfy({
                $0 == rank || abs(c.top10[$0].logit - entry.logit) > Self.logitTolerance
            }) {
                #expect(ours[rank] == entry.id, "\(seed.name) \(c.prompt.prefix(30).debugDescription): rank \(rank)")
            }
            let decisive = c.greedyTop1MinusTop2.firstIndex { $0 < Self.decisionMargin } ?? c.greedyIds.count
            let greedy = try greedyTokens(transformer, prompt: c.promptIds, steps: decisive, contextLength: 256, kvType: .f32)
            #expect(greedy == Array(c.greedyIds.prefix(decisive)), "\(seed.name) \(c.prompt.prefix(30).debugDescription): greedy")
        }

        var text = try String(contentsOfFile: Fixtures.wikiTestPath, encoding: .utf8)
        if text.hasSuffix("\n") { text.removeLast() }
        let figure = reference.perplexity
        let result = try Perplexity.evaluate(transformer, text: text, tokenizer: tokenizer, context: figure.context,
                                             maxChunks: figure.chunks)
        print("\(seed.name) WikiText-2 PPL (\(figure.chunks)×\(figure.context)): \(result.perplexity) (llama.cpp \(figure.ppl))")
        #expect(abs(result.perplexity / figure.ppl - 1) < 0.001)
    }

    /// Without `rope_freqs.weight` the Llama-3.1 model is what a runtime ignoring the llama3 scaling
    /// computes: its logits must miss llama.cpp's by far more than the tolerance, or the check above
    /// could not tell the two apart.
    @Test("the Llama-3.1 reference tells the model from the same model without rope_freqs")
    func ropeFreqsMatter() throws {
        let seed = SeedModel.llama31
        let reference = try SeedReference.load(seed)
        let path = try seed.materialize(packageRoot: Fixtures.packageRoot, withRopeFreqs: false)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let transformer = Transformer(model: try Model(path: path), pool: ComputePool())
        let long = try #require(reference.prompts.cases.max { $0.promptIds.count < $1.promptIds.count })
        let cache = try KVCache(config: transformer.config, contextLength: 256, type: .f32)
        let logits = try transformer.forward(Batch(tokens: long.promptIds, startPosition: 0), cache: cache)
        let worst = long.top10.map { abs(logits[$0.id] - $0.logit) }.max() ?? 0
        #expect(worst > 50 * Self.logitTolerance, "without rope_freqs the logits differ by only \(worst)")
    }
}

/// Writes the seed models into $HARP_SEED_MODELS_DIR for Benchmarks/references/measure-families.py.
/// Not a check: it runs only when that variable is set.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["HARP_SEED_MODELS_DIR"] != nil, "writes models only on request"))
struct SeedModelExport {
    @Test func write() throws {
        let dir = try #require(ProcessInfo.processInfo.environment["HARP_SEED_MODELS_DIR"])
        for seed in SeedModel.all {
            try seed.writer(packageRoot: Fixtures.packageRoot).write(to: "\(dir)/\(seed.name).gguf")
        }
    }
}
