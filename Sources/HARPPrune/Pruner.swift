import Foundation
import HARP

/// The structured pruning methods of `harp-prune`.
public enum PruneMethod: String, Sendable, CaseIterable {
    /// HARP: the top `dropLast` layers lose Q and K, with a searched α per layer.
    case harp
    /// Attention-head baselines (whole KV groups, across all layers).
    case flapHeads = "flap-heads", wandaSP = "wanda-sp", magnitudeSP = "magnitude-sp"
    /// ShortGPT: whole layers with the lowest block influence.
    case shortGPT = "shortgpt"

    var headScore: HeadScore? {
        switch self {
        case .flapHeads: return .flap
        case .wandaSP: return .wandaSP
        case .magnitudeSP: return .magnitudeSP
        case .harp, .shortGPT: return nil
        }
    }
}

public struct PruneOptions: Sendable {
    public var method: PruneMethod = .harp
    /// HARP: number of top layers pruned. Also the default budget of the baselines: the share
    /// `dropLast / layers` of the KV cache (KV heads for head pruning, whole layers for ShortGPT).
    public var dropLast = 8
    /// Baselines: share of KV heads removed, overriding `dropLast / layers`.
    public var budget: Double?
    /// HARP's α grid.
    public var alphaGrid: [Float] = (0...10).map { Float($0) / 10 }
    /// Refinement sweeps after the greedy pass (at most; see `HARPSearch`).
    public var refinementSweeps = 2
    /// Calibration windows the α search scores (the first ones; nil: all). Every candidate runs
    /// the LM head on each scored token, which dominates the search on small models; 20 windows
    /// keep SmolLM2's whole run under 5 minutes on 2 AVX2 cores (Benchmarks/pruning/README.md).
    public var searchWindows: Int? = 20
    /// HARP: keep each pruned block's mean output over the calibration tokens in its output bias
    /// (FLAP-style compensation; not in the HARP paper, and not expressible in the deci layout).
    public var meanCompensation = false
    /// HARP: how the pruned blocks are rebuilt — the paper's α search, or a closed-form fit (`BlockFit`).
    public var fit: FitMode = .alpha
    /// Block fits: ridge relative to the mean input energy (λ = ridge · tr(C_xx)/d).
    public var ridge = 1e-3
    /// Block fits: fit a free constant (output bias; value bias for `rank`). Off for the deci layout.
    public var fitBias = true
    /// FLAP MLP pruning ratio on top of the method (0: off).
    public var mlpRatio: Float = 0
    /// Type of re-encoded matrices (nil: each matrix keeps its source type where possible).
    public var storageType: GGMLType?

    public init() {}

    /// Most α values a search may try: each costs a pass over the searched windows per layer.
    public static let maxAlphaGridCount = 1000

