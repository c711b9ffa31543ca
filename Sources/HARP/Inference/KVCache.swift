import CKernels

/// Element type of cached keys and values.
public enum KVCacheType: String, Sendable, CaseIterable {
    case f16, f32
    var elementBytes: Int { self == .f16 ? 2 : 4 }
    var kernelType: Int32 { Int32(self == .f16 ? HK_F16.rawValue : HK_F32.rawValue) }
}

/// Keys and values of past tokens for a fixed number of sequences. Only layers with full
/// attention get a slot: value-only, linear and attention-free layers never read past tokens,
/// so a model with 8 of 30 layers pruned by HARP holds 22/30 of the dense cache.
public final class KVCache: @unchecked Sendable {  // owned by one engine; not shared across threads
    public let sequenceCount: Int
    /// Positions per sequence.
    public let contextLength: Int
    public let type: KVCacheType
    /// Cache slot of each model layer (nil: no cache for that layer).
    public let slotOfLayer: [Int?]
    private let rowWidths: [Int]        // per slot: elements per token row (kvHeads × headDim)
    private let keys: [UnsafeMutableRawPointer]
    private let values: [UnsafeMutableRawPointer]
    public let byteCount: Int

    public init(config: ModelConfig, sequences: Int = 1, contextLength: Int, type: KVCacheType = .f16) throws {
        guard sequences > 0 else { throw HARPError.invalidArgument("KV cache needs at least one sequence") }
        guard contextLength > 0 else { throw HARPError.invalidArgument("context length must be positive, got \(contextLength)") }
        sequenceCount = sequences
        self.contextLength = contextLength
        self.type = type
        var slots: [Int?] = []
        var widths: [Int] = []
        for spec in config.layers {
            if spec.attention.needsKVCache {
                slots.append(widths.count)
                widths.append(spec.kvWidth)
            } else {
                slots.append(nil)
            }
        }
        slotOfLayer = slots
        rowWidths = widths
        var total = 0
        var k: [UnsafeMutableRawPointer] = [], v: [UnsafeMutableRawPointer] = []
        for w in widths {
            let bytes = sequences * contextLength * w * type.elementBytes
            k.append(UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64))
            v.append(UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 1), alignment: 64))
            total += 2 * bytes
        }
        keys = k
        values = v
        byteCount = total
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
    }

    /// Bytes one token position occupies across all cached layers.
    public var bytesPerToken: Int { rowWidths.reduce(0) { $0 + 2 * $1 * type.elementBytes } }

    @inline(__always)
    func keyRow(slot: Int, sequence: Int, position: Int) -> UnsafeMutableRawPointer {
        keys[slot] + ((sequence * contextLength + position) * rowWidths[slot]) * type.elementBytes
    }

    @inline(__always)
    func valueRow(slot: Int, sequence: Int, position: Int) -> UnsafeMutableRawPointer {
        values[slot] + ((sequence * contextLength + position) * rowWidths[slot]) * type.elementBytes
    }

    /// Copies the first `count` positions of sequence `from` to sequence `to` (prompt sharing).
    public func copySequence(from: Int, to: Int, count: Int) {
        guard from != to, count > 0 else { return }
        for slot in rowWidths.indices {
            let n = count * rowWidths[slot] * type.elementBytes
            keyRow(slot: slot, sequence: to, position: 0).copyMemory(from: keyRow(slot: slot, sequence: from, position: 0), byteCount: n)
            valueRow(slot: slot, sequence: to, position: 0).copyMemory(from: valueRow(slot: slot, sequence: from, position: 0), byteCount: n)
        }
    }
}
