import CKernels
import Foundation
import HARP

/// Token windows cut from a calibration text at seeded random offsets (as FLAP and Wanda sample
/// WikiText-2), all of the same length.
///
/// Calibration perplexity scores each window like llama.cpp's perplexity protocol: only the
/// second half is scored (the targets of positions `length/2 ..< length-1`), so every scored token
/// has at least half a window of history. Those rows are also the only ones the α search replays.
public struct CalibrationSet: Sendable {
    public let windows: [[Int32]]
    public let windowLength: Int
    /// Where the text came from, for reports.
    public let source: String

    public init(windows: [[Int32]], source: String) throws {
        guard let length = windows.first?.count else { throw HARPError.invalidArgument("\(source): no calibration windows") }
        guard length >= 8 else { throw HARPError.invalidArgument("calibration windows must be at least 8 tokens, got \(length)") }
        guard windows.allSatisfy({ $0.count == length }) else {
            throw HARPError.invalidArgument("\(source): calibration windows differ in length")
        }
        self.windows = windows
        self.windowLength = length
        self.source = source
    }

    /// Tokenizes the text file at `path` and cuts `count` windows of `length` tokens.
    public static func load(path: String, tokenizer: any Tokenizer, count: Int, length: Int, seed: UInt64) throws -> CalibrationSet {
        guard count > 0 else { throw HARPError.invalidArgument("the number of calibration windows must be positive, got \(count)") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw HARPError.io(path: path, reason: "cannot read the calibration file")
        }
        let text = try calibrationText(data, path: path)
        let tokens = tokenizer.encode(text, parseSpecial: false)
        guard tokens.count > length else {
            throw HARPError.invalidArgument("\(path): the calibration text has \(tokens.count) tokens, fewer than one window of \(length) + 1")
        }
        // Windows are drawn at random positions; with less text than they cover together they
        // would mostly repeat the same tokens, and the fit would calibrate on a fraction of what
        // the user asked for.
        let (needed, overflow) = count.multipliedReportingOverflow(by: length)
        guard !overflow, tokens.count >= needed else {
            throw HARPError.invalidArgument("\(path): the calibration text has \(tokens.count) tokens, fewer than the "
                + "\(count) windows × \(length) tokens asked for (--nsamples, --seqlen): give more text or fewer windows")
        }
        var random = SplitMix64(seed: seed)
        let windows = (0..<count).map { _ -> [Int32] in
            let start = Int.random(in: 0...(tokens.count - length - 1), using: &random)
            return Array(tokens[start..<(start + length)])
        }
        return try CalibrationSet(windows: windows, source: path)
    }

    /// Smallest share of a calibration text that must be letters, digits, punctuation or spaces.
    static let minimumTextShare = 0.9

    /// The file's text: valid UTF-8 (the first bad byte is named) that is mostly text — no NULs,
    /// at most 10% control or unassigned characters — so random or binary bytes are refused
    /// instead of calibrating on the tokenizer's byte fallback.
    static func calibrationText(_ data: Data, path: String) throws -> String {
        let bytes = [UInt8](data)
        var decoder = UTF8()
        var iterator = bytes.makeIterator()
        var text = String.UnicodeScalarView()
        var offset = 0, textual = 0
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                guard scalar.value != 0 else { throw HARPError.io(path: path, reason: "the calibration file has a NUL byte at offset \(offset): not text") }
                text.append(scalar)
                offset += UTF8.width(scalar)
                switch scalar.properties.generalCategory {
                case .control where !"\t\n\r\u{0C}".unicodeScalars.contains(scalar), .unassigned, .privateUse, .surrogate: break
                default: textual += 1
                }
            case .emptyInput: break loop
            case .error:
                throw HARPError.io(path: path, reason: "the calibration file is not valid UTF-8 (byte offset \(offset)): not text")
            }
        }
        let result = String(text)
        guard !result.allSatisfy(\.isWhitespace) else { throw HARPError.io(path: path, reason: "the calibration file is empty") }
        guard Double(textual) >= minimumTextShare * Double(text.count) else {
            throw HARPError.io(path: path, reason: "the calibration file is mostly control characters (\(text.count - textual) of \(text.count)): not text")
        }
        return result
    }

    /// Positions of a window whose next token is scored.
    public var scoredPositions: Range<Int> { (windowLength / 2)..<(windowLength - 1) }

    /// Scored rows over all windows (window-major).
    public var scoredRowCount: Int { windows.count * scoredPositions.count }

    /// The next token of every scored row, window-major.
    public var scoredTargets: [Int32] {
        windows.flatMap { w in scoredPositions.map { w[$0 + 1] } }
    }

    public var tokenCount: Int { windows.count * windowLength }
}

/// Runs calibration windows through the runtime's forward pass, several windows per batch as
/// separate sequences, and returns the calibration perplexity.
enum CalibrationPass {
    /// Windows batched into one forward pass (≈512 tokens, where the prefill GEMM is efficient).
    static func windowsPerBatch(_ calibration: CalibrationSet) -> Int { max(1, 512 / calibration.windowLength) }

    /// `observer` sees each batch's rows in window-major order, windows in calibration order.
    static func perplexity(_ transformer: Transformer, calibration: CalibrationSet, observer: ForwardObserver? = nil,
                           progress: (Int, Int) -> Void = { _, _ in }) throws -> Double {
        let length = calibration.windowLength
        let perBatch = windowsPerBatch(calibration)
        let cache = try KVCache(config: transformer.config, sequences: perBatch, contextLength: length, type: .f32)
        let vocab = transformer.config.vocabularySize
        var loss = NextTokenLoss()
        var done = 0
        while done < calibration.windows.count {
            let windows = calibration.windows[done..<min(done + perBatch, calibration.windows.count)]
            var batch = Batch()
            var targets: [Int32] = []
            for (sequence, window) in windows.enumerated() {
                for (position, token) in window.enumerated() {
                    let scored = calibration.scoredPositions.contains(position)
                    batch.append(token: token, position: position, sequence: sequence, wantLogits: scored)
                    if scored { targets.append(window[position + 1]) }
                }
            }
            var logits = try transformer.forward(batch, cache: cache, observer: observer)
            loss.add(logits: &logits, vocabularySize: vocab, targets: targets)
            done += windows.count
            progress(done, calibration.windows.count)
        }
        return loss.perplexity
    }
}

/// Accumulates next-token negative log-likelihoods.
struct NextTokenLoss {
    private(set) var sum = 0.0
    private(set) var count = 0

    var mean: Double { count > 0 ? sum / Double(count) : 0 }
    var perplexity: Double { exp(mean) }

    /// Adds rows of `logits` (rows × vocabularySize, overwritten by their softmax) with their targets.
    mutating func add(logits: inout [Float], vocabularySize vocab: Int, targets: [Int32]) {
        logits.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            for (row, target) in targets.enumerated() {
                sum += Self.negativeLogLikelihood(base + row * vocab, count: vocab, target: Int(target))
            }
        }
        count += targets.count
    }

    /// −log softmax(x)[target] with the kernels' vectorised softmax (the α search scores ~10⁹
    /// logits). Exact even when the target's probability underflows: the largest logit's
    /// probability is 1/Σ, so −log p(target) = −log p(max) + x[max] − x[target].
    static func negativeLogLikelihood(_ x: UnsafeMutablePointer<Float>, count n: Int, target: Int) -> Double {
        var top = 0
        for i in 1..<n where x[i] > x[top] { top = i }
        let gap = Double(x[top]) - Double(x[target])
        hk_softmax(x, Int64(n))
        return -log(Double(x[top])) + gap
    }
}
