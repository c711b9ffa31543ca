import CKernels
import Foundation

/// Token sequences of one item scored together: they share their first `sharedPrefix` tokens,
/// which are evaluated once; every token from `sharedPrefix` on gets its log-probability.
public struct ScoringGroup: Sendable, Equatable {
    public let sequences: [[Int32]]
    public let sharedPrefix: Int

    /// `scoreFrom`: the first token index any caller needs scored; the shared prefix is the
    /// common prefix of the sequences, cut there. Every sequence needs a token after it.
    public init(sequences: [[Int32]], scoreFrom: Int) throws {
        guard !sequences.isEmpty else { throw HARPError.invalidRequest("a scoring group needs at least one sequence") }
        guard scoreFrom >= 1 else { throw HARPError.invalidRequest("the first token has no prediction to score (scoreFrom = \(scoreFrom))") }
        var common = sequences[0].count
        for s in sequences.dropFirst() { common = min(common, zip(sequences[0], s).prefix { $0 == $1 }.count) }
        let prefix = min(common, scoreFrom)
        if let short = sequences.firstIndex(where: { $0.count <= prefix }) {
            throw HARPError.invalidRequest("sequence \(short) has no token to score after the \(prefix)-token prefix")
        }
        self.sequences = sequences
        sharedPrefix = prefix
    }

    /// Tokens the forward passes compute: the prefix once, then each sequence's rest but its last token.
    var computedTokens: Int { sharedPrefix + sequences.reduce(0) { $0 + $1.count - 1 - sharedPrefix } }
}

/// Log-probabilities of the tokens `first...` of one sequence, and whether each token was the
/// model's argmax (the greedy choice) at its position.
public struct TokenScores: Sendable, Equatable {
    public var first: Int
    public var logProbs: [Double]
    public var greedy: [Bool]

    /// Sum of log-probabilities of tokens `from..<to` (absolute token indices).
    public func sum(from: Int, to: Int? = nil) -> Double {
        let end = (to ?? first + logProbs.count) - first
        return logProbs[(from - first)..<end].reduce(0, +)
    }

    public func allGreedy(from: Int) -> Bool { greedy[(from - first)...].allSatisfy { $0 } }
}

/// Scores many groups through the runtime's batched forward pass. Groups are packed into passes
/// of up to `maxSequences` cache sequences: the first pass evaluates each group's shared prefix in
/// its first sequence, the prefix's keys and values are copied to the group's other sequences
/// (`KVCache.copySequence`), then the remaining tokens of all sequences go through together,
/// in forward passes of at most `maxLogitRows` rows (bounding the logits buffer).
public final class LogLikelihoodScorer {
    public let transformer: Transformer
    public let maxSequences: Int
    public let tokenBudget: Int
    private var cache: KVCache?

    public init(transformer: Transformer, maxSequences: Int = 64, tokenBudget: Int = 2048) {
        self.transformer = transformer
        self.maxSequences = max(1, maxSequences)
        self.tokenBudget = max(16, tokenBudget)
    }

    /// Rows of logits kept at once: about 64 MB of floats, at least 16 rows.
    var maxLogitRows: Int { max(16, 16_000_000 / transformer.config.vocabularySize) }

    /// Scores of every sequence of every group, in order. `progress(done, total)` after each pass.
    public func score(_ groups: [ScoringGroup], progress: (Int, Int) -> Void = { _, _ in }) throws -> [[TokenScores]] {
        let longest = groups.flatMap(\.sequences).map(\.count).max() ?? 0
        let modelContext = transformer.config.contextLength
        if let bad = groups.firstIndex(where: { $0.sequences.contains { $0.count > modelContext } }) {
            throw HARPError.invalidRequest("item \(bad + 1) needs more than the model's \(modelContext)-token context")
        }
        if let bad = groups.firstIndex(where: { $0.sequences.count > maxSequences }) {
            throw HARPError.invalidRequest("item \(bad + 1) has \(groups[bad].sequences.count) choices, more than the \(maxSequences) sequences of a pass")
        }
        let needed = min(modelContext, max(longest, 1))
        if cache == nil || cache!.contextLength < needed || cache!.sequenceCount < maxSequences {
            cache = nil
            cache = try KVCache(config: transformer.config, sequences: maxSequences, contextLength: needed)
        }
        guard let cache else { return [] }
        var results: [[TokenScores]] = []
        results.reserveCapacity(groups.count)
        var start = 0
        while start < groups.count {
            var end = start, slots = 0, tokens = 0
            while end < groups.count {
                let g = groups[end]
                if end > start && (slots + g.sequences.count > maxSequences || tokens + g.computedTokens > tokenBudget) { break }
                slots += g.sequences.count
                tokens += g.computedTokens
                end += 1
            }
            results.append(contentsOf: try scorePass(groups[start..<end], cache: cache))
            start = end
            progress(end, groups.count)
        }
        return results
    }

