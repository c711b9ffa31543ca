import Foundation

/// A reference model's next-token distributions over a text, under llama.cpp's perplexity protocol
/// (windows of `context` tokens, BOS first when the model adds it, the second half of each window
/// scored). llama.cpp stores every log-probability (16-bit quantized over 16 nats); this stores the
/// `topK` largest log-probabilities of each scored position plus the log-probability of the token
/// that follows, and treats the rest of the vocabulary as one "tail" outcome. The KL divergence of
/// that coarsened pair of distributions is a lower bound of the full one that differs from it by
/// the divergence inside the tail. At k = 64 that loss is not small (21.5% of the full KL of
/// SmolLM2 F32 vs Q4_1), so `harp-run eval --kl-base` stores the whole vocabulary by default
/// (k = vocabulary size: exact, 8 bytes per entry); a smaller `--top-k` gives a compact lower bound.
public struct KLBase: Sendable, Equatable {
    public static let magic = Array("HARPKLD1".utf8)

    public var vocabularySize: Int
    public var context: Int
    public var topK: Int
    /// The windows as evaluated (BOS already in place), each `context` tokens.
    public var windows: [[Int32]]
    /// Per scored position, in window order: top-k ids by decreasing log-probability.
    public var ids: [Int32]
    public var logProbs: [Float]
    /// Per scored position: log-probability of the token that follows.
    public var targetLogProbs: [Float]

    public var first: Int { context / 2 }
    public var rowsPerWindow: Int { context - 1 - first }

    public init(vocabularySize: Int, context: Int, topK: Int, windows: [[Int32]], ids: [Int32], logProbs: [Float], targetLogProbs: [Float]) {
        self.vocabularySize = vocabularySize
        self.context = context
        self.topK = topK
        self.windows = windows
        self.ids = ids
        self.logProbs = logProbs
        self.targetLogProbs = targetLogProbs
    }

    /// Evaluates the reference model over `text` and records its distributions.
    public static func compute(_ transformer: Transformer, text: String, tokenizer: any Tokenizer, context: Int,
                               maxChunks: Int?, topK: Int = 64,
                               progress: (Int, Int) -> Void = { _, _ in }) throws -> KLBase {
        let vocab = transformer.config.vocabularySize
        guard (1...vocab).contains(topK) else { throw HARPError.invalidArgument("top-k must be within 1...\(vocab), got \(topK)") }
        let bos = tokenizer.addBOS ? tokenizer.bosID : nil
        let tokens = (bos.map { [$0] } ?? []) + tokenizer.encode(text, parseSpecial: false)
        var base = KLBase(vocabularySize: vocab, context: context, topK: topK, windows: [], ids: [], logProbs: [], targetLogProbs: [])
        try Perplexity.forEachWindow(transformer, tokens: tokens, context: context, maxChunks: maxChunks, bos: bos) { chunk, chunks, window, rows, logits in
            base.windows.append(window)
            logits.withUnsafeBufferPointer { l in
                for (r, position) in rows.enumerated() {
                    let row = l.baseAddress! + r * vocab
                    let lse = RowStatistics(row, count: vocab).logSumExp
                    for id in topIndices(row, count: vocab, k: topK) {
                        base.ids.append(Int32(id))
                        base.logProbs.append(Float(Double(row[id]) - lse))
                    }
                    base.targetLogProbs.append(Float(Double(row[Int(window[position + 1])]) - lse))
                }
            }
            progress(chunk + 1, chunks)
        }
        return base
    }

    /// Indices of the k largest values, largest first (lower index first on ties).
    static func topIndices(_ values: UnsafePointer<Float>, count: Int, k: Int) -> [Int] {
        var top: [(index: Int, value: Float)] = []
        top.reserveCapacity(k + 1)
        for i in 0..<count {
            let v = values[i]
            if top.count == k, let last = top.last, !(v > last.value) { continue }
            var j = top.count
            while j > 0 && v > top[j - 1].value { j -= 1 }
            top.insert((i, v), at: j)
            if top.count > k { top.removeLast() }
        }
        return top.map(\.index)
    }

