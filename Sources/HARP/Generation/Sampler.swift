import Foundation

/// How the next token is chosen. The defaults are llama.cpp's.
public struct SamplingParameters: Sendable, Equatable {
    /// 0 (or less) means greedy: always the most likely token.
    public var temperature: Float = 0.8
    /// Keep the k most likely tokens (0: all).
    public var topK: Int = 40
    /// Keep the smallest set of tokens whose probability sums to at least p (1: all).
    public var topP: Float = 0.95
    /// Drop tokens less likely than minP × the most likely one (0: off).
    public var minP: Float = 0.05
    /// Divide positive logits (multiply negative ones) of recently seen tokens (1: off).
    public var repetitionPenalty: Float = 1
    /// Subtract frequencyPenalty × count and presencePenalty once for recently seen tokens.
    public var frequencyPenalty: Float = 0
    public var presencePenalty: Float = 0
    /// How many recent tokens the penalties look at.
    public var penaltyWindow: Int = 64
    public var seed: UInt64 = 0

    public init() {}

    public static var greedy: SamplingParameters {
        var p = SamplingParameters()
        p.temperature = 0
        return p
    }

    /// Checks the values, naming the first one out of range.
    public func validate() throws {
        guard temperature.isFinite else { throw HARPError.invalidArgument("temperature must be finite") }
        guard topK >= 0 else { throw HARPError.invalidArgument("top-k must be >= 0, got \(topK)") }
        guard topP > 0, topP <= 1 else { throw HARPError.invalidArgument("top-p must be in (0, 1], got \(topP)") }
        guard minP >= 0, minP < 1 else { throw HARPError.invalidArgument("min-p must be in [0, 1), got \(minP)") }
        guard repetitionPenalty > 0, repetitionPenalty.isFinite else {
            throw HARPError.invalidArgument("repetition penalty must be > 0, got \(repetitionPenalty)")
        }
        guard frequencyPenalty.isFinite, presencePenalty.isFinite else { throw HARPError.invalidArgument("penalties must be finite") }
        guard penaltyWindow >= 0 else { throw HARPError.invalidArgument("penalty window must be >= 0") }
    }
}