    private func scorePass(_ groups: ArraySlice<ScoringGroup>, cache: KVCache) throws -> [[TokenScores]] {
        var out = groups.map { g in g.sequences.map { s in
            TokenScores(first: g.sharedPrefix, logProbs: Array(repeating: 0, count: s.count - g.sharedPrefix),
                        greedy: Array(repeating: false, count: s.count - g.sharedPrefix))
        } }
        var baseSlot: [Int] = []
        var slot = 0
        for g in groups { baseSlot.append(slot); slot += g.sequences.count }

        // Pass 1: the shared prefixes, one sequence each; logits of the last prefix token.
        var prefixBatch = Batch()
        var prefixRows: [Int] = []
        for (k, g) in groups.enumerated() {
            for p in 0..<g.sharedPrefix {
                prefixBatch.append(token: g.sequences[0][p], position: p, sequence: baseSlot[k], wantLogits: p == g.sharedPrefix - 1)
            }
            prefixRows.append(k)
        }
        try forwardInChunks(prefixBatch, rowsOf: prefixRows.map { k in (k, -1) }, groups: groups, into: &out, cache: cache)
        for (k, g) in groups.enumerated() {
            for c in 1..<max(g.sequences.count, 1) { cache.copySequence(from: baseSlot[k], to: baseSlot[k] + c, count: g.sharedPrefix) }
        }

        // Pass 2: the rest of every sequence (its last token predicts nothing scored).
        var batch = Batch()
        var owners: [(Int, Int)] = []
        for (k, g) in groups.enumerated() {
            for (c, s) in g.sequences.enumerated() where s.count - 1 > g.sharedPrefix {
                for p in g.sharedPrefix..<(s.count - 1) {
                    batch.append(token: s[p], position: p, sequence: baseSlot[k] + c, wantLogits: true)
                    owners.append((k, c))
                }
            }
        }
        if batch.count > 0 { try forwardInChunks(batch, rowsOf: owners, groups: groups, into: &out, cache: cache) }
        return out
    }

    /// Runs `batch` in pieces of at most `maxLogitRows` rows (each sequence's rows stay in order) and
    /// stores the scores of the logit rows. `rowsOf[i]` is (group, choice) of the i-th logit row; choice −1
    /// marks a prefix row, whose logits score the first token after the prefix of every choice.
    private func forwardInChunks(_ batch: Batch, rowsOf owners: [(Int, Int)], groups: ArraySlice<ScoringGroup>,
                                 into out: inout [[TokenScores]], cache: KVCache) throws {
        let vocab = transformer.config.vocabularySize
        var start = 0
        var logitIndex = 0
        let base = groups.startIndex
        let wanted = Set(batch.logitRows)
        while start < batch.count {
            // A piece ends when it holds maxLogitRows logit rows or tokenBudget rows.
            var end = start, logitCount = 0
            while end < batch.count && logitCount < maxLogitRows && end - start < tokenBudget {
                if wanted.contains(end) { logitCount += 1 }
                end += 1
            }
            var piece = Batch()
            for i in start..<end {
                piece.append(token: batch.tokens[i], position: batch.positions[i], sequence: batch.sequences[i], wantLogits: wanted.contains(i))
            }
            var logits = try transformer.forward(piece, cache: cache)
            let rows = piece.logitRows.count
            // (group, choice, target index, target token) per row, then the statistics in parallel.
            var targets: [(k: Int, c: Int, index: Int)] = []
            for r in 0..<rows {
                let (k, c) = owners[logitIndex + r]
                let g = groups[base + k]
                if c < 0 {
                    targets.append((k, -1, g.sharedPrefix))
                } else {
                    targets.append((k, c, piece.positions[piece.logitRows[r]] + 1))
                }
            }
            logitIndex += rows
            var stats = [RowStatistics](repeating: RowStatistics(argmax: 0, logSumExp: 0), count: rows)
            logits.withUnsafeMutableBufferPointer { l in
                stats.withUnsafeMutableBufferPointer { s in
                    let lp = UnsafeSendablePointer(l.baseAddress!), sp = UnsafeSendablePointer(s.baseAddress!)
                    let workers = min(rows, transformer.pool.threadCount * 2)
                    DispatchQueue.concurrentPerform(iterations: workers) { worker in
                        var r = worker
                        while r < rows {
                            sp.pointer[r] = RowStatistics(lp.pointer + r * vocab, count: vocab)
                            r += workers
                        }
                    }
                }
            }
            for (r, t) in targets.enumerated() {
                let row = logits[(r * vocab)..<((r + 1) * vocab)]
                let g = groups[base + t.k]
                let choices = t.c < 0 ? Array(g.sequences.indices) : [t.c]
                for c in choices {
                    let token = Int(g.sequences[c][t.index])
                    let i = t.index - g.sharedPrefix
                    out[t.k][c].logProbs[i] = Double(row[row.startIndex + token]) - stats[r].logSumExp
                    out[t.k][c].greedy[i] = stats[r].argmax == token
                }
            }
            start = end
        }
    }
}

/// A raw pointer handed to concurrent workers that write disjoint elements.
struct UnsafeSendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}

/// The argmax of a logits row (first on ties, as greedy sampling picks) and log Σ exp(logits).
struct RowStatistics: Sendable, Equatable {
    var argmax: Int
    var logSumExp: Double

    init(argmax: Int, logSumExp: Double) {
        self.argmax = argmax
        self.logSumExp = logSumExp
    }

    /// Computed in double precision over float exponentials, as llama.cpp's scorers do.
    init(_ logits: UnsafePointer<Float>, count: Int) {
        var best = 0
        var maxValue = -Float.infinity
        for i in 0..<count where logits[i] > maxValue {
            maxValue = logits[i]
            best = i
        }
        var sum = 0.0
        for i in 0..<count { sum += Double(expf(logits[i] - maxValue)) }
        argmax = best
        logSumExp = Double(maxValue) + log(sum)
    }
}
