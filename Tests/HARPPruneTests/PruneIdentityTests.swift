import Foundation
import Testing
@testable import HARP
@testable import HARPPrune
import HARPTestSupport

/// Identities the pruner's transformations must satisfy, on tiny random models.
@Suite("Pruner identities")
struct PruneIdentityTests {
    let pool = ComputePool(threads: 2)

    /// Runs layer `layer` of `model` on copies of `hidden` (rows × d) with no cache: full
    /// attention then lets each token attend only to itself.
    func layerOutput(_ model: Model, layer: Int, hidden: [Float]) -> [Float] {
        let transformer = Transformer(model: model, pool: pool)
        let rows = hidden.count / model.config.embeddingLength
        var x = hidden
        x.withUnsafeMutableBufferPointer { buffer in
            transformer.runLayer(layer, hidden: buffer, batch: Batch(tokens: Array(repeating: 0, count: rows), startPosition: 0), cache: nil)
        }
        return x
    }

    @Test("folded α and GQA equal the unfolded self-attention computation")
    func foldedEqualsUnfolded() throws {
        let (dense, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let layer = 1, alpha: Float = 0.7
        guard case .full(let heads, let kvHeads, let headDim) = dense.config.layers[layer].attention,
              let wo = dense.weights.layers[layer].attention.output else { Issue.record("dense layer expected"); return }

        var folded = ModelEditor(dense, storageType: nil)
        try folded.makeValueOnly(layer, alpha: alpha, groupedOutput: HARPFolding.groupedOutput(wo, heads: heads, kvHeads: kvHeads, headDim: headDim))
        let foldedModel = folded.build()
        #expect(foldedModel.config.layers[layer].attention == .valueOnly(kvHeads: kvHeads, headDim: headDim))
        #expect(foldedModel.weights.layers[layer].attention.output?.cols == kvHeads * headDim)

        // Unfolded: the dense layer with α · W_O, every query head reading its KV head's value
        // through the attention kernel (one attended position: softmax weight 1).
        let builder = WeightBuilder(keeping: [dense])
        var scaled = dense.weights.layers
        scaled[layer].full.output = try builder.matrix(wo.name, rows: wo.rows, cols: wo.cols, floats: wo.floats().map { $0 * alpha })
        let unfolded = Model(file: dense.file, config: dense.config,
                             weights: builder.weights(tokenEmbedding: dense.weights.tokenEmbedding, outputNorm: dense.weights.outputNorm,
                                                      output: dense.weights.output, layers: scaled),
                             weightFormat: dense.weightFormat)

        var random = SplitMix64(seed: 11)
        let hidden: [Float] = (0..<(5 * dense.config.embeddingLength)).map { _ in Float(Int(random.next() % 2001) - 1000) / 500 }
        let diff = layerOutput(foldedModel, layer: layer, hidden: hidden).maxAbsDifference(layerOutput(unfolded, layer: layer, hidden: hidden))
        #expect(diff < 1e-4)
    }

    @Test("α = 0 removes the attention block and its weights")
    func alphaZeroRemovesAttention() throws {
        let (dense, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var editor = ModelEditor(dense, storageType: nil)
        try editor.makeValueOnly(2, alpha: 0, groupedOutput: [])
        let pruned = editor.build()
        #expect(pruned.config.layers[2].attention == .none)
        #expect(pruned.weights.layers[2].attention.frame == nil && pruned.weights.layers[2].attention.output == nil)
    }

    /// HARP on the top two layers of a tiny model with a small grid.
    func harpPruned(_ dense: Model, calibration: CalibrationSet, grid: [Float] = [0, 0.5, 1]) throws -> PruneOutcome {
        var options = PruneOptions()
        options.dropLast = 2
        options.alphaGrid = grid
        return try Pruner(model: dense, calibration: calibration, options: options, pool: pool).run()
    }

    @Test("the α search's replay from cached inputs equals the full forward pass of the chosen model")
    func replayEqualsForward() throws {
        let (dense, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let calibration = try TinyDense.calibration(vocab: dense.config.vocabularySize)
        let outcome = try harpPruned(dense, calibration: calibration, grid: [0, 0.25, 0.5, 0.75, 1])
        let report = outcome.report
        #expect(report.searchedLayers == [2, 1])
        // The full forward pass of the pruned model, independent of the replay.
        let full = try CalibrationPass.perplexity(Transformer(model: outcome.model, pool: pool), calibration: calibration)
        #expect(abs(full - report.after.calibrationPerplexity) / full < 1e-5)
        // The search scored every window here, so its last perplexity is the final model's.
        let searched = try #require(report.sweepPerplexities.last)
        #expect(abs(full - searched) / full < 1e-5)
        // The greedy pass ends at the best value of the last layer's row; sweeps never make it worse.
        #expect(report.sweepPerplexities.first == report.searchPerplexities.last?.min())
        #expect(zip(report.sweepPerplexities, report.sweepPerplexities.dropFirst()).allSatisfy { $1 <= $0 })
        #expect(report.after.kvBytesPerToken * 3 == report.before.kvBytesPerToken)
    }

    @Test("α = 1 and --drop-last 0 reproduce the dense model exactly")
    func noPruningIsDense() throws {
        let (dense, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = PruneOptions()
        options.dropLast = 0
        options.alphaGrid = [1]
        let calibration = try TinyDense.calibration(vocab: dense.config.vocabularySize)
        let outcome = try Pruner(model: dense, calibration: calibration, options: options, pool: pool).run()
        #expect(outcome.report.after.calibrationPerplexity == outcome.report.before.calibrationPerplexity)
        let tokens: [Int32] = [5, 17, 3, 42, 8, 60]
        #expect(try Logits.of(outcome.model, tokens) == Logits.of(dense, tokens))
    }

    @Test("native export reloads to the in-memory model; deci (fused) equals native (factored) to 1e-4")
    func exportsMatch() throws {
        let (dense, path) = try TinyDense.load()
        let native = TinyDense.temporaryPath("native"), deci = TinyDense.temporaryPath("deci")
        defer { for p in [path, native, deci] { try? FileManager.default.removeItem(atPath: p) } }
        let outcome = try harpPruned(dense, calibration: TinyDense.calibration(vocab: dense.config.vocabularySize), grid: [0.6, 0.9])
        try ModelWriter.write(outcome.model, to: native, layout: .native, extraMetadata: Pruner.provenance(outcome.report))
        try ModelWriter.write(outcome.model, to: deci, layout: .deci)
        let reloaded = try Model(path: native), fused = try Model(path: deci)
        #expect(reloaded.config == outcome.model.config)
        #expect(fused.config.layers[2].attention == .linear)
        let tokens: [Int32] = [1, 30, 2, 77, 9, 15, 4]
        let inMemory = try Logits.of(outcome.model, tokens)
        #expect(try Logits.of(reloaded, tokens) == inMemory)
        #expect(try Logits.of(fused, tokens).maxAbsDifference(inMemory) < 1e-4)
        let alphas = try #require(reloaded.file.metadata["harp.alpha"]?.floatArray)
        #expect(alphas == outcome.report.layers.map { $0.alpha ?? 1 })
    }

    @Test("removing a KV group equals zeroing its heads' columns of W_O")
    func kvGroupRemovalEqualsZeroedColumns() throws {
        let (dense, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let layer = 1
        var editor = ModelEditor(dense, storageType: nil)
        try editor.keepKVGroups(layer, [1])
        let pruned = editor.build()
        #expect(pruned.config.layers[layer].attention == .full(heads: 2, kvHeads: 1, headDim: 16))

        guard let wo = dense.weights.layers[layer].attention.output else { Issue.record("dense W_O expected"); return }
        var zeroed = wo.floats()
        for r in 0..<wo.rows { for c in 0..<32 { zeroed[r * wo.cols + c] = 0 } }  // heads 0 and 1 read KV group 0
        let builder = WeightBuilder(keeping: [dense])
        var layers = dense.weights.layers
        layers[layer].full.output = try builder.matrix(wo.name, rows: wo.rows, cols: wo.cols, floats: zeroed)
        let reference = Model(file: dense.file, config: dense.config,
                              weights: builder.weights(tokenEmbedding: dense.weights.tokenEmbedding, outputNorm: dense.weights.outputNorm,
                                                       output: dense.weights.output, layers: layers),
                              weightFormat: dense.weightFormat)
        let tokens: [Int32] = [3, 14, 15, 92, 65, 35]
        #expect(try Logits.of(pruned, tokens).maxAbsDifference(Logits.of(reference, tokens)) < 1e-4)
    }

    /// `random` with the first `rows` value rows of every layer (all if nil) outputting a constant:
    /// zero weights and a random value bias. Heads reading them attend to the same vector at every
    /// position (softmax weights sum to 1), so they add a constant that compensation must restore.
    func withConstantValues(_ random: Model, rows constantRows: Int? = nil, outputBias: Bool = false,
                            seed: UInt64, builder: WeightBuilder) throws -> Model {
        var rng = SplitMix64(seed: seed)
        func noise(_ n: Int) -> [Float] { (0..<n).map { _ in Float(Int(rng.next() % 201) - 100) / 50 } }
        var layers = random.weights.layers
        for l in layers.indices {
            let p = layers[l].full, v = p.value
            let rows = constantRows ?? v.rows
            var f = v.floats()
            for i in 0..<(rows * v.cols) { f[i] = 0 }
            layers[l].full.value = try builder.matrix(v.name, rows: v.rows, cols: v.cols, floats: f)
            // Q/K/V biases come together: zero query and key biases change nothing.
            layers[l].full.biases = QKVBiases(query: Array(repeating: 0, count: p.query.rows), key: Array(repeating: 0, count: p.key.rows),
                                              value: noise(rows) + Array(repeating: 0, count: v.rows - rows))
            if outputBias { layers[l].frame.outputBias = noise(random.config.embeddingLength) }
        }
        return Model(file: random.file, config: random.config,
                     weights: builder.weights(tokenEmbedding: random.weights.tokenEmbedding, outputNorm: random.weights.outputNorm,
                                              output: random.weights.output, layers: layers),
                     weightFormat: random.weightFormat)
    }

    @Test("FLAP head pruning of constant-output KV groups, compensated in attn_output.bias, keeps the logits; native and deci reload it")
    func flapHeadCompensationIsExact() throws {
        let (random, path) = try TinyDense.load()
        let native = TinyDense.temporaryPath("flap-native"), deci = TinyDense.temporaryPath("flap-deci")
        defer { for p in [path, native, deci] { try? FileManager.default.removeItem(atPath: p) } }
        // KV group 0 of every layer outputs a constant, W_O[:, group 0] · b_V, which FLAP's
        // compensation must restore exactly.
        let headDim = 16
        let builder = WeightBuilder(keeping: [random])
        let dense = try withConstantValues(random, rows: headDim, seed: 21, builder: builder)
        var options = PruneOptions()
        options.method = .flapHeads
        options.budget = 0.5  // 3 of the 6 KV groups: with two groups per layer the constant one scores lowest in each
        let outcome = try Pruner(model: dense, calibration: TinyDense.calibration(vocab: dense.config.vocabularySize),
                                 options: options, pool: pool).run()
        #expect(outcome.model.config.layers.allSatisfy { $0.attention == .full(heads: 2, kvHeads: 1, headDim: headDim) })
        #expect(outcome.model.weights.layers.allSatisfy { $0.attention.frame?.outputBias?.count == 64 })

        let tokens: [Int32] = [4, 8, 15, 16, 23, 42, 7]
        let expected = try Logits.of(dense, tokens)
        #expect(try Logits.of(outcome.model, tokens).maxAbsDifference(expected) < 1e-4)
        var uncompensated = outcome.model.weights.layers
        for l in uncompensated.indices { uncompensated[l].frame.outputBias = nil }
        let withoutBias = Model(file: dense.file, config: outcome.model.config,
                                weights: builder.weights(tokenEmbedding: dense.weights.tokenEmbedding, outputNorm: dense.weights.outputNorm,
                                                         output: dense.weights.output, layers: uncompensated),
                                weightFormat: dense.weightFormat)
        #expect(try Logits.of(withoutBias, tokens).maxAbsDifference(expected) > 0.1)

        try ModelWriter.write(outcome.model, to: native, layout: .native)
        try ModelWriter.write(outcome.model, to: deci, layout: .deci)
        #expect(try Logits.of(Model(path: native), tokens).maxAbsDifference(expected) < 1e-4)
        #expect(try Logits.of(Model(path: deci), tokens).maxAbsDifference(expected) < 1e-4)

        // Every group constant and every group removed: each block becomes its compensation, a constant.
        let constant = try withConstantValues(random, seed: 22, builder: builder)
        options.budget = 1
        let emptied = try Pruner(model: constant, calibration: TinyDense.calibration(vocab: dense.config.vocabularySize),
                                 options: options, pool: pool).run()
        #expect(emptied.model.config.layers.allSatisfy { $0.attention == .none })
        #expect(try Logits.of(emptied.model, tokens).maxAbsDifference(Logits.of(constant, tokens)) < 1e-4)
    }

    @Test("HARP mean compensation keeps constant-output attention blocks exactly at every α; native reloads it, deci refuses it")
    func meanCompensationIsExactOnConstantBlocks() throws {
        let (random, path) = try TinyDense.load()
        let native = TinyDense.temporaryPath("compensated-native"), deci = TinyDense.temporaryPath("compensated-deci")
        defer { for p in [path, native, deci] { try? FileManager.default.removeItem(atPath: p) } }
        // Every block outputs the constant W_O·R·b_V + b_O. Compensation must keep it whatever α
        // the search picks (α = 0 included, where the block becomes that constant).
        let dense = try withConstantValues(random, outputBias: true, seed: 5, builder: WeightBuilder(keeping: [random]))
        let calibration = try TinyDense.calibration(vocab: dense.config.vocabularySize)
        let tokens: [Int32] = [4, 8, 15, 16, 23, 42, 7]
        let expected = try Logits.of(dense, tokens)
        for grid: [Float] in [[0], [0.5], [2]] {
            var options = PruneOptions()
            options.dropLast = 2
            options.alphaGrid = grid
            options.meanCompensation = true
            let compensated = try Pruner(model: dense, calibration: calibration, options: options, pool: pool).run()
            #expect(try Logits.of(compensated.model, tokens).maxAbsDifference(expected) < 1e-4, "α \(grid)")
            options.meanCompensation = false
            let plain = try Pruner(model: dense, calibration: calibration, options: options, pool: pool).run()
            #expect(try Logits.of(plain.model, tokens).maxAbsDifference(expected) > 0.1, "α \(grid)")
            if grid == [0] {
                #expect(compensated.model.config.layers[2].attention == .none)
                #expect(compensated.report.markdown.contains("mean compensation"))
                try ModelWriter.write(compensated.model, to: native, layout: .native, extraMetadata: Pruner.provenance(compensated.report))
                let reloaded = try Model(path: native)
                #expect(try Logits.of(reloaded, tokens).maxAbsDifference(expected) < 1e-4)
                #expect(reloaded.file.metadata["harp.pruning.mean_compensation"] == .bool(true))
                #expect(throws: HARPError.invalidArgument("layer 1: tensor blk.1.attn_output.bias (none attention) has no place in the deci layout")) {
                    try ModelWriter.write(compensated.model, to: deci, layout: .deci)
                }
                #expect(!FileManager.default.fileExists(atPath: deci))
            }
        }
    }

    @Test("FLAP keeps block-rounded widths near the global ratio and adds the down-projection bias")
    func flapWidths() throws {
        var shape = TinyDense.Shape()
        shape.ffn = 256
        let (dense, path) = try TinyDense.load(shape)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var options = PruneOptions()
        options.dropLast = 0
        options.mlpRatio = 0.25
        let outcome = try Pruner(model: dense, calibration: TinyDense.calibration(vocab: dense.config.vocabularySize),
                                 options: options, pool: pool).run()
        let widths = outcome.model.config.layers.map(\.ffnWidth)
        #expect(widths.allSatisfy { $0 % 32 == 0 && $0 <= 256 })
        let removed = Float(3 * 256 - widths.reduce(0, +)) / Float(3 * 256)
        #expect(abs(removed - 0.25) <= 0.07)
        #expect(outcome.model.weights.layers.allSatisfy { $0.mlp.gated?.downBias?.count == 64 })
    }

    @Test("baselines remove the same share of KV heads as HARP's layers")
    func baselineBudgets() throws {
        var shape = TinyDense.Shape()
        shape.layers = 4
        let (dense, path) = try TinyDense.load(shape)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let calibration = try TinyDense.calibration(vocab: dense.config.vocabularySize)
        for method in [PruneMethod.flapHeads, .wandaSP, .magnitudeSP, .shortGPT] {
            var options = PruneOptions()
            options.method = method
            options.dropLast = 1
            let outcome = try Pruner(model: dense, calibration: calibration, options: options, pool: pool).run()
            #expect(outcome.report.after.kvBytesPerToken * 4 == outcome.report.before.kvBytesPerToken * 3, "\(method)")
            #expect(outcome.report.after.calibrationPerplexity.isFinite, "\(method)")
        }
    }

    @Test("bad pruning arguments name what is wrong")
    func badArguments() throws {
        let (dense, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let calibration = try TinyDense.calibration(vocab: dense.config.vocabularySize)
        var options = PruneOptions()
        options.dropLast = 4
        #expect(throws: HARPError.invalidArgument("--drop-last 4 is outside 0...3 (the model has 3 layers)")) {
            try Pruner(model: dense, calibration: calibration, options: options, pool: pool)
        }
        options.dropLast = 1
        options.alphaGrid = []
        #expect(throws: HARPError.self) { try Pruner(model: dense, calibration: calibration, options: options, pool: pool) }
        options.alphaGrid = [1]
        options.method = .wandaSP
        options.meanCompensation = true
        #expect(throws: HARPError.invalidArgument("--compensate applies to --method harp only (wanda-sp compensates in its own way or not at all)")) {
            try Pruner(model: dense, calibration: calibration, options: options, pool: pool)
        }
    }
}