    // MARK: - File

    public func write(to path: String) throws {
        var data = Data(KLBase.magic)
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { data.append(contentsOf: $0) } }
        u32(vocabularySize); u32(context); u32(windows.count); u32(topK)
        for w in windows { w.withUnsafeBytes { data.append(contentsOf: $0) } }
        let rows = windows.count * rowsPerWindow
        for r in 0..<rows {
            ids[(r * topK)..<((r + 1) * topK)].withUnsafeBytes { data.append(contentsOf: $0) }
            logProbs[(r * topK)..<((r + 1) * topK)].withUnsafeBytes { data.append(contentsOf: $0) }
            withUnsafeBytes(of: targetLogProbs[r]) { data.append(contentsOf: $0) }
        }
        let url = URL(fileURLWithPath: path)
        do { try data.write(to: url, options: .atomic) } catch {
            throw HARPError.io(path: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }

    public init(path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw HARPError.io(path: path, reason: "cannot read file") }
        func fail(_ reason: String) -> HARPError { .io(path: path, reason: "not a KL base file: \(reason)") }
        guard data.count >= 24, Array(data.prefix(8)) == KLBase.magic else { throw fail("bad magic (expected HARPKLD1)") }
        let bytes = [UInt8](data)
        func u32(_ offset: Int) -> Int { Int(UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24) }
        let vocabularySize = u32(8), context = u32(12), chunks = u32(16), topK = u32(20)
        guard context >= 16, chunks > 0, topK > 0, topK <= vocabularySize else {
            throw fail("header values out of range (context \(context), chunks \(chunks), top-k \(topK))")
        }
        let rowsPerWindow = context - 1 - context / 2
        let (tokenBytes, o1) = chunks.multipliedReportingOverflow(by: context * 4)
        let (rowBytes, o2) = (topK * 8 + 4).multipliedReportingOverflow(by: chunks * rowsPerWindow)
        let (total, o3) = (24 + tokenBytes).addingReportingOverflow(rowBytes)
        guard !o1, !o2, !o3, total == bytes.count else { throw fail("size \(bytes.count) bytes does not match its header (\(o1 || o2 || o3 ? "overflow" : "\(total)"))") }
        var offset = 24
        var windows: [[Int32]] = []
        bytes.withUnsafeBytes { raw in
            for _ in 0..<chunks {
                windows.append((0..<context).map { raw.loadUnaligned(fromByteOffset: offset + 4 * $0, as: Int32.self) })
                offset += context * 4
            }
        }
        guard windows.allSatisfy({ $0.allSatisfy { $0 >= 0 && Int($0) < vocabularySize } }) else { throw fail("token id outside the vocabulary") }
        var ids: [Int32] = [], logProbs: [Float] = [], targets: [Float] = []
        let rows = chunks * rowsPerWindow
        ids.reserveCapacity(rows * topK); logProbs.reserveCapacity(rows * topK)
        bytes.withUnsafeBytes { raw in
            for _ in 0..<rows {
                for j in 0..<topK { ids.append(raw.loadUnaligned(fromByteOffset: offset + 4 * j, as: Int32.self)) }
                offset += 4 * topK
                for j in 0..<topK { logProbs.append(raw.loadUnaligned(fromByteOffset: offset + 4 * j, as: Float.self)) }
                offset += 4 * topK
                targets.append(raw.loadUnaligned(fromByteOffset: offset, as: Float.self))
                offset += 4
            }
        }
        guard ids.allSatisfy({ $0 >= 0 && Int($0) < vocabularySize }) else { throw fail("top-k id outside the vocabulary") }
        self.init(vocabularySize: vocabularySize, context: context, topK: topK, windows: windows, ids: ids,
                  logProbs: logProbs, targetLogProbs: targets)
    }
}

