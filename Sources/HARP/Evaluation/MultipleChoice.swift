import Foundation

/// llama.cpp's own ranking rules, where `llama-perplexity` has the task.
public enum LlamaCppRule: Sendable, Equatable {
    /// `--hellaswag`: mean log-probability of the tokens after the common token prefix of all choices.
    case hellaSwag
    /// `--winogrande`: mean log-probability of the tokens after `context + option` (the part after
    /// the blank), without the last token — or, when a choice has at most 3 tokens after the common
    /// prefix, of everything after the common prefix but the last token.
    case winogrande
}

/// One multiple-choice item tokenized as lm-eval and llama.cpp do: each choice is
/// BOS? + encode(context + continuation); its continuation tokens start after BOS? + encode(context).
public struct TokenizedChoices: Sendable, Equatable {
    public var sequences: [[Int32]]
    public var contextTokens: [Int]
    /// Bytes of each continuation (lm-eval's acc_norm divisor).
    public var continuationBytes: [Int]
    public var gold: Int

    public init(sequences: [[Int32]], contextTokens: [Int], continuationBytes: [Int], gold: Int) {
        self.sequences = sequences
        self.contextTokens = contextTokens
        self.continuationBytes = continuationBytes
        self.gold = gold
    }

    public init(_ item: MultipleChoiceItem, tokenizer: any Tokenizer) {
        let bos: [Int32] = tokenizer.addBOS ? tokenizer.bosID.map { [$0] } ?? [] : []
        sequences = item.choices.map { bos + tokenizer.encode($0.context + $0.continuation, parseSpecial: false) }
        contextTokens = item.choices.map { bos.count + tokenizer.encode($0.context, parseSpecial: false).count }
        continuationBytes = item.choices.map { $0.continuation.utf8.count }
        gold = item.gold
    }

    /// Length of the token prefix all choices share.
    public var commonPrefix: Int {
        var common = sequences[0].count
        for s in sequences.dropFirst() { common = min(common, zip(sequences[0], s).prefix { $0 == $1 }.count) }
        return common
    }

    /// First scored token of each choice under lm-eval's rule (never the first token).
    var lmEvalStarts: [Int] { zip(contextTokens, sequences).map { min(max($0, 1), $1.count - 1) } }

    /// Tokens llama.cpp averages over for each choice.
    func llamaCppSpans(_ rule: LlamaCppRule) -> [Range<Int>] {
        let cp = max(commonPrefix, 1)
        switch rule {
        case .hellaSwag:
            return sequences.map { cp..<$0.count }
        case .winogrande:
            let skipChoice = sequences.allSatisfy { $0.count - cp > 3 }
            return zip(sequences, contextTokens).map { s, base in
                let start = skipChoice ? base : cp
                let dropLast = s.count - start > 1 ? 1 : 0
                return start..<(s.count - dropLast)
            }
        }
    }

    /// The scoring group: the shared prefix ends where the first scored token of any rule begins.
    func group(rule: LlamaCppRule?) throws -> ScoringGroup {
        var from = lmEvalStarts.min() ?? 1
        if let rule { from = min(from, llamaCppSpans(rule).map(\.lowerBound).min() ?? from) }
        return try ScoringGroup(sequences: sequences, scoreFrom: max(from, 1))
    }
}

/// Per-item decisions of a multiple-choice task.
public struct ChoiceDecision: Sendable, Equatable {
    /// Σ log p(continuation | context) per choice (lm-eval's `acc` ranks by it).
    public var logLikelihoods: [Double]
    /// The same divided by the continuation's bytes (`acc_norm`).
    public var normalized: [Double]
    /// llama.cpp's mean log-probability per scored token, when the task has a llama.cpp rule.
    public var llamaCpp: [Double]?
    public var gold: Int

    public var correct: Bool { Statistics.argmax(logLikelihoods) == gold }
    public var correctNormalized: Bool { Statistics.argmax(normalized) == gold }
    public var correctLlamaCpp: Bool? { llamaCpp.map { Statistics.argmax($0) == gold } }

    public init(_ item: TokenizedChoices, scores: [TokenScores], rule: LlamaCppRule?) {
        let starts = item.lmEvalStarts
        let sums = scores.indices.map { scores[$0].sum(from: starts[$0]) }
        logLikelihoods = sums
        normalized = sums.indices.map { sums[$0] / Double(max(item.continuationBytes[$0], 1)) }
        llamaCpp = rule.map { rule in
            zip(item.llamaCppSpans(rule), scores).map { span, s in
                span.isEmpty ? -Double.infinity : s.sum(from: span.lowerBound, to: span.upperBound) / Double(span.count)
            }
        }
        gold = item.gold
    }
}

