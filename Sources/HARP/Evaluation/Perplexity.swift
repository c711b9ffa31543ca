import Foundation

/// Perplexity under llama.cpp's protocol (`llama-perplexity`): the token stream is cut into
/// non-overlapping windows of `context` tokens from position 0, each evaluated in a fresh context,
/// and only the second half of each window is scored (targets at positions context/2+1 … context−1,
/// each with the logits of the position before), so every scored token has at least half a window
/// of history.
public struct PerplexityResult: Sendable, Equatable {
    public var perplexity: Double
    /// llama.cpp's ± : PPL × standard error of the mean negative log-likelihood.
    public var uncertainty: Double
    public var scoredTokens: Int
    public var chunks: Int
}

public enum Perplexity {
    /// Tokenizes `text` and evaluates it as llama.cpp's perplexity tool does: text tokenized once,
    /// with BOS in front (and as every window's first token) when the model adds BOS.
    public static func evaluate(_ transformer: Transformer, text: String, tokenizer: any Tokenizer, context: Int,
                                maxChunks: Int? = nil,
                                progress: (Int, Int, Double) -> Void = { _, _, _ in }) throws -> PerplexityResult {
        let bos = tokenizer.addBOS ? tokenizer.bosID : nil
        let tokens = (bos.map { [$0] } ?? []) + tokenizer.encode(text, parseSpecial: false)
        return try evaluate(transformer, tokens: tokens, context: context, maxChunks: maxChunks, bos: bos, progress: progress)
    }

    /// Evaluates `tokens`; `progress(chunk, runningPPL)` is called after every window. For a model
    /// that adds BOS, llama.cpp tokenizes the text with BOS in front and also puts `bos` in place of
    /// the first token of every window.
    public static func evaluate(_ transformer: Transformer, tokens: [Int32], context: Int, maxChunks: Int? = nil,
                                bos: Int32? = nil,
                                progress: (Int, Int, Double) -> Void = { _, _, _ in }) throws -> PerplexityResult {
        var sum = 0.0, sumSquares = 0.0, count = 0
        let vocab = transformer.config.vocabularySize
        let chunks = try forEachWindow(transformer, tokens: tokens, context: context, maxChunks: maxChunks, bos: bos) { chunk, chunks, window, rows, logits in
            for (row, position) in rows.enumerated() {
                let nll = negativeLogLikelihood(logits[(row * vocab)..<((row + 1) * vocab)], target: Int(window[position + 1]))
                sum += nll
                sumSquares += nll * nll
                count += 1
            }
            progress(chunk + 1, chunks, exp(sum / Double(count)))
        }
        let mean = sum / Double(count)
        let ppl = exp(mean)
        let variance = max(0, sumSquares / Double(count) - mean * mean)
        let uncertainty = count > 1 ? ppl * (variance / Double(count - 1)).squareRoot() : 0
        return PerplexityResult(perplexity: ppl, uncertainty: uncertainty, scoredTokens: count, chunks: chunks)
    }

    /// Runs llama.cpp's windows: `body(chunk, chunks, window, rows, logits)` gets each window's
    /// tokens (BOS in front when given), the positions whose logits were computed (context/2 …
    /// context−2, each predicting the next token) and those logits. Returns the number of windows.
    @discardableResult
    static func forEachWindow(_ transformer: Transformer, tokens: [Int32], context: Int, maxChunks: Int?, bos: Int32?,
                              body: (Int, Int, [Int32], [Int], [Float]) throws -> Void) throws -> Int {
        guard context >= 16 else { throw HARPError.invalidArgument("perplexity context must be at least 16 tokens, got \(context)") }
        let available = tokens.count / context
        guard available > 0 else {
            throw HARPError.invalidArgument("the text has \(tokens.count) tokens, fewer than one window of \(context)")
        }
        let chunks = min(available, maxChunks ?? available)
        let cache = try KVCache(config: transformer.config, contextLength: context)
        let first = context / 2
        for chunk in 0..<chunks {
            var window = Array(tokens[(chunk * context)..<((chunk + 1) * context)])
            if let bos { window[0] = bos }
            var batch = Batch(tokens: window, startPosition: 0)
            batch.logitRows = Array(first..<(context - 1))
            try body(chunk, chunks, window, batch.logitRows, try transformer.forward(batch, cache: cache))
        }
        return chunks
    }

    /// −log softmax(logits)[target], computed stably in double precision.
    static func negativeLogLikelihood(_ logits: ArraySlice<Float>, target: Int) -> Double {
        let maxLogit = Double(logits.max() ?? 0)
        var sum = 0.0
        for l in logits { sum += exp(Double(l) - maxLogit) }
        return log(sum) + maxLogit - Double(logits[logits.startIndex + target])
    }
}
