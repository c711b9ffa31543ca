import CKernels
import Foundation

/// Element type of cached keys and values.
public enum KVCacheType: String, Sendable, CaseIterable {
    case f16, f32
    var elementBytes: Int { self == .f16 ? 2 : 4 }
    var kernelType: Int32 { Int32(self == .f16 ? HK_F16.rawValue : HK_F32.rawValue) }
}

/// Keys and values of past tokens for a fixed number of sequences. Only layers with full
/// attention get a slot: value-only, linear and attention-free layers never read past tokens,
/// so a model with 8 of 30 layers pruned by HARP holds 22/30 of the dense cache.
///
/// A sliding-window layer (window W) keeps only a buffer of `W + slack` positions per sequence:
/// positions `base ..< base + capacity` live at rows `0 ..< capacity`, and when a write would run
/// past the end, the last W − 1 positions move to the front. The attended run of every query
/// stays contiguous (the attention kernel's contract), and with slack ≥ W the moves cost at most
/// one row copy per token.
public final class KVCache: @unchecked Sendable {  // owned by one engine; not shared across threads
    public let sequenceCount: Int
    /// Positions per sequence.
    public let contextLength: Int
    public let type: KVCacheType
    /// Cache slot of each model layer (nil: no cache for that layer).
    public let slotOfLayer: [Int?]
    private let rowWidths: [Int]        // per slot: elements per token row (kvHeads × headDim)
    private let windows: [Int?]         // per slot: attention window of a sliding-window layer
    private let capacities: [Int]       // per slot: rows held per sequence
    private var bases: [[Int]]          // per slot, per sequence: position stored in row 0
    private let keys: [UnsafeMutableRawPointer]
    private let values: [UnsafeMutableRawPointer]
    public let byteCount: Int

    public init(config: ModelConfig, sequences: Int = 1, contextLength: Int, type: KVCacheType = .f16) throws {
        guard (1...65_536).contains(sequences) else { throw HARPError.invalidArgument("KV cache needs 1 to 65536 sequences, got \(sequences)") }
        guard contextLength > 0 else { throw HARPError.invalidArgument("context length must be positive, got \(contextLength)") }
        sequenceCount = sequences
        self.contextLength = contextLength
        self.type = type
        var slots: [Int?] = []
        var widths: [Int] = [], windows: [Int?] = [], capacities: [Int] = []
        for spec in config.layers {
            if spec.attention.needsKVCache {
                slots.append(widths.count)
                widths.append(spec.kvWidth)
                windows.append(spec.slidingWindow)
                // A window as long as the context is no window (and its + slack could overflow).
                capacities.append(spec.slidingWindow.map { $0 >= contextLength ? contextLength : min(contextLength, $0 + KVCache.slack(window: $0)) } ?? contextLength)
            } else {
                slots.append(nil)
            }
        }
        slotOfLayer = slots
        rowWidths = widths
        self.windows = windows
        self.capacities = capacities
        // Sizes come from a model file and a request: checked products, and an allocation that
        // fails with an error instead of a trap.
        func tooLarge(_ detail: String) -> HARPError {
            .invalidArgument("a KV cache of \(sequences) sequence(s) × \(contextLength) positions for this model is too large (\(detail))")
        }
        var total = 0
        var k: [UnsafeMutableRawPointer] = [], v: [UnsafeMutableRawPointer] = []
        func release() { for p in k + v { free(p) } }
        for (w, capacity) in zip(widths, capacities) {
            var bytes = 0, overflow = false
            (bytes, overflow) = sequences.multipliedReportingOverflow(by: capacity)
            if !overflow { (bytes, overflow) = bytes.multipliedReportingOverflow(by: w * type.elementBytes) }
            if !overflow { (total, overflow) = total.addingReportingOverflow(2 * bytes) }
            guard !overflow, bytes < Int.max / 2 else { release(); throw tooLarge("its size overflows") }
            var key: UnsafeMutableRawPointer?, value: UnsafeMutableRawPointer?
            guard posix_memalign(&key, 64, max(bytes, 1)) == 0, let key else { release(); throw tooLarge("\(bytes) bytes per layer cannot be allocated") }
            k.append(key)
            guard posix_memalign(&value, 64, max(bytes, 1)) == 0, let value else { release(); throw tooLarge("\(bytes) bytes per layer cannot be allocated") }
            v.append(value)
        }
        keys = k
        values = v
        byteCount = total
        bases = Array(repeating: Array(repeating: 0, count: sequences), count: widths.count)
    }

