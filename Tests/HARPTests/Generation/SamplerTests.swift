import Foundation
import Testing
@testable import HARP

/// The sampler chain on fixed logits, against a direct Double-precision reading of its specification.
@Suite("Sampler")
struct SamplerTests {
    /// Fixed logits with distinct values, some negative (the repetition penalty treats signs differently).
    static let logits: [Float] = [1.5, -0.3, 3.2, 0.7, 2.9, -1.8, 0.0, 2.2, 1.1, -0.9, 2.6, 0.4]

    /// The specification: penalties → top-k → top-p → min-p (on probabilities at temperature 1)
    /// → temperature → renormalise. Returns token → probability.
    static func reference(_ logits: [Float], _ p: SamplingParameters, recent: [Int32] = []) -> [Int32: Double] {
        var x = logits.map(Double.init)
        var counts: [Int32: Int] = [:]
        for t in recent.suffix(p.penaltyWindow) { counts[t, default: 0] += 1 }
        for (t, c) in counts {
            let i = Int(t)
            if x[i] > 0 { x[i] /= Double(p.repetitionPenalty) } else { x[i] *= Double(p.repetitionPenalty) }
            x[i] -= Double(c) * Double(p.frequencyPenalty) + Double(p.presencePenalty)
        }
        var order = x.indices.sorted { x[$0] > x[$1] }
        if p.topK > 0 { order = Array(order.prefix(p.topK)) }
        let z = order.map { exp(x[$0]) }.reduce(0, +)
        let probs = order.map { exp(x[$0]) / z }
        var keep = order.count
        if p.topP < 1 {
            var sum = 0.0
            keep = (probs.firstIndex { sum += $0; return sum >= Double(p.topP) } ?? order.count - 1) + 1
        }
        keep = min(keep, probs.prefix(keep).filter { $0 >= Double(p.minP) * probs[0] }.count)
        let kept = order.prefix(max(keep, 1))
        let w = kept.map { exp(x[$0] / Double(p.temperature)) }
        let total = w.reduce(0, +)
        return Dictionary(uniqueKeysWithValues: zip(kept.map { Int32($0) }, w.map { $0 / total }))
    }

    static func expectMatchesReference(_ p: SamplingParameters, recent: [Int32] = [], _ comment: Comment) {
        var sampler = Sampler(p)
        sampler.observe(recent)
        let got = sampler.distribution(logits[...])
        let expected = reference(logits, p, recent: recent)
        #expect(Set(got.map(\.token)) == Set(expected.keys), comment)
        for c in got { #expect(abs(Double(c.probability) - (expected[c.token] ?? -1)) < 1e-5, comment) }
        #expect(zip(got, got.dropFirst()).allSatisfy { $0.probability >= $1.probability }, "most likely first")
    }

    static func parameters(temperature: Float = 1, topK: Int = 0, topP: Float = 1, minP: Float = 0) -> SamplingParameters {
        var p = SamplingParameters()
        p.temperature = temperature
        p.topK = topK
        p.topP = topP
        p.minP = minP
        return p
    }

    @Test("each stage alone and the default chain match the specification")
    func stagesMatchSpecification() {
        Self.expectMatchesReference(Self.parameters(), "no truncation")
        Self.expectMatchesReference(Self.parameters(topK: 3), "top-k 3")
        Self.expectMatchesReference(Self.parameters(topP: 0.6), "top-p 0.6")
        Self.expectMatchesReference(Self.parameters(topP: 0.01), "top-p keeps at least one")
        Self.expectMatchesReference(Self.parameters(minP: 0.3), "min-p 0.3")
        Self.expectMatchesReference(Self.parameters(temperature: 0.5, topK: 5, topP: 0.9, minP: 0.1), "chain at T=0.5")
        Self.expectMatchesReference(Self.parameters(temperature: 2), "T=2 flattens")
        Self.expectMatchesReference(SamplingParameters(), "llama.cpp defaults")
    }

    @Test("repetition, frequency and presence penalties act on recent tokens only")
    func penalties() {
        var p = Self.parameters()
        p.repetitionPenalty = 1.3
        p.frequencyPenalty = 0.4
        p.presencePenalty = 0.25
        p.penaltyWindow = 4
        // Tokens 2 (positive logit, seen twice), 5 (negative) and 7 count; 4 is outside the window.
        Self.expectMatchesReference(p, recent: [4, 2, 5, 2, 7], "penalties with a window of 4")
        var sampler = Sampler(p)
        sampler.observe([4, 2, 5, 2, 7])
        let probabilities = Dictionary(uniqueKeysWithValues: sampler.distribution(Self.logits[...]).map { ($0.token, $0.probability) })
        let plain = Dictionary(uniqueKeysWithValues: Sampler(Self.parameters()).distribution(Self.logits[...]).map { ($0.token, $0.probability) })
        #expect((probabilities[2] ?? 1) < (plain[2] ?? 0), "a repeated token becomes less likely")
        #expect((probabilities[4] ?? 0) > (plain[4] ?? 1), "a token outside the window gains from the others' penalty")
    }

    @Test("greedy picks the largest logit after penalties, the first one on ties")
    func greedy() {
        var sampler = Sampler(.greedy)
        #expect(sampler.sample(Self.logits) == 2)
        #expect(sampler.sample([0.5, 2, 2, 1]) == 1)
        var penalized = SamplingParameters.greedy
        penalized.repetitionPenalty = 1.2  // 3.2 / 1.2 < 2.9: token 4 wins once token 2 was seen
        var withPenalty = Sampler(penalized)
        withPenalty.observe([2])
        #expect(withPenalty.sample(Self.logits) == 4)
    }

    @Test("the same seed gives the same tokens; another seed gives others")
    func seeding() {
        var p = Self.parameters(temperature: 1.5)
        p.seed = 42
        func run(_ p: SamplingParameters) -> [Int32] {
            var sampler = Sampler(p)
            return (0..<200).map { i in sampler.sample(Self.logits.map { $0 + Float(i % 3) * 0.1 }) }
        }
        #expect(run(p) == run(p))
        var other = p
        other.seed = 43
        #expect(run(p) != run(other))
    }

    @Test("draws follow the distribution")
    func drawFrequencies() {
        var p = Self.parameters(temperature: 0.8, topK: 6, topP: 0.95)
        p.seed = 7
        var sampler = Sampler(p)
        let expected = sampler.distribution(Self.logits[...])
        let draws = 40_000
        var counts: [Int32: Int] = [:]
        for _ in 0..<draws { counts[sampler.sample(Self.logits), default: 0] += 1 }
        #expect(Set(counts.keys).isSubset(of: Set(expected.map(\.token))), "only candidates are drawn")
        for c in expected {
            let frequency = Double(counts[c.token] ?? 0) / Double(draws)
            // 5 standard deviations of a binomial proportion.
            let tolerance = 5 * (Double(c.probability) * (1 - Double(c.probability)) / Double(draws)).squareRoot() + 1e-3
            #expect(abs(frequency - Double(c.probability)) < tolerance, "token \(c.token)")
        }
    }

    @Test("out-of-range parameters are rejected, naming the value")
    func validation() {
        var p = SamplingParameters()
        p.topP = 0
        #expect(throws: HARPError.invalidArgument("top-p must be in (0, 1], got 0.0")) { try p.validate() }
        p = SamplingParameters()
        p.minP = 1
        #expect(throws: HARPError.self) { try p.validate() }
        p = SamplingParameters()
        p.topK = -1
        #expect(throws: HARPError.self) { try p.validate() }
    }
}
