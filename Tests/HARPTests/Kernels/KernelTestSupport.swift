// Shared helpers for the CKernels tests: a deterministic RNG, random ggml blocks and a naive,
// independently written dequantizer that the kernels are checked against.
import CKernels

/// SplitMix64: deterministic across runs and platforms.
struct KRNG {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [-1, 1).
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
    mutating func floats(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in float() * scale } }
    mutating func byte() -> UInt8 { UInt8(truncatingIfNeeded: next()) }
}

/// The element types the kernels support, with their ggml numbers.
enum KType: Int32, CaseIterable, Sendable {
    case f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8
    case q4_K = 12, q5_K = 13, q6_K = 14, bf16 = 30

    var blockSize: Int { Int(hk_block_size(rawValue)) }
    var blockBytes: Int { Int(hk_block_bytes(rawValue)) }
    var isFloat: Bool { self == .f32 || self == .f16 || self == .bf16 }
    var isKQuant: Bool { self == .q4_K || self == .q5_K || self == .q6_K }
    func rowBytes(_ cols: Int) -> Int { cols / blockSize * blockBytes }
}

func f16Bits(_ x: Float) -> UInt16 { Float16(x).bitPattern }
func f16Value(_ h: UInt16) -> Float { Float(Float16(bitPattern: h)) }
func bf16Value(_ h: UInt16) -> Float { Float(bitPattern: UInt32(h) << 16) }

private func putU16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) {
    b[at] = UInt8(v & 0xFF)
    b[at + 1] = UInt8(v >> 8)
}

private func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }

/// `rows` random rows of `type`: random quant bits with finite, moderate f16 scales.
func randomMatrix(_ type: KType, rows: Int, cols: Int, rng: inout KRNG) -> [UInt8] {
    let rb = type.rowBytes(cols)
    var bytes = [UInt8](repeating: 0, count: rb * rows)
    switch type {
    case .f32:
        let v = rng.floats(rows * cols)
        bytes.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(start: v, count: v.count * 4)) }
        return bytes
    case .f16, .bf16:
        for i in 0..<(rows * cols) {
            let x = rng.float()
            putU16(&bytes, 2 * i, type == .f16 ? f16Bits(x) : UInt16(x.bitPattern >> 16))
        }
        return bytes
    default:
        break
    }
    for i in 0..<bytes.count { bytes[i] = rng.byte() }
    // Overwrite the f16 scale fields (positions per ggml layout) with sane values.
    let nBlocks = rows * cols / type.blockSize
    for blk in 0..<nBlocks {
        let o = blk * type.blockBytes
        let d = f16Bits(0.002 + 0.02 * abs(rng.float()))
        let m = f16Bits(0.05 * rng.float())
        switch type {
        case .q6_K:
            putU16(&bytes, o + 208, d)
        case .q4_1, .q5_1, .q4_K, .q5_K:
            putU16(&bytes, o, d)
            putU16(&bytes, o + 2, m)
        default:
            putU16(&bytes, o, d)
        }
    }
    return bytes
}

/// k-quant 6-bit scale and min of sub-block j (0..<8), unpacked from the 12 scale bytes at `s`.
private func scaleMin(_ b: [UInt8], _ s: Int, _ j: Int) -> (Float, Float) {
    if j < 4 { return (Float(b[s + j] & 63), Float(b[s + j + 4] & 63)) }
    let sc = (b[s + j + 4] & 0x0F) | ((b[s + j - 4] >> 6) << 4)
    let m = (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4)
    return (Float(sc), Float(m))
}

/// Element-by-element dequantization written from the ggml block definitions.
func naiveDequantize(_ type: KType, _ b: [UInt8], offset: Int = 0, count n: Int) -> [Float] {
    var out = [Float](repeating: 0, count: n)
    for e in 0..<n {
        let blk = e / type.blockSize, i = e % type.blockSize
        let o = offset + blk * type.blockBytes
        switch type {
        case .f32:
            let p = offset + 4 * e
            out[e] = Float(bitPattern: UInt32(b[p]) | UInt32(b[p + 1]) << 8 | UInt32(b[p + 2]) << 16 | UInt32(b[p + 3]) << 24)
        case .f16: out[e] = f16Value(u16(b, offset + 2 * e))
        case .bf16: out[e] = bf16Value(u16(b, offset + 2 * e))
        case .q4_0:
            let q = i < 16 ? b[o + 2 + i] & 15 : b[o + 2 + i - 16] >> 4
            out[e] = Float(Int(q) - 8) * f16Value(u16(b, o))
        case .q4_1:
            let q = i < 16 ? b[o + 4 + i] & 15 : b[o + 4 + i - 16] >> 4
            out[e] = Float(q) * f16Value(u16(b, o)) + f16Value(u16(b, o + 2))
        case .q5_0, .q5_1:
            let hOff = type == .q5_0 ? 2 : 4
            let qh = UInt32(b[o + hOff]) | UInt32(b[o + hOff + 1]) << 8 | UInt32(b[o + hOff + 2]) << 16 | UInt32(b[o + hOff + 3]) << 24
            let lo = i < 16 ? b[o + hOff + 4 + i] & 15 : b[o + hOff + 4 + i - 16] >> 4
            let q = Int(lo) | Int((qh >> UInt32(i)) & 1) << 4
            out[e] = type == .q5_0
                ? Float(q - 16) * f16Value(u16(b, o))
                : Float(q) * f16Value(u16(b, o)) + f16Value(u16(b, o + 2))
        case .q8_0:
            out[e] = Float(Int8(bitPattern: b[o + 2 + i])) * f16Value(u16(b, o))
        case .q4_K, .q5_K:
            // 4 chunks of 64: 32 low nibbles (sub-block 2c) then 32 high nibbles (sub-block 2c+1).
            let c = i / 64, w = i % 64, sb = i / 32
            let qsOff = type == .q4_K ? 16 : 48
            let byte = b[o + qsOff + c * 32 + w % 32]
            var q = Int(w < 32 ? byte & 15 : byte >> 4)
            if type == .q5_K { q += Int((b[o + 16 + i % 32] >> UInt8(sb)) & 1) << 4 }
            let (sc, m) = scaleMin(b, o + 4, sb)
            out[e] = f16Value(u16(b, o)) * sc * Float(q) - f16Value(u16(b, o + 2)) * m
        case .q6_K:
            // 2 halves of 128; each: 4 groups of 32 from ql (low/high nibbles) and 2 bits of qh.
            let half = i / 128, w = i % 128, l = w % 32, g = w / 32
            let qlByte = b[o + half * 64 + l + (g & 1) * 32]
            let lo = g < 2 ? qlByte & 15 : qlByte >> 4
            let hi = (b[o + 128 + half * 32 + l] >> UInt8(2 * g)) & 3
            let q = Int(lo | hi << 4) - 32
            let sc = Float(Int8(bitPattern: b[o + 192 + half * 8 + l / 16 + 2 * g]))
            out[e] = f16Value(u16(b, o + 208)) * sc * Float(q)
        }
    }
    return out
}

/// Runs `body` with a fresh pool capped at `level`.
func withPool<R>(threads: Int, level: Int32, _ body: (OpaquePointer) throws -> R) rethrows -> R {
    let pool = hk_pool_create(Int32(threads))!
    defer { hk_pool_destroy(pool) }
    hk_pool_set_simd_level(pool, level)
    return try body(pool)
}

/// SIMD levels to test: scalar always, AVX2 when the CPU has it.
let simdLevels: [Int32] = Array(0...hk_simd_level())
