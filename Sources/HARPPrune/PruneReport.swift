import Foundation
import HARP

/// What a pruning run did, for the markdown and JSON reports.
public struct PruneReport: Codable, Sendable {
    public struct Layer: Codable, Sendable {
        public var index: Int
        public var attention: String
        public var heads: Int
        public var kvHeads: Int
        public var ffnWidth: Int
        /// HARP's α for searched layers.
        public var alpha: Float?
    }

    public struct Totals: Codable, Sendable {
        public var parameters: Int
        public var weightBytes: Int
        public var attentionParameters: Int
        public var mlpParameters: Int
        /// K and V bytes per token with an F16 cache.
        public var kvBytesPerToken: Int
        public var calibrationPerplexity: Double
    }

    public var method: String
    public var sourceModel: String
    public var calibrationSource: String
    public var calibrationWindows: Int
    public var calibrationWindowLength: Int
    public var mlpRatio: Float
    /// HARP: pruned blocks keep their calibration mean output in the output bias (`--compensate`).
    public var meanCompensation: Bool
    /// HARP: `alpha` (the paper's search) or the closed-form fit of the pruned blocks (`--fit`).
    public var fit: String
    public var ridge: Double
    public var fitBias: Bool
    /// Block fits: relative residual E‖y − ŷ‖² / E‖y‖² per fitted layer, top first (with `searchedLayers`).
    public var fitResiduals: [Double]
    /// Windows the α search scored.
    public var searchWindows: Int
    public var alphaGrid: [Float]
    /// Searched layers, top first, and the calibration perplexity of each grid value.
    public var searchedLayers: [Int]
    public var searchPerplexities: [[Double]]
    /// Calibration perplexity of the searched windows after the greedy pass and after each refinement sweep.
    public var sweepPerplexities: [Double]
    /// Candidate models the α search scored, and the decoder-layer passes over the searched rows they took.
    public var searchCandidates: Int
    public var searchLayerPasses: Int
    public var removedLayers: [Int]
    public var layers: [Layer]
    public var before: Totals
    public var after: Totals
    /// Seconds per phase, in order, the last being the total.
    public var timings: [String: Double]
    public var phases: [String]

    init(method: PruneMethod, options: PruneOptions, source: Model, pruned: Model, calibration: CalibrationSet,
         alphas: [Int: Float], alphaGrid: [Float], searchPerplexities: [[Double]], sweepPerplexities: [Double], searchCost: (candidates: Int, layerPasses: Int), searchedLayers: [Int], removedLayers: [Int],
         densePerplexity: Double, prunedPerplexity: Double, timings: [(String, Double)], fitResiduals: [Int: Double] = [:]) {
        self.method = method.rawValue
        sourceModel = source.path
        calibrationSource = calibration.source
        calibrationWindows = calibration.windows.count
        calibrationWindowLength = calibration.windowLength
        mlpRatio = options.mlpRatio
        meanCompensation = options.meanCompensation
        fit = options.fit.rawValue
        ridge = options.ridge
        fitBias = options.fitBias
        self.fitResiduals = searchedLayers.compactMap { fitResiduals[$0] }
        searchWindows = min(calibration.windows.count, options.searchWindows ?? .max)
        self.alphaGrid = alphaGrid
        self.searchedLayers = searchedLayers
        self.searchPerplexities = searchPerplexities
        self.sweepPerplexities = sweepPerplexities
        searchCandidates = searchCost.candidates
        searchLayerPasses = searchCost.layerPasses
        self.removedLayers = removedLayers
        layers = pruned.config.layers.enumerated().map { index, spec in
            let (heads, kvHeads): (Int, Int)
            switch spec.attention {
            case .full(let h, let kv, _): (heads, kvHeads) = (h, kv)
            case .valueOnly(let kv, _): (heads, kvHeads) = (0, kv)
            case .linear, .none: (heads, kvHeads) = (0, 0)
            }
            return Layer(index: index, attention: spec.attention.name, heads: heads, kvHeads: kvHeads,
                         ffnWidth: spec.ffnWidth, alpha: alphas[index])
        }
        before = Self.totals(source, perplexity: densePerplexity)
        after = Self.totals(pruned, perplexity: prunedPerplexity)
        self.timings = Dictionary(timings, uniquingKeysWith: { $1 })
        phases = timings.map(\.0)
    }

    static func totals(_ model: Model, perplexity: Double) -> Totals {
        let s = ModelSummary(model)
        return Totals(parameters: s.parameters, weightBytes: s.weightBytes, attentionParameters: s.attentionParameters,
                      mlpParameters: s.mlpParameters, kvBytesPerToken: model.config.kvBytesPerToken(elementBytes: 2),
                      calibrationPerplexity: perplexity)
    }

    /// α per searched layer, top layer first (the order the paper lists them).
    public var alphasTopFirst: [Float] { searchedLayers.compactMap { l in layers.first { $0.index == l }?.alpha ?? 0 } }