    /// `--alpha-grid`: 'a,b,c' or 'start:end:step' (finite, start ≤ end, step > 0, at most
    /// `maxAlphaGridCount` values).
    public static func parseAlphaGrid(_ text: String) throws -> [Float] {
        func bad(_ why: String) -> HARPError { .invalidArgument("option --alpha-grid: '\(text)' \(why)") }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
        let values: [Float]
        if parts.count == 3 {
            guard let start = parts[0], let end = parts[1], let step = parts[2] else { throw bad("is not 'start:end:step' with three numbers") }
            guard start.isFinite, end.isFinite, step.isFinite else { throw bad("has a value that is not finite") }
            guard start <= end else { throw bad("has start > end") }
            guard step > 0 else { throw bad("needs a positive step") }
            let steps = ((end - start) / step + 1e-4).rounded(.down)
            guard steps < Double(maxAlphaGridCount) else {
                throw bad("makes \(steps < 1e18 ? String(Int(steps) + 1) : "more than 10^18") values; at most \(maxAlphaGridCount) are allowed")
            }
            values = (0...Int(steps)).map { Float(start + Double($0) * step) }
        } else if parts.count == 1 {
            let list = text.split(separator: ",", omittingEmptySubsequences: false).map { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard list.allSatisfy({ $0 != nil }) else { throw bad("is neither 'a,b,c' nor 'start:end:step'") }
            values = list.compactMap { $0 }
        } else {
            throw bad("is neither 'a,b,c' nor 'start:end:step'")
        }
        guard values.count <= maxAlphaGridCount else { throw bad("has \(values.count) values; at most \(maxAlphaGridCount) are allowed") }
        guard values.allSatisfy({ $0.isFinite && $0 >= 0 }) else { throw bad("must hold finite values ≥ 0") }
        return values
    }

    func validate(layers: Int) throws {
        // A baseline given its own --budget does not use --drop-last.
        guard (0...layers).contains(dropLast) || (method != .harp && budget != nil) else {
            throw HARPError.invalidArgument("--drop-last \(dropLast) is outside 0...\(layers) (the model has \(layers) layers)")
        }
        if let budget, !(0...1).contains(budget) {
            throw HARPError.invalidArgument("--budget \(budget) is not a share between 0 and 1")
        }
        guard !alphaGrid.isEmpty, alphaGrid.count <= Self.maxAlphaGridCount, alphaGrid.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
            throw HARPError.invalidArgument("the α grid must hold 1 to \(Self.maxAlphaGridCount) finite values ≥ 0")
        }
        if method == .shortGPT {
            // Removing every layer leaves a model with nothing to run (and a file no runtime loads).
            let removed = Int(((budget ?? Double(dropLast) / Double(layers)) * Double(layers)).rounded())
            guard removed < layers else {
                throw HARPError.invalidArgument("shortgpt would remove all \(layers) layers (--drop-last / --budget too large); at most \(layers - 1) can go")
            }
        }
        if let searchWindows, searchWindows < 1 {
            throw HARPError.invalidArgument("--search-windows \(searchWindows) must be at least 1")
        }
        guard (0..<1).contains(mlpRatio) else { throw HARPError.invalidArgument("--mlp-ratio \(mlpRatio) is outside [0, 1)") }
        if fit != .alpha {
            guard method == .harp else { throw HARPError.invalidArgument("--fit \(fit.rawValue) applies to --method harp only") }
            guard !meanCompensation else {
                throw HARPError.invalidArgument("--fit \(fit.rawValue) cannot be combined with --compensate (the fit's bias already keeps the mean)")
            }
        }
        guard ridge.isFinite, ridge >= 0 else { throw HARPError.invalidArgument("--ridge \(ridge) must be a finite value ≥ 0") }
        if meanCompensation, method != .harp {
            throw HARPError.invalidArgument("--compensate applies to --method harp only (\(method.rawValue) compensates in its own way or not at all)")
        }
    }
}

/// Progress of a pruning run: a phase name and its completed / total steps.
public typealias PruneProgress = (_ phase: String, _ done: Int, _ total: Int) -> Void

/// The pruned model and what the report says about it.
public struct PruneOutcome {
    public var model: Model
    public var report: PruneReport
}

/// Prunes a dense model with one method (and optionally FLAP on the MLPs), using the runtime's
/// forward pass for every statistic and every evaluation.
public struct Pruner {
    public let model: Model
    public let calibration: CalibrationSet
    public let options: PruneOptions
    public let pool: ComputePool

    public init(model: Model, calibration: CalibrationSet, options: PruneOptions, pool: ComputePool) throws {
        try options.validate(layers: model.config.layerCount)
        if options.meanCompensation, model.config.sandwichNorms {
            throw HARPError.invalidArgument("--compensate needs a model without a post-attention norm (\(model.config.architecture) has one)")
        }
        guard calibration.windowLength <= model.config.contextLength else {
            throw HARPError.invalidArgument("calibration windows of \(calibration.windowLength) tokens exceed the model's context of \(model.config.contextLength)")
        }
        self.model = model
        self.calibration = calibration
        self.options = options
        self.pool = pool
    }

    var searchedLayers: [Int] {
        let n = model.config.layerCount
        return Array((max(0, n - options.dropLast)..<n).reversed())
    }

