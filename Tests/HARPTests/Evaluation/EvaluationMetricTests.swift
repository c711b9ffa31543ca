import Foundation
import Testing
@testable import HARP

/// Metric definitions on hand-made cases whose answers are worked out in the comments.
@Suite("Evaluation metrics")
struct EvaluationMetricTests {
    /// Scores with the given per-token log-probabilities from token index `first`.
    private func scores(_ first: Int, _ logProbs: [Double], greedy: [Bool]? = nil) -> TokenScores {
        TokenScores(first: first, logProbs: logProbs, greedy: greedy ?? logProbs.map { _ in false })
    }

    @Test("2-item multiple choice: acc by log-likelihood, acc_norm by bytes, llama.cpp's mean per token")
    func twoItems() {
        // Item 1: context [1, 2], choice 0 = 1 token (3 bytes), choice 1 = 4 tokens (10 bytes).
        // log L: choice 0 = −2, choice 1 = −1−1−0.5−0.5 = −3 → acc picks 0.
        // per byte: −2/3 = −0.667 vs −3/10 = −0.3 → acc_norm picks 1.
        // per token (llama.cpp, after the common prefix [1, 2]): −2 vs −0.75 → picks 1.
        let item1 = TokenizedChoices(sequences: [[1, 2, 10], [1, 2, 11, 12, 13, 14]], contextTokens: [2, 2],
                                     continuationBytes: [3, 10], gold: 1)
        let d1 = ChoiceDecision(item1, scores: [scores(2, [-2]), scores(2, [-1, -1, -0.5, -0.5])], rule: .hellaSwag)
        #expect(d1.logLikelihoods == [-2, -3])
        #expect(d1.correct == false && d1.correctNormalized == true && d1.correctLlamaCpp == true)
        // Item 2: two one-token choices, −0.1 (gold) vs −2.3: every rule picks the gold.
        let item2 = TokenizedChoices(sequences: [[5, 6], [5, 7]], contextTokens: [1, 1], continuationBytes: [4, 4], gold: 0)
        let d2 = ChoiceDecision(item2, scores: [scores(1, [-0.1]), scores(1, [-2.3])], rule: .hellaSwag)
        #expect(d2.correct && d2.correctNormalized && d2.correctLlamaCpp == true)
        // acc = 1/2 with lm-eval's standard error sqrt(p(1−p)/(n−1)) = 0.5; acc_norm = 2/2.
        let acc = Statistics.accuracy("acc", [d1.correct, d2.correct])
        #expect(acc.value == 0.5 && acc.standardError == 0.5)
        #expect(Statistics.accuracy("acc_norm", [d1.correctNormalized, d2.correctNormalized]).value == 1)
    }

    @Test("llama.cpp's HellaSwag span starts at the common token prefix, not at the context")
    func hellaSwagSpan() {
        // Both endings start with token 9: the common prefix is 3 tokens although the context has 2.
        let item = TokenizedChoices(sequences: [[1, 2, 9, 4], [1, 2, 9, 5, 6]], contextTokens: [2, 2], continuationBytes: [5, 7], gold: 0)
        #expect(item.commonPrefix == 3)
        #expect(item.llamaCppSpans(.hellaSwag) == [3..<4, 3..<5])
        // Token 9 counts for lm-eval (−1 each) but not for llama.cpp: −0.2 vs mean(−0.1, −0.5) = −0.3.
        let d = ChoiceDecision(item, scores: [scores(2, [-1, -0.2]), scores(2, [-1, -0.1, -0.5])], rule: .hellaSwag)
        #expect(d.logLikelihoods == [-1.2, -1.6])
        #expect(d.llamaCpp == [-0.2, -0.3])
    }