    deinit {
        for p in keys { free(p) }
        for p in values { free(p) }
    }

    /// Positions beyond the window a sliding-window buffer holds (see `rowsPerWrite`).
    static func slack(window: Int) -> Int { max(window, 64) }

    /// Bytes one more token position adds to the cache: layers with full attention over the whole
    /// context (sliding-window layers hold a fixed number of positions).
    public var bytesPerToken: Int {
        rowWidths.indices.reduce(0) { $0 + (windows[$1] == nil ? 2 * rowWidths[$1] * type.elementBytes : 0) }
    }

    /// Whether a slot holds fewer positions than the context (a sliding-window buffer that moves).
    func isWindowBuffer(slot: Int) -> Bool { capacities[slot] < contextLength }

    /// Whether any slot is a window buffer.
    var hasWindowBuffers: Bool { capacities.contains { $0 < contextLength } }

    /// How many batch rows may be stored in a slot before their queries run: for a window buffer,
    /// with each sequence's positions consecutive, that many rows span at most `slack` positions
    /// of any sequence, so storing them never moves out a position one of their queries reads.
    func rowsPerWrite(slot: Int, batchRows: Int) -> Int {
        guard isWindowBuffer(slot: slot), let window = windows[slot] else { return batchRows }
        return capacities[slot] - window + 1
    }

    @inline(__always)
    private func row(slot: Int, sequence: Int, position: Int) -> Int {
        (sequence * capacities[slot] + position - bases[slot][sequence]) * rowWidths[slot] * type.elementBytes
    }

    @inline(__always)
    func keyRow(slot: Int, sequence: Int, position: Int) -> UnsafeMutableRawPointer {
        keys[slot] + row(slot: slot, sequence: sequence, position: position)
    }

    @inline(__always)
    func valueRow(slot: Int, sequence: Int, position: Int) -> UnsafeMutableRawPointer {
        values[slot] + row(slot: slot, sequence: sequence, position: position)
    }

    /// The oldest position a query at `position` of `sequence` reads from a sliding-window layer,
    /// when the cache no longer holds it (it moved out of the window buffer); nil when all is held.
    func missingHistory(sequence: Int, position: Int) -> (position: Int, window: Int)? {
        guard position > 0 else { return nil }
        for slot in windows.indices {
            guard let window = windows[slot] else { continue }
            let oldest = max(0, position - window + 1)
            if oldest < bases[slot][sequence] { return (oldest, window) }
        }
        return nil
    }

    /// Makes room in a sliding-window slot for positions `first...last` of `sequence`, moving the
    /// W − 1 positions before `first` to the front of the buffer when the write would run past it.
    func prepareWindowWrite(slot: Int, sequence: Int, first: Int, last: Int) {
        guard isWindowBuffer(slot: slot), let window = windows[slot] else { return }
        if first == 0 { bases[slot][sequence] = 0 }
        let base = bases[slot][sequence]
        guard last - base >= capacities[slot] else { return }
        let newBase = max(base, first - window + 1)
        let keep = (first - newBase) * rowWidths[slot] * type.elementBytes
        let start = sequence * capacities[slot] * rowWidths[slot] * type.elementBytes
        let offset = (newBase - base) * rowWidths[slot] * type.elementBytes
        if keep > 0 {  // the regions overlap when keep > offset
            memmove(keys[slot] + start, keys[slot] + start + offset, keep)
            memmove(values[slot] + start, values[slot] + start + offset, keep)
        }
        bases[slot][sequence] = newBase
    }

    /// Copies the first `count` positions of sequence `from` to sequence `to` (prompt sharing);
    /// sliding-window layers copy the positions they still hold.
    public func copySequence(from: Int, to: Int, count: Int) {
        guard from != to, count > 0 else { return }
        for slot in rowWidths.indices {
            let base = bases[slot][from]
            bases[slot][to] = base
            let rows = min(count - base, capacities[slot])
            guard rows > 0 else {
                bases[slot][to] = count
                continue
            }
            let n = rows * rowWidths[slot] * type.elementBytes
            keyRow(slot: slot, sequence: to, position: base).copyMemory(from: keyRow(slot: slot, sequence: from, position: base), byteCount: n)
            valueRow(slot: slot, sequence: to, position: base).copyMemory(from: valueRow(slot: slot, sequence: from, position: base), byteCount: n)
        }
    }
}