    public func run(progress: PruneProgress = { _, _, _ in }) throws -> PruneOutcome {
        let clock = ContinuousClock()
        let started = clock.now
        var timings: [(String, Double)] = []
        func lap(_ name: String, since: ContinuousClock.Instant) {
            let d = clock.now - since
            timings.append((name, Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18))
        }

        var request = StatisticsRequest()
        request.ffnChannels = options.mlpRatio > 0
        switch options.method {
        case .harp where options.fit != .alpha:
            // The fits replay every position from the lowest pruned layer; the final score replays its scored rows.
            request.cachedInputs = Set(searchedLayers.suffix(1))
            request.cachedFullInputs = Set(searchedLayers.suffix(1))
        case .harp:
            request.cachedInputs = Set(searchedLayers)
            request.attentionChannels = options.meanCompensation
            request.attentionInputChannels = options.meanCompensation
        case .flapHeads, .wandaSP: request.attentionChannels = true
        case .magnitudeSP: break
        case .shortGPT: request.layerSimilarity = true
        }
        var phaseStart = clock.now
        let statistics = CalibrationStatistics(request: request, calibration: calibration)
        let dense = Transformer(model: model, pool: pool)
        let densePerplexity = try CalibrationPass.perplexity(dense, calibration: calibration, observer: statistics) {
            progress("dense calibration pass", $0, $1)
        }
        lap("dense calibration pass", since: phaseStart)

        phaseStart = clock.now
        var editor = ModelEditor(model, storageType: options.storageType)
        var alphas: [Int: Float] = [:]
        var searchPerplexities: [[Double]] = []
        var sweepPerplexities: [Double] = []
        var searchCost = (candidates: 0, layerPasses: 0)
        var removedLayers: [Int] = []
        var fitResiduals: [Int: Double] = [:]
        let layerCount = model.config.layerCount
        let share = options.budget ?? Double(options.dropLast) / Double(layerCount)
        switch options.method {
        case .harp where options.fit != .alpha:
            let bottomUp = Array(searchedLayers.reversed())
            if let bottom = bottomUp.first {
                guard let input = statistics.fullLayerInputs[bottom] else {
                    throw HARPError.invalidArgument("internal: no cached input for layer \(bottom)")
                }
                let fit = BlockFit(mode: options.fit, ridge: options.ridge, bias: options.fitBias, threads: pool.threadCount)
                let result = try BlockFitter(layers: bottomUp, fit: fit, pool: pool).run(editor, input: input, calibration: calibration) {
                    progress("fit \(options.fit.rawValue)", $0, $1)
                }
                editor = result.editor
                fitResiduals = Dictionary(uniqueKeysWithValues: zip(bottomUp, result.residuals))
                timings.append(("fit: statistics (replays)", result.statisticsSeconds))
                timings.append(("fit: solves", result.solveSeconds))
            }
            lap("fit", since: phaseStart)
        case .harp:
            var search = HARPSearch(layers: searchedLayers, grid: options.alphaGrid, pool: pool)
            search.refinementSweeps = options.refinementSweeps
            if options.meanCompensation {
                search.means = try Dictionary(uniqueKeysWithValues: searchedLayers.map { layer in
                    guard let attended = statistics.attentionMoments[layer], let normed = statistics.attentionInputMoments[layer] else {
                        throw HARPError.invalidArgument("internal: no attention statistics for layer \(layer)")
                    }
                    return (layer, try AttentionMeans(layer: model.weights.layers[layer], attended: attended.mean, normedInput: normed.mean))
                })
            }
            let rows = min(calibration.windows.count, options.searchWindows ?? .max) * calibration.scoredPositions.count
            let d = model.config.embeddingLength
            let inputs = statistics.layerInputs.mapValues { Array($0.prefix(rows * d)) }
            let result = try search.run(editor, inputs: inputs, targets: Array(calibration.scoredTargets.prefix(rows))) {
                progress("α search", $0, $1)
            }
            editor = result.editor
            for (layer, alpha) in zip(searchedLayers, result.alphas) { alphas[layer] = alpha }
            searchPerplexities = result.perplexities
            sweepPerplexities = result.sweepPerplexities
            searchCost = (result.candidates, result.layerPasses)
            lap("α search", since: phaseStart)
        case .flapHeads, .wandaSP, .magnitudeSP:
            let kvHeads = model.config.layers.reduce(0) { total, spec in
                if case .full(_, let kv, _) = spec.attention { return total + kv }
                return total
            }
            try HeadPruning.prune(&editor, score: options.method.headScore ?? .flap,
                                  groupsToRemove: Int((share * Double(kvHeads)).rounded()), moments: statistics.attentionMoments)
            lap("head pruning", since: phaseStart)
        case .shortGPT:
            removedLayers = try LayerRemoval.prune(&editor, layersToRemove: Int((share * Double(layerCount)).rounded()),
                                                   similarities: statistics.layerSimilarities)
            lap("layer removal", since: phaseStart)
        }
        if options.mlpRatio > 0 {
            phaseStart = clock.now
            try FLAPMLP.prune(&editor, moments: statistics.ffnMoments, ratio: options.mlpRatio)
            lap("FLAP MLP pruning", since: phaseStart)
        }
        let pruned = editor.build()

        phaseStart = clock.now
        let prunedPerplexity: Double
        if options.method == .harp, options.mlpRatio == 0, let bottom = searchedLayers.last, let input = statistics.layerInputs[bottom] {
            // Only the searched layers changed and they mix no tokens: replaying them from the cached
            // dense input over every scored row gives the full pass's perplexity, bit for bit.
            progress("pruned calibration pass", 0, 1)
            prunedPerplexity = try Replay.perplexity(pruned, from: bottom, input: input, targets: calibration.scoredTargets, pool: pool)
            progress("pruned calibration pass", 1, 1)
        } else {
            prunedPerplexity = try CalibrationPass.perplexity(Transformer(model: pruned, pool: pool), calibration: calibration) {
                progress("pruned calibration pass", $0, $1)
            }
        }
        lap("pruned calibration pass", since: phaseStart)
        lap("total", since: started)

        let report = PruneReport(method: options.method, options: options, source: model, pruned: pruned, calibration: calibration,
                                 alphas: alphas, alphaGrid: options.alphaGrid, searchPerplexities: searchPerplexities,
                                 sweepPerplexities: sweepPerplexities, searchCost: searchCost,
                                 searchedLayers: options.method == .harp ? searchedLayers : [], removedLayers: removedLayers,
                                 densePerplexity: densePerplexity, prunedPerplexity: prunedPerplexity, timings: timings,
                                 fitResiduals: fitResiduals)
        return PruneOutcome(model: pruned, report: report)
    }