/// The sampler chain: penalties → top-k → top-p → min-p → temperature → draw. Deterministic for
/// a given seed and input. One per sequence (it remembers the sequence's recent tokens).
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var rng: SplitMix64
    private var recent: [Int32] = []

    public init(_ parameters: SamplingParameters) {
        self.parameters = parameters
        rng = SplitMix64(seed: parameters.seed)
    }

    /// Records tokens that count for the penalties (the prompt, then each generated token).
    public mutating func observe<S: Sequence>(_ tokens: S) where S.Element == Int32 {
        recent.append(contentsOf: tokens)
        if recent.count > parameters.penaltyWindow { recent.removeFirst(recent.count - parameters.penaltyWindow) }
    }

    /// Picks the next token from one row of logits, and records it.
    public mutating func sample(_ logits: ArraySlice<Float>) -> Int32 {
        let token: Int32
        if parameters.temperature <= 0 {
            token = Sampler.argmax(penalized(logits))
        } else {
            token = draw(from: distribution(logits))
        }
        observe([token])
        return token
    }

    public mutating func sample(_ logits: [Float]) -> Int32 { sample(logits[...]) }

    /// The distribution the next draw picks from: penalties, top-k, top-p and min-p applied,
    /// then temperature; most likely first, probabilities summing to 1. Greedy parameters give
    /// the single most likely token.
    public func distribution(_ logits: ArraySlice<Float>) -> [TokenProbability] {
        let adjusted = penalized(logits)
        let p = parameters
        guard p.temperature > 0 else {
            return adjusted.isEmpty ? [] : [TokenProbability(token: Sampler.argmax(adjusted), probability: 1)]
        }
        // Candidates sorted by logit, cut to top-k first so later steps sort little.
        var ids = Array(0..<adjusted.count)
        let k = p.topK > 0 ? min(p.topK, ids.count) : ids.count
        if k < ids.count {
            ids = Sampler.largest(k, of: adjusted)
        } else {
            ids.sort { adjusted[$0] > adjusted[$1] || (adjusted[$0] == adjusted[$1] && $0 < $1) }
        }
        guard let top = ids.first else { return [] }
        // Probabilities at temperature 1 decide top-p and min-p (as llama.cpp does).
        let maxLogit = adjusted[top]
        var probs = ids.map { expf(adjusted[$0] - maxLogit) }
        let total = probs.reduce(0, +)
        for i in probs.indices { probs[i] /= total }
        var keep = probs.count
        if p.topP < 1 {
            var cumulative: Float = 0
            for (i, prob) in probs.enumerated() {
                cumulative += prob
                if cumulative >= p.topP { keep = i + 1; break }
            }
        }
        if p.minP > 0 {
            let threshold = p.minP * probs[0]
            keep = min(keep, max(1, probs.prefix(keep).firstIndex { $0 < threshold } ?? keep))
        }
        ids.removeSubrange(keep...)
        // Temperature, then renormalise over the survivors.
        let weights = ids.map { expf((adjusted[$0] - maxLogit) / p.temperature) }
        let sum = weights.reduce(0, +)
        return zip(ids, weights).map { TokenProbability(token: Int32($0), probability: $1 / sum) }
    }

    /// The index of the largest value (the first one on ties), as llama.cpp's greedy sampler picks.
    /// Concrete (not generic over Collection) so callers in other modules get the fast loop.
    public static func argmax(_ values: ArraySlice<Float>) -> Int32 {
        values.withUnsafeBufferPointer { buffer in
            var best = 0
            var bestValue = -Float.infinity
            for i in buffer.indices where buffer[i] > bestValue {
                bestValue = buffer[i]
                best = i
            }
            return Int32(best)
        }
    }

    public static func argmax(_ values: [Float]) -> Int32 { argmax(values[...]) }

    private func penalized(_ logits: ArraySlice<Float>) -> [Float] {
        var out = Array(logits)
        let p = parameters
        guard !recent.isEmpty, p.repetitionPenalty != 1 || p.frequencyPenalty != 0 || p.presencePenalty != 0 else { return out }
        var counts: [Int32: Int] = [:]
        for t in recent { counts[t, default: 0] += 1 }
        for (token, count) in counts where token >= 0 && Int(token) < out.count {
            let i = Int(token)
            if p.repetitionPenalty != 1 {
                out[i] = out[i] > 0 ? out[i] / p.repetitionPenalty : out[i] * p.repetitionPenalty
            }
            out[i] -= Float(count) * p.frequencyPenalty + p.presencePenalty
        }
        return out
    }

    /// One draw from a distribution (cumulative probabilities against a uniform number).
    private mutating func draw(from candidates: [TokenProbability]) -> Int32 {
        var u = Float(rng.nextDouble())
        for candidate in candidates {
            u -= candidate.probability
            if u <= 0 { return candidate.token }
        }
        return candidates.last?.token ?? 0
    }

    /// Indices of the k largest values, largest first.
    static func largest(_ k: Int, of values: [Float]) -> [Int] {
        // A bounded selection keeps this O(n log k) for big vocabularies.
        var heap: [Int] = []  // min-heap by value of the kept indices
        heap.reserveCapacity(k + 1)
        func less(_ a: Int, _ b: Int) -> Bool { values[a] < values[b] || (values[a] == values[b] && a > b) }
        func siftUp(_ i: Int) {
            var c = i
            while c > 0 { let p = (c - 1) / 2; if less(heap[c], heap[p]) { heap.swapAt(c, p); c = p } else { break } }
        }
        func siftDown(_ i: Int) {
            var p = i
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < heap.count && less(heap[l], heap[m]) { m = l }
                if r < heap.count && less(heap[r], heap[m]) { m = r }
                if m == p { return }
                heap.swapAt(p, m); p = m
            }
        }
        for i in values.indices {
            if heap.count < k { heap.append(i); siftUp(heap.count - 1) }
            else if let root = heap.first, less(root, i) { heap[0] = i; siftDown(0) }
        }
        return heap.sorted { less($1, $0) }
    }
}

/// A candidate next token and its probability after the sampler chain.
public struct TokenProbability: Sendable, Equatable {
    public var token: Int32
    public var probability: Float
}

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same draws everywhere
/// (sampling, calibration windows, test data).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