/// llama.cpp's `--kl-divergence` statistics of a model against a `KLBase`.
public enum KLDivergence {
    /// KL divergence of one position, base P against model Q, over the top-k outcomes of P and
    /// the tail (the rest of the vocabulary as one outcome). `q` holds log Q of the same ids.
    public static func divergence(baseLogProbs p: ArraySlice<Float>, modelLogProbs q: [Float]) -> Double {
        var kl = 0.0, pMass = 0.0, qMass = 0.0
        for (lp, lq) in zip(p, q) {
            let pp = exp(Double(lp))
            kl += pp * (Double(lp) - Double(lq))
            pMass += pp
            qMass += exp(Double(lq))
        }
        let pTail = 1 - pMass, qTail = 1 - qMass
        if pTail > 1e-12 { kl += pTail * (log(pTail) - log(max(qTail, 1e-30))) }
        return max(kl, 0)
    }

    public static func evaluate(_ transformer: Transformer, base: KLBase,
                                progress: (Int, Int) -> Void = { _, _ in }) throws -> TaskResult {
        let started = Date()
        let vocab = transformer.config.vocabularySize
        guard base.vocabularySize == vocab else {
            throw HARPError.invalidArgument("the KL base has a vocabulary of \(base.vocabularySize) tokens, the model \(vocab)")
        }
        let cache = try KVCache(config: transformer.config, contextLength: base.context)
        var klds: [Double] = [], sameTop: [Bool] = [], dp: [Double] = [], nll: [Double] = [], nllBase: [Double] = []
        let k = base.topK
        var row = 0
        for (chunk, window) in base.windows.enumerated() {
            var batch = Batch(tokens: window, startPosition: 0)
            batch.logitRows = Array(base.first..<(base.context - 1))
            let logits = try transformer.forward(batch, cache: cache)
            logits.withUnsafeBufferPointer { l in
                for (r, position) in batch.logitRows.enumerated() {
                    let q = l.baseAddress! + r * vocab
                    let stats = RowStatistics(q, count: vocab)
                    let ids = base.ids[(row * k)..<((row + 1) * k)]
                    let lq = ids.map { Float(Double(q[Int($0)]) - stats.logSumExp) }
                    klds.append(divergence(baseLogProbs: base.logProbs[(row * k)..<((row + 1) * k)], modelLogProbs: lq))
                    sameTop.append(stats.argmax == Int(ids[ids.startIndex]))
                    let target = Double(Float(Double(q[Int(window[position + 1])]) - stats.logSumExp))
                    let targetBase = Double(base.targetLogProbs[row])
                    nll.append(-target)
                    nllBase.append(-targetBase)
                    dp.append(exp(target) - exp(targetBase))
                    row += 1
                }
            }
            progress(chunk + 1, base.windows.count)
        }
        let (meanKL, seKL) = Statistics.mean(klds)
        let (mse, seMSE) = Statistics.mean(dp.map { $0 * $0 })
        let rms = mse.squareRoot()
        let (lnQ, seQ) = Statistics.mean(nll)
        let (lnBase, seBase) = Statistics.mean(nllBase)
        let metrics = [
            Metric("kld_mean", meanKL, standardError: seKL),
            Metric("kld_p99", Statistics.percentile(sorted: klds.sorted(), 0.99)),
            Metric("same_top", Statistics.accuracy("", sameTop).value, standardError: Statistics.accuracy("", sameTop).standardError),
            Metric("rms_dp", rms, standardError: rms > 0 ? seMSE.map { 0.5 / rms * $0 } : nil),
            Metric("ppl", exp(lnQ), standardError: seQ.map { $0 * exp(lnQ) }),
            Metric("ppl_base", exp(lnBase), standardError: seBase.map { $0 * exp(lnBase) }),
        ]
        return TaskResult(task: "kl", metrics: metrics, items: klds.count, seconds: Date().timeIntervalSince(started))
    }
}