    /// Metadata recording how a pruned file was made (`harp.alpha` per layer: 1 for untouched layers).
    public static func provenance(_ report: PruneReport) -> [(String, GGUFValue)] {
        var meta: [(String, GGUFValue)] = [
            ("harp.pruning.method", .string(report.method)),
            ("harp.pruning.source", .string(URL(fileURLWithPath: report.sourceModel).lastPathComponent)),
            ("harp.pruning.calibration", .string("\(URL(fileURLWithPath: report.calibrationSource).lastPathComponent): \(report.calibrationWindows) windows × \(report.calibrationWindowLength) tokens")),
        ]
        if report.method == PruneMethod.harp.rawValue, report.fit != FitMode.alpha.rawValue {
            meta.append(("harp.pruning.fit", .string(report.fit)))
            meta.append(("harp.pruning.ridge", .float32(Float(report.ridge))))
            meta.append(("harp.pruning.drop_last", .uint32(UInt32(report.searchedLayers.count))))
        } else if report.method == PruneMethod.harp.rawValue {
            meta.append(("harp.alpha", .array(report.layers.map { .float32($0.alpha ?? 1) })))
            meta.append(("harp.pruning.drop_last", .uint32(UInt32(report.searchedLayers.count))))
            if report.meanCompensation { meta.append(("harp.pruning.mean_compensation", .bool(true))) }
        }
        if report.mlpRatio > 0 { meta.append(("harp.pruning.mlp_ratio", .float32(report.mlpRatio))) }
        return meta
    }
}
