import Foundation
import Testing
@testable import HARP
@testable import HARPPrune

/// harp-prune on SmolLM2-135M with a few short calibration windows, and its command-line errors.
@Suite("Pruner on SmolLM2", .serialized)
struct RealModelPruneTests {
    @Test("HARP --drop-last 8 keeps 22/30 of the KV cache; native and deci files agree on perplexity")
    func harpDropLast8() throws {
        let file = try GGUFFile(path: PruneFixtures.smolLM2Path)
        // F32 weights (as `--weights f32`): the deci file's fused W_O′·W_V is then the exact product of
        // the native file's matrices, and both run float kernels, so they differ by rounding only.
        let dense = try Model(file: file, weights: .f32)
        let tokenizer = try TokenizerLoader.load(from: file)
        let calibration = try CalibrationSet.load(path: PruneFixtures.wikiValidPath, tokenizer: tokenizer, count: 4, length: 64, seed: 0)
        var options = PruneOptions()
        options.dropLast = 8
        options.alphaGrid = [0, 0.5, 1]
        let pool = ComputePool(threads: 2)
        let outcome = try Pruner(model: dense, calibration: calibration, options: options, pool: pool).run()
        let report = outcome.report
        #expect(report.after.kvBytesPerToken * 30 == report.before.kvBytesPerToken * 22)
        #expect(outcome.model.config.layers[22...].allSatisfy { !$0.attention.needsKVCache })
        #expect(outcome.model.config.layers[..<22].allSatisfy { $0.attention.needsKVCache })
        #expect(report.after.calibrationPerplexity.isFinite && report.after.calibrationPerplexity > 1)

        let native = TinyDense.temporaryPath("smol-native"), deci = TinyDense.temporaryPath("smol-deci")
        defer { for p in [native, deci] { try? FileManager.default.removeItem(atPath: p) } }
        try ModelWriter.write(outcome.model, to: native, layout: .native, extraMetadata: Pruner.provenance(report))
        try ModelWriter.write(outcome.model, to: deci, layout: .deci)
        let tokens = tokenizer.encode(try String(contentsOfFile: PruneFixtures.wikiValidPath, encoding: .utf8).prefix(4000).description,
                                      parseSpecial: false)
        func perplexity(_ path: String) throws -> Double {
            try Perplexity.evaluate(Transformer(model: Model(path: path), pool: pool), tokens: tokens, context: 128, maxChunks: 2).perplexity
        }
        let fromNative = try perplexity(native), fromDeci = try perplexity(deci)
        let inMemory = try Perplexity.evaluate(Transformer(model: outcome.model, pool: pool), tokens: tokens, context: 128, maxChunks: 2).perplexity
        #expect(fromNative == inMemory)
        #expect(abs(fromDeci - fromNative) / fromNative < 1e-4, "native \(fromNative), deci \(fromDeci)")
    }

    @Test("bad arguments give clear errors")
    func commandLineErrors() throws {
        func expectFailure(_ arguments: [String], _ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let (status, stderr) = try PruneFixtures.runPrune(arguments)
            #expect(status == 1, sourceLocation: sourceLocation)
            #expect(stderr.contains(message), "\(stderr)", sourceLocation: sourceLocation)
        }
        let model = PruneFixtures.smolLM2Path
        let out = TinyDense.temporaryPath("cli-out")
        try expectFailure(["-m", model, "-o", model], "is the same file as the input -m '\(model)'; harp-prune never overwrites its input")
        try expectFailure(["-m", model, "-o", out, "--drop-last", "31"], "--drop-last 31 is outside 0...30 (the model has 30 layers)")
        try expectFailure(["-m", model, "-o", out, "--deci", out + ".deci", "--compensate"],
                          "--compensate cannot be combined with --deci")

        let empty = TinyDense.temporaryPath("empty") + ".txt"
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        defer { try? FileManager.default.removeItem(atPath: empty) }
        try expectFailure(["-m", model, "-o", out, "-f", empty], "\(empty): the calibration file is empty")

        var gpt2 = try TinyDense.writer(TinyDense.Shape())
        gpt2.set("general.architecture", .string("gpt2"))
        let unsupported = TinyDense.temporaryPath("gpt2")
        try gpt2.write(to: unsupported)
        defer { try? FileManager.default.removeItem(atPath: unsupported) }
        try expectFailure(["-m", unsupported, "-o", out], "architecture \"gpt2\" is not supported")
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