public enum MultipleChoice {
    /// Scores `items` through `scorer` and reports `acc`, `acc_norm` and, with a rule, `acc_llamacpp`.
    public static func evaluate(_ items: [MultipleChoiceItem], task: String, scorer: LogLikelihoodScorer,
                                tokenizer: any Tokenizer, rule: LlamaCppRule?, normalized: Bool = true,
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> (TaskResult, [ChoiceDecision]) {
        let started = Date()
        let decisions = try decide(items, scorer: scorer, tokenizer: tokenizer, rule: rule, progress: progress)
        var metrics = [Statistics.accuracy("acc", decisions.map(\.correct))]
        if normalized { metrics.append(Statistics.accuracy("acc_norm", decisions.map(\.correctNormalized))) }
        if rule != nil { metrics.append(Statistics.accuracy("acc_llamacpp", decisions.compactMap(\.correctLlamaCpp))) }
        return (TaskResult(task: task, metrics: metrics, items: items.count, seconds: Date().timeIntervalSince(started)), decisions)
    }

    public static func decide(_ items: [MultipleChoiceItem], scorer: LogLikelihoodScorer, tokenizer: any Tokenizer,
                              rule: LlamaCppRule?, progress: (Int, Int) -> Void = { _, _ in }) throws -> [ChoiceDecision] {
        let tokenized = items.map { TokenizedChoices($0, tokenizer: tokenizer) }
        let groups = try tokenized.enumerated().map { i, t in
            do { return try t.group(rule: rule) } catch let error as HARPError {
                throw HARPError.invalidRequest("item \(i + 1): \(error.description)")
            }
        }
        let scores = try scorer.score(groups, progress: progress)
        return zip(tokenized, scores).map { ChoiceDecision($0, scores: $1, rule: rule) }
    }

    /// LAMBADA (lm-eval's `lambada_openai`): `acc` — every target token is the model's argmax (the
    /// greedy continuation reproduces the last word) — and `perplexity` = exp(−mean target log-likelihood).
    public static func lambada(_ items: [MultipleChoiceItem], scorer: LogLikelihoodScorer, tokenizer: any Tokenizer,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> TaskResult {
        let started = Date()
        let tokenized = items.map { TokenizedChoices($0, tokenizer: tokenizer) }
        let groups = try tokenized.map { try $0.group(rule: nil) }
        let scores = try scorer.score(groups, progress: progress)
        var hits: [Bool] = [], logLikelihoods: [Double] = []
        for (t, s) in zip(tokenized, scores) {
            let start = t.lmEvalStarts[0]
            hits.append(s[0].allGreedy(from: start))
            logLikelihoods.append(s[0].sum(from: start))
        }
        let (meanLL, seLL) = Statistics.mean(logLikelihoods)
        let ppl = exp(-meanLL)
        return TaskResult(task: "lambada", metrics: [Statistics.accuracy("acc", hits),
                                                     Metric("perplexity", ppl, standardError: seLL.map { $0 * ppl })],
                          items: items.count, seconds: Date().timeIntervalSince(started))
    }

    /// Winogrande rows as items: choice i is context `first + option_i`, continuation `second`.
    public static func winogrande(_ rows: [EvalData.WinograndeRow]) -> [MultipleChoiceItem] {
        rows.map { row in
            MultipleChoiceItem(choices: row.options.map { .init(context: row.first + $0, continuation: row.second) }, gold: row.answer)
        }
    }

    /// MMLU as lm-eval prompts it: a subject header, `shots` dev questions with their answers, the
    /// question; choices " A" … " D".
    public static func mmlu(subject: String, dev: [EvalData.MMLUQuestion], test: [EvalData.MMLUQuestion],
                            shots: Int) -> [MultipleChoiceItem] {
        let letters = ["A", "B", "C", "D"]
        func block(_ q: EvalData.MMLUQuestion) -> String {
            q.question.trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
                + zip(letters, q.choices).map { "\($0). \($1)\n" }.joined() + "Answer:"
        }
        let header = "The following are multiple choice questions (with answers) about \(subject.replacingOccurrences(of: "_", with: " ")).\n\n"
        let prefix = header + dev.prefix(shots).map { block($0) + " " + letters[$0.answer] + "\n\n" }.joined()
        return test.map { MultipleChoiceItem(context: prefix + block($0), continuations: letters.map { " " + $0 }, gold: $0.answer) }
    }
}
