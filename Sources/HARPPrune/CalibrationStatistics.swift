import HARP

/// What a pruning method needs from the dense calibration pass.
public struct StatisticsRequest: Sendable, Equatable {
    /// Layers whose input residual stream is cached at the scored rows (the HARP α search).
    public var cachedInputs: Set<Int> = []
    /// Layers whose input residual stream is cached at every position (the block fits' replays).
    public var cachedFullInputs: Set<Int> = []
    /// Per-channel mean and variance of the MLP down-projection input (FLAP).
    public var ffnChannels = false
    /// Per-channel mean, variance and mean square of the attention output-projection input (head pruning).
    public var attentionChannels = false
    /// Mean cosine similarity between each layer's input and output (ShortGPT's block influence).
    public var layerSimilarity = false
    /// Per-channel moments of each attention block's normed input (HARP's mean compensation).
    public var attentionInputChannels = false

    public init() {}
}

/// Mean and variance of each channel of an activation, accumulated over tokens.
public struct ChannelMoments: Sendable {
    public private(set) var sum: [Double]
    public private(set) var sumOfSquares: [Double]
    public private(set) var count = 0

    init(channels: Int) {
        sum = Array(repeating: 0, count: channels)
        sumOfSquares = Array(repeating: 0, count: channels)
    }

    mutating func add(_ x: UnsafeBufferPointer<Float>, rows: Int) {
        let n = sum.count
        guard let base = x.baseAddress, x.count >= rows * n else { return }
        sum.withUnsafeMutableBufferPointer { s in
            sumOfSquares.withUnsafeMutableBufferPointer { q in
                for r in 0..<rows {
                    let row = base + r * n
                    for j in 0..<n {
                        let v = Double(row[j])
                        s[j] += v
                        q[j] += v * v
                    }
                }
            }
        }
        count += rows
    }

    public var mean: [Float] { sum.map { Float($0 / Double(max(count, 1))) } }
    public var meanSquare: [Float] { sumOfSquares.map { Float($0 / Double(max(count, 1))) } }
    /// Population variance (FLAP's "fluctuation").
    public var variance: [Float] {
        let n = Double(max(count, 1))
        return zip(sum, sumOfSquares).map { s, q in Float(max(0, q / n - (s / n) * (s / n))) }
    }
}

/// Collects a `StatisticsRequest` from the forward pass of `CalibrationPass` (rows arrive
/// window-major, windows in calibration order).
final class CalibrationStatistics: ForwardObserver {
    let request: StatisticsRequest
    private let windowLength: Int
    private let scoredPositions: Range<Int>
    /// Scored rows of each cached layer's input (scoredRowCount × d, row-major).
    private(set) var layerInputs: [Int: [Float]] = [:]
    /// Every row of each `cachedFullInputs` layer's input (tokenCount × d, window-major).
    private(set) var fullLayerInputs: [Int: [Float]] = [:]
    private(set) var ffnMoments: [Int: ChannelMoments] = [:]
    private(set) var attentionMoments: [Int: ChannelMoments] = [:]
    private(set) var attentionInputMoments: [Int: ChannelMoments] = [:]
    private var similaritySum: [Int: Double] = [:]
    private var similarityCount: [Int: Int] = [:]
    private var pendingInput: [Float] = []

    init(request: StatisticsRequest, calibration: CalibrationSet) {
        self.request = request
        windowLength = calibration.windowLength
        scoredPositions = calibration.scoredPositions
    }

    /// Mean cosine similarity of each layer's output with its input, nil when not requested.
    var layerSimilarities: [Int: Double] {
        similaritySum.reduce(into: [:]) { $0[$1.key] = $1.value / Double(max(similarityCount[$1.key] ?? 1, 1)) }
    }

    func layerInput(_ layer: Int, hidden: UnsafeBufferPointer<Float>, rows: Int) {
        if request.cachedInputs.contains(layer) {
            let d = hidden.count / rows
            for row in 0..<rows where scoredPositions.contains(row % windowLength) {
                layerInputs[layer, default: []].append(contentsOf: hidden[(row * d)..<((row + 1) * d)])
            }
        }
        if request.cachedFullInputs.contains(layer) { fullLayerInputs[layer, default: []].append(contentsOf: hidden) }
        if request.layerSimilarity { pendingInput = Array(hidden) }
    }

    func layerOutput(_ layer: Int, hidden: UnsafeBufferPointer<Float>, rows: Int) {
        guard request.layerSimilarity, pendingInput.count == hidden.count else { return }
        let d = hidden.count / rows
        var total = 0.0
        for row in 0..<rows {
            var dot = 0.0, inNorm = 0.0, outNorm = 0.0
            for j in (row * d)..<((row + 1) * d) {
                let a = Double(pendingInput[j]), b = Double(hidden[j])
                dot += a * b
                inNorm += a * a
                outNorm += b * b
            }
            total += dot / max((inNorm * outNorm).squareRoot(), 1e-30)
        }
        similaritySum[layer, default: 0] += total
        similarityCount[layer, default: 0] += rows
    }

    func attentionInput(_ layer: Int, normed: UnsafeBufferPointer<Float>, rows: Int) {
        guard request.attentionInputChannels else { return }
        attentionInputMoments[layer, default: ChannelMoments(channels: normed.count / rows)].add(normed, rows: rows)
    }

    func attentionValues(_ layer: Int, attended: UnsafeBufferPointer<Float>, rows: Int) {
        guard request.attentionChannels else { return }
        attentionMoments[layer, default: ChannelMoments(channels: attended.count / rows)].add(attended, rows: rows)
    }

    func ffnHidden(_ layer: Int, hidden: UnsafeBufferPointer<Float>, rows: Int) {
        guard request.ffnChannels else { return }
        ffnMoments[layer, default: ChannelMoments(channels: hidden.count / rows)].add(hidden, rows: rows)
    }
}