    /// The report as JSON. A figure that is not finite (a diverged perplexity) is written as
    /// `null`: JSON has no infinity, and the encoder would otherwise throw after the whole run.
    public func json() throws -> Data {
        let marker = "\u{0}non-finite"  // no path or method name contains NUL
        let encoder = JSONEncoder()
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: marker, negativeInfinity: marker, nan: marker)
        let tree = try JSONSerialization.jsonObject(with: encoder.encode(self))
        func nullifying(_ value: Any) -> Any {
            switch value {
            case let s as String: return s == marker ? NSNull() : s
            case let a as [Any]: return a.map(nullifying)
            case let d as [String: Any]: return d.mapValues(nullifying)
            default: return value
            }
        }
        return try JSONSerialization.data(withJSONObject: nullifying(tree), options: [.prettyPrinted, .sortedKeys])
    }

    public var markdown: String {
        func mib(_ bytes: Int) -> String { String(format: "%.2f MiB", Double(bytes) / 1_048_576) }
        func millions(_ n: Int) -> String { String(format: "%.2f M", Double(n) / 1e6) }
        func change(_ a: Int, _ b: Int) -> String { a == 0 ? "" : String(format: " (%.1f%%)", 100 * Double(b) / Double(a)) }
        var lines = ["# harp-prune report: \(method)", "",
                     "- source: `\(sourceModel)`",
                     "- calibration: `\(calibrationSource)`, \(calibrationWindows) windows × \(calibrationWindowLength) tokens "
                     + "(perplexity over the second half of each window)"]
        if mlpRatio > 0 { lines.append("- FLAP MLP ratio: \(mlpRatio)") }
        if fit != FitMode.alpha.rawValue {
            lines.append("- fit: \(fit) (closed form, bottom-up on the pruned model's own inputs), relative ridge \(ridge), "
                         + (fitBias ? "with" : "without") + " a fitted constant")
            lines.append("- relative residual E‖y − ŷ‖²/E‖y‖² (layers \(searchedLayers.map(String.init).joined(separator: ", "))): "
                         + fitResiduals.map { String(format: "%.4f", $0) }.joined(separator: ", "))
        } else if !searchedLayers.isEmpty {
            lines.append("- α search: the first \(searchWindows) windows, grid \(alphaGrid.map { String(format: "%.2g", $0) }.joined(separator: ", "))")
            lines.append("- α (top layer first, layers \(searchedLayers.map(String.init).joined(separator: ", "))): "
                         + "[\(alphasTopFirst.map { String(format: "%g", $0) }.joined(separator: ", "))]")
            lines.append("- α search cost: \(searchCandidates) candidates, each the LM head plus the layers from the searched one up "
                         + "(\(searchLayerPasses) layer passes in all)")
            if sweepPerplexities.count > 1 {
                lines.append("- searched-window perplexity after the greedy pass, then after each refinement sweep: "
                             + sweepPerplexities.map { String(format: "%.3f", $0) }.joined(separator: " → "))
            }
        }
        if meanCompensation {
            lines.append("- mean compensation (not in the HARP paper): each pruned block's output bias keeps the dense block's mean output over the calibration tokens")
        }
        if !removedLayers.isEmpty { lines.append("- removed layers: \(removedLayers.map(String.init).joined(separator: ", "))") }
        lines += ["", "| | before | after |", "|---|---|---|",
                  "| parameters | \(millions(before.parameters)) | \(millions(after.parameters))\(change(before.parameters, after.parameters)) |",
                  "| attention parameters | \(millions(before.attentionParameters)) | \(millions(after.attentionParameters))\(change(before.attentionParameters, after.attentionParameters)) |",
                  "| MLP parameters | \(millions(before.mlpParameters)) | \(millions(after.mlpParameters))\(change(before.mlpParameters, after.mlpParameters)) |",
                  "| weight bytes | \(mib(before.weightBytes)) | \(mib(after.weightBytes))\(change(before.weightBytes, after.weightBytes)) |",
                  "| KV bytes per token (F16) | \(before.kvBytesPerToken) | \(after.kvBytesPerToken)\(change(before.kvBytesPerToken, after.kvBytesPerToken)) |",
                  String(format: "| calibration perplexity | %.4f | %.4f |", before.calibrationPerplexity, after.calibrationPerplexity),
                  "", "| layer | attention | heads | KV heads | FFN | α |", "|---|---|---|---|---|---|"]
        for l in layers {
            lines.append("| \(l.index) | \(l.attention) | \(l.heads) | \(l.kvHeads) | \(l.ffnWidth) | \(l.alpha.map { String(format: "%g", $0) } ?? "") |")
        }
        if !searchedLayers.isEmpty, fit == FitMode.alpha.rawValue {
            lines += ["", "α search (calibration perplexity per grid value):", "",
                      "| layer | " + alphaGrid.map { String(format: "%.2g", $0) }.joined(separator: " | ") + " |",
                      "|---|" + String(repeating: "---|", count: alphaGrid.count)]
            for (layer, row) in zip(searchedLayers, searchPerplexities) {
                lines.append("| \(layer) | " + row.map { String(format: "%.3f", $0) }.joined(separator: " | ") + " |")
            }
        }
        lines += ["", "| phase | seconds |", "|---|---|"]
        for p in phases { lines.append("| \(p) | " + String(format: "%.1f |", timings[p] ?? 0)) }
        return lines.joined(separator: "\n") + "\n"
    }
}
