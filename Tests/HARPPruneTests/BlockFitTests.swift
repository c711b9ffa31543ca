import Foundation
import Testing
@testable import HARP
@testable import HARPPrune
import HARPTestSupport

/// Identities of the closed-form block fits (`harp-prune --fit`), on random data and tiny models.
@Suite("Block fits")
struct BlockFitTests {
    let pool = ComputePool(threads: 2)

    func noise(_ n: Int, _ rng: inout SplitMix64, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in scale * (Float(Int(rng.next() % 20001) - 10000) / 10000) }
    }

    /// y = A x + b over random x, as Gram matrices.
    func linearData(d: Int, rows: Int, map a: [Float], bias b: [Float], seed: UInt64) throws -> GramMatrices {
        var rng = SplitMix64(seed: seed)
        let x = noise(rows * d, &rng)
        var y = [Float](repeating: 0, count: rows * d)
        for r in 0..<rows {
            for i in 0..<d {
                var s = Double(b[i])
                for j in 0..<d { s += Double(a[i * d + j]) * Double(x[r * d + j]) }
                y[r * d + i] = Float(s)
            }
        }
        var gram = GramMatrices(inputWidth: d, outputWidth: d)
        try x.withUnsafeBufferPointer { xp in
            try y.withUnsafeBufferPointer { yp in
                // Two calls: accumulation across batches must add up.
                let half = rows / 2
                try gram.add(x: xp.baseAddress!, y: yp.baseAddress!, rows: half, threads: 2)
                try gram.add(x: xp.baseAddress! + half * d, y: yp.baseAddress! + half * d, rows: rows - half, threads: 2)
            }
        }
        #expect(gram.count == rows)
        return gram
    }

    func maxRelative(_ a: [Float], _ b: [Float]) -> Float {
        let scale = b.map(abs).max() ?? 1
        return zip(a, b).map { abs($0 - $1) }.max().map { $0 / max(scale, 1e-30) } ?? 0
    }

    @Test("a target exactly linear in the input is recovered to float precision: linear, output and rank")
    func exactLinearTargetIsRecovered() throws {
        let d = 24, kv = 8, rows = 400
        var rng = SplitMix64(seed: 41)
        // linear: any A, b.
        let a = noise(d * d, &rng), b = noise(d, &rng)
        let full = try linearData(d: d, rows: rows, map: a, bias: b, seed: 1)
        let linear = try BlockFit(mode: .linear, ridge: 0, bias: true, threads: 2).solve(full, value: [], valueBias: nil, kvWidth: kv)
        guard case .linear(let w, let c?) = linear.solution else { Issue.record("linear solution with bias expected"); return }
        #expect(maxRelative(w, a) < 1e-5)
        #expect(maxRelative(c, b) < 1e-5)
        #expect(linear.relativeResidual < 1e-9)

        // output and rank: A = W_O · W_V of rank kv, with a value bias and an output bias.
        let wv = noise(kv * d, &rng), bv = noise(kv, &rng), wo = noise(d * kv, &rng), bo = noise(d, &rng)
        var product = [Float](repeating: 0, count: d * d), constant = bo
        for i in 0..<d {
            for k in 0..<kv {
                for j in 0..<d { product[i * d + j] += wo[i * kv + k] * wv[k * d + j] }
                constant[i] += wo[i * kv + k] * bv[k]
            }
        }
        let lowRank = try linearData(d: d, rows: rows, map: product, bias: constant, seed: 2)
        let output = try BlockFit(mode: .output, ridge: 0, bias: true, threads: 2).solve(lowRank, value: wv, valueBias: bv, kvWidth: kv)
        guard case .valueOnly(nil, let keptBias?, let fittedOutput, let fittedBias?) = output.solution else {
            Issue.record("value-only solution keeping W_V expected"); return
        }
        #expect(keptBias == bv)
        #expect(maxRelative(fittedOutput, wo) < 1e-5)
        #expect(maxRelative(fittedBias, bo) < 1e-4)

        // The rank fit has no unique factors (W_O′ S, S⁻¹ W_V); its map W_O′·W_V and its bias must equal A and c.
        let rank = try BlockFit(mode: .rank, ridge: 0, bias: true, threads: 2).solve(lowRank, value: wv, valueBias: bv, kvWidth: kv)
        guard case .valueOnly(let v?, nil, let u, let offset?) = rank.solution else { Issue.record("rank solution expected"); return }
        var map = [Float](repeating: 0, count: d * d)
        for i in 0..<d {
            for k in 0..<kv {
                for j in 0..<d { map[i * d + j] += u[i * kv + k] * v[k * d + j] }
            }
        }
        #expect(maxRelative(map, product) < 1e-4)
        #expect(maxRelative(offset, constant) < 1e-4)
        #expect(rank.relativeResidual < 1e-8)
        // The ridge shrinks the fit: a residual appears.
        let ridged = try BlockFit(mode: .rank, ridge: 0.1, bias: true, threads: 2).solve(lowRank, value: wv, valueBias: bv, kvWidth: kv)
        #expect(ridged.relativeResidual > 1e-4)
    }

    @Test("the replay from a cached input sees the dense forward pass's attention inputs and outputs")
    func replayMatchesForward() throws {
        let (dense, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let calibration = try TinyDense.calibration(vocab: dense.config.vocabularySize, windows: 9)  // 9 windows: a partial last batch
        let layer = 2, bottom = 1
        var request = StatisticsRequest()
        request.cachedFullInputs = [bottom]
        let statistics = CalibrationStatistics(request: request, calibration: calibration)
        let forward = BlockGramObserver(layer: layer, width: dense.config.embeddingLength, threads: 2)
        final class Both: ForwardObserver {
            let a: ForwardObserver, b: ForwardObserver
            init(_ a: ForwardObserver, _ b: ForwardObserver) { (self.a, self.b) = (a, b) }
            func layerInput(_ l: Int, hidden: UnsafeBufferPointer<Float>, rows: Int) { a.layerInput(l, hidden: hidden, rows: rows) }
            func attentionInput(_ l: Int, normed: UnsafeBufferPointer<Float>, rows: Int) { b.attentionInput(l, normed: normed, rows: rows) }
            func attentionOutput(_ l: Int, output: UnsafeBufferPointer<Float>, rows: Int) { b.attentionOutput(l, output: output, rows: rows) }
        }
        _ = try CalibrationPass.perplexity(Transformer(model: dense, pool: pool), calibration: calibration, observer: Both(statistics, forward))
        let input = try #require(statistics.fullLayerInputs[bottom])
        #expect(input.count == calibration.tokenCount * dense.config.embeddingLength)
        let replayed = BlockGramObserver(layer: layer, width: dense.config.embeddingLength, threads: 2)
        try FitPass.replay(dense, from: bottom, through: layer, input: input, calibration: calibration, pool: pool, observer: replayed) { _, _ in }
        #expect(replayed.gram.count == calibration.tokenCount && forward.gram.count == calibration.tokenCount)
        #expect(replayed.gram.inputMoments == forward.gram.inputMoments)
        #expect(replayed.gram.crossMoments == forward.gram.crossMoments)
    }

    @Test("--fit output on the calibration data of an α-scaled value-only block recovers that block")
    func outputFitRecoversValueOnlyBlock() throws {
        let (dense, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let layer = 2, alpha: Float = 0.6
        guard case .full(let heads, let kvHeads, let headDim) = dense.config.layers[layer].attention,
              case .full(_, let denseBlock) = dense.weights.layers[layer].attention else {
            Issue.record("dense layer expected"); return
        }
        let wo = denseBlock.output, wv = denseBlock.value
        var editor = ModelEditor(dense, storageType: nil)
        try editor.makeValueOnly(layer, alpha: alpha, groupedOutput: HARPFolding.groupedOutput(wo, heads: heads, kvHeads: kvHeads, headDim: headDim))
        let scaled = editor.build()
        let block = try #require(scaled.weights.layers[layer].attention.output)
        let calibration = try TinyDense.calibration(vocab: dense.config.vocabularySize)
        let observer = BlockGramObserver(layer: layer, width: dense.config.embeddingLength, threads: 2)
        _ = try CalibrationPass.perplexity(Transformer(model: scaled, pool: pool), calibration: calibration, observer: observer)
        let fitted = try BlockFit(mode: .output, ridge: 0, bias: true, threads: 2)
            .solve(observer.gram, value: wv.floats(), valueBias: nil, kvWidth: kvHeads * headDim)
        guard case .valueOnly(nil, nil, let output, let bias?) = fitted.solution else { Issue.record("value-only solution expected"); return }
        #expect(maxRelative(output, block.floats()) < 1e-4)
        #expect((bias.map(abs).max() ?? 1) < 1e-4)
        #expect(fitted.relativeResidual < 1e-8)
    }

    @Test("every fit mode prunes bottom-up; the file reloads to the in-memory model; linear without bias equals its deci export",
          arguments: [FitMode.output, .rank, .linear])
    func fittedModelsReload(mode: FitMode) throws {
        let (dense, path) = try TinyDense.load()
        let native = TinyDense.temporaryPath("fit-native"), deci = TinyDense.temporaryPath("fit-deci")
        defer { for p in [path, native, deci] { try? FileManager.default.removeItem(atPath: p) } }
        let calibration = try TinyDense.calibration(vocab: dense.config.vocabularySize, windows: 10)
        var options = PruneOptions()
        options.dropLast = 2
        options.fit = mode
        let outcome = try Pruner(model: dense, calibration: calibration, options: options, pool: pool).run()
        let expected: AttentionKind = mode == .linear ? .linear : .valueOnly(kvHeads: 2, headDim: 16)
        #expect(outcome.model.config.layers[1].attention == expected && outcome.model.config.layers[2].attention == expected)
        #expect(outcome.model.config.layers[0].attention == dense.config.layers[0].attention)
        #expect(outcome.report.fitResiduals.count == 2 && outcome.report.fitResiduals.allSatisfy { $0 >= 0 && $0 < 1 })
        #expect(outcome.report.markdown.contains("fit: \(mode.rawValue)"))
        // The reported perplexity (a replay) is the full forward pass's.
        let full = try CalibrationPass.perplexity(Transformer(model: outcome.model, pool: pool), calibration: calibration)
        #expect(abs(full - outcome.report.after.calibrationPerplexity) < 1e-5 * full)

        try ModelWriter.write(outcome.model, to: native, layout: .native, extraMetadata: Pruner.provenance(outcome.report))
        let reloaded = try Model(path: native)
        #expect(reloaded.config == outcome.model.config)
        #expect(reloaded.file.metadata["harp.pruning.fit"] == .string(mode.rawValue))
        let tokens: [Int32] = [1, 30, 2, 77, 9, 15, 4]
        let inMemory = try Logits.of(outcome.model, tokens)
        #expect(try Logits.of(reloaded, tokens) == inMemory)
        #expect(throws: HARPError.self) { try ModelWriter.write(outcome.model, to: deci, layout: .deci) }

        if mode == .linear {
            options.fitBias = false
            let unbiased = try Pruner(model: dense, calibration: calibration, options: options, pool: pool).run()
            #expect(unbiased.model.weights.layers[2].attention.frame?.outputBias == nil)
            try ModelWriter.write(unbiased.model, to: deci, layout: .deci)
            #expect(try Logits.of(Model(path: deci), tokens).maxAbsDifference(Logits.of(unbiased.model, tokens)) < 1e-4)
        }
    }

    @Test("fit options that cannot work name the problem")
    func badFitOptions() throws {
        let (dense, path) = try TinyDense.load()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let calibration = try TinyDense.calibration(vocab: dense.config.vocabularySize)
        var options = PruneOptions()
        options.dropLast = 2
        options.fit = .rank
        options.method = .flapHeads
        #expect(throws: HARPError.invalidArgument("--fit rank applies to --method harp only")) {
            try Pruner(model: dense, calibration: calibration, options: options, pool: pool)
        }
        options.method = .harp
        options.meanCompensation = true
        #expect(throws: HARPError.invalidArgument("--fit rank cannot be combined with --compensate (the fit's bias already keeps the mean)")) {
            try Pruner(model: dense, calibration: calibration, options: options, pool: pool)
        }
        options.meanCompensation = false
        options.ridge = -1
        #expect(throws: HARPError.invalidArgument("--ridge -1.0 must be a finite value ≥ 0")) {
            try Pruner(model: dense, calibration: calibration, options: options, pool: pool)
        }
        // Fewer tokens than inputs and no ridge: the Gram matrix is singular.
        options.ridge = 0
        options.fit = .linear
        options.dropLast = 1
        let tiny = try TinyDense.calibration(vocab: dense.config.vocabularySize, windows: 1, length: 16)
        #expect(throws: HARPError.invalidArgument("--fit linear, layer 2: the Gram matrix is not positive definite (raise --ridge)")) {
            try Pruner(model: dense, calibration: tiny, options: options, pool: pool).run()
        }
    }
}