    @Test("llama.cpp's Winogrande spans: after context+option without the last token, or after the common prefix")
    func winograndeSpans() {
        // Long tails (> 3 tokens after the common prefix [1]): score after each context, drop the last token.
        let long = TokenizedChoices(sequences: [[1, 20, 3, 4, 5, 6], [1, 21, 22, 3, 4, 5, 6]], contextTokens: [2, 3],
                                    continuationBytes: [9, 9], gold: 0)
        #expect(long.llamaCppSpans(.winogrande) == [2..<5, 3..<6])
        // A short tail (≤ 3 tokens after the common prefix): score from the common prefix, still without the last token.
        let short = TokenizedChoices(sequences: [[1, 2, 20, 7], [1, 2, 21, 7]], contextTokens: [3, 3], continuationBytes: [2, 2], gold: 1)
        #expect(short.llamaCppSpans(.winogrande) == [2..<3, 2..<3])
    }

    @Test("answer normalisation: SQuAD's for NQ-open, numbers for GSM8K")
    func normalisation() {
        #expect(AnswerNormalization.squad("The Beatles!") == "beatles")
        #expect(AnswerNormalization.squad("  an  Apple, a day ") == "apple day")
        #expect(AnswerNormalization.squad("14 December 1972 UTC") == AnswerNormalization.squad("14 december, 1972 utc."))
        #expect(AnswerNormalization.number("$1,000.") == "1000")
        #expect(AnswerNormalization.lastNumber(in: "She pays 3 * $2 = $6.\nSo 6 + 12 = 18 dollars.") == "18")
        #expect(AnswerNormalization.lastNumber(in: "no digits") == nil)
        #expect(AnswerNormalization.strictNumber(in: "so 5\n#### 1,234\n") == "1,234")
        #expect(AnswerNormalization.strictNumber(in: "the answer is 5") == nil)
        #expect(GenerationTasks.firstStop(in: "42\nQuestion: next", stops: ["Question:", "\n"]) == "42\nQuestion: next".firstIndex(of: "\n"))
    }

    @Test("KL divergence of top-k + tail computed by hand")
    func klByHand() {
        // P over {a, b, tail} = (0.5, 0.3, 0.2), Q = (0.4, 0.4, 0.2):
        // KL = 0.5 ln(0.5/0.4) + 0.3 ln(0.3/0.4) + 0.2 ln(1) = 0.111572 − 0.086305 = 0.025267.
        let p: [Float] = [log(0.5), log(0.3)], q: [Float] = [log(0.4), log(0.4)]
        let expected = 0.5 * log(0.5 / 0.4) + 0.3 * log(0.3 / 0.4)
        #expect(abs(KLDivergence.divergence(baseLogProbs: p[...], modelLogProbs: q) - expected) < 1e-6)
        // The same distribution gives exactly 0.
        #expect(KLDivergence.divergence(baseLogProbs: p[...], modelLogProbs: p) == 0)
        // A tail Q gives less mass to adds 0.2 ln(0.2/0.1): Q = (0.5, 0.4, 0.1).
        let q2: [Float] = [log(0.5), log(0.4)]
        let expected2 = 0.3 * log(0.3 / 0.4) + 0.2 * log(0.2 / 0.1)
        #expect(abs(KLDivergence.divergence(baseLogProbs: p[...], modelLogProbs: q2) - expected2) < 1e-6)
    }

    @Test("llama.cpp's percentile interpolates between neighbours")
    func percentile() {
        let v: [Double] = [0, 1, 2, 3, 4]
        #expect(Statistics.percentile(sorted: v, 0.99) == 3.96)  // 0.99 × 4 = 3.96
        #expect(Statistics.percentile(sorted: v, 0.5) == 2)
        #expect(Statistics.percentile(sorted: v, 1) == 4)
    }

    @Test("top-k indices are the largest values, largest first")
    func topIndices() {
        let values: [Float] = [0.1, 5, -2, 5, 3, 9]
        let top = values.withUnsafeBufferPointer { KLBase.topIndices($0.baseAddress!, count: values.count, k: 3) }
        #expect(top == [5, 1, 3])
    }
}
