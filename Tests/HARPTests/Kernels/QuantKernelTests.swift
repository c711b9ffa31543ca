// Block formats: dequantization against the naive unpacker, quantizer properties, half precision.
import CKernels
import Testing

@Suite("Kernels: block formats")
struct KernelsQuantTests {
    @Test("dequantize matches the naive unpacker", arguments: KType.allCases)
    func dequantize(type: KType) {
        var rng = KRNG(UInt64(type.rawValue) + 1)
        let cols = 512
        let raw = randomMatrix(type, rows: 1, cols: cols, rng: &rng)
        let expected = naiveDequantize(type, raw, count: cols)
        #expect(hk_type_supported(type.rawValue) == 1)
        for level in simdLevels {
            let ops = hk_ops_for_level(level)!.pointee
            var got = [Float](repeating: .nan, count: cols)
            ops.dequantize_row(type.rawValue, raw, &got, Int64(cols))
            #expect(got == expected, "\(type) level \(level)")
        }
        var got = [Float](repeating: .nan, count: cols)
        hk_dequantize_row(type.rawValue, raw, &got, Int64(cols))
        #expect(got == expected)
    }

    @Test("type traits")
    func traits() {
        #expect(hk_block_size(KType.q4_1.rawValue) == 32 && hk_block_bytes(KType.q4_1.rawValue) == 20)
        #expect(hk_block_size(KType.q6_K.rawValue) == 256 && hk_block_bytes(KType.q6_K.rawValue) == 210)
        #expect(hk_block_bytes(KType.q4_K.rawValue) == 144 && hk_block_bytes(KType.q5_K.rawValue) == 176)
        #expect(hk_block_bytes(KType.q5_0.rawValue) == 22 && hk_block_bytes(KType.q8_0.rawValue) == 34)
        #expect(hk_block_size(99) == 0 && hk_type_supported(99) == 0)
    }

    /// Quantize → dequantize stays within half a quantization step, with ggml's scale choice.
    @Test("quantize round trip", arguments: [KType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .f16, .bf16, .f32])
    func quantize(type: KType) {
        var rng = KRNG(77 + UInt64(type.rawValue))
        let n = 256
        var x = rng.floats(n, scale: 3)
        x[5] = 0  // exact zeros survive the symmetric formats
        #expect(hk_type_quantizable(type.rawValue) == 1)
        var raw = [UInt8](repeating: 0, count: type.rowBytes(n))
        hk_quantize_row(type.rawValue, x, &raw, Int64(n))
        let y = naiveDequantize(type, raw, count: n)
        for blk in 0..<(n / type.blockSize) where !type.isFloat {
            let v = x[(blk * 32)..<(blk * 32 + 32)]
            let amax = v.map(abs).max()!, lo = v.min()!, hi = v.max()!
            let d = f16Value(UInt16(raw[blk * type.blockBytes]) | UInt16(raw[blk * type.blockBytes + 1]) << 8)
            let step: Float
            switch type {
            case .q8_0: step = amax / 127
            case .q4_0: step = amax / 8
            case .q5_0: step = amax / 16
            case .q4_1: step = (hi - lo) / 15
            default: step = (hi - lo) / 31
            }
            #expect(abs(abs(d) - step) <= step * 1e-3, "\(type) block \(blk) scale")
            // Half a step; symmetric formats clamp the extreme opposite the scale's sign by a whole
            // step. Plus f16 rounding of d (and m) times the largest level.
            let steps: Float = type == .q4_0 || type == .q5_0 ? 1 : 0.5
            for i in (blk * 32)..<(blk * 32 + 32) {
                #expect(abs(y[i] - x[i]) <= step * steps + amax * 2e-3 + 1e-6, "\(type) element \(i)")
            }
        }
        if type.isFloat {
            let tol: Float = type == .f32 ? 0 : (type == .f16 ? 1e-3 : 8e-3)
            for i in 0..<n { #expect(abs(y[i] - x[i]) <= tol * max(abs(x[i]), 1e-3)) }
        }
        if type != .q4_1 && type != .q5_1 { #expect(y[5] == 0) }  // offset formats need not hit 0
    }

    @Test("Q8_0 quantizer matches ggml's reference bit for bit")
    func q8Exact() {
        let x: [Float] = (0..<32).map { Float($0) - 10.3 }
        var raw = [UInt8](repeating: 0, count: 34)
        hk_quantize_row(KType.q8_0.rawValue, x, &raw, 32)
        let d = x.map(abs).max()! / 127
        #expect(UInt16(raw[0]) | UInt16(raw[1]) << 8 == f16Bits(d))
        for i in 0..<32 { #expect(Int8(bitPattern: raw[2 + i]) == Int8((x[i] * (1 / d)).rounded())) }
    }

    @Test("half precision conversions")
    func halves() {
        var rng = KRNG(5)
        let specials: [Float] = [0, -0.0, 1, -2.5, 65504, 1e-7, 6.1e-5, 3e-8, .infinity, -.infinity, 1e6]
        for x in specials + rng.floats(2000, scale: 100) {
            #expect(hk_f32_to_f16(x) == f16Bits(x), "\(x)")
            let h = f16Bits(x)
            #expect(hk_f16_to_f32(h) == f16Value(h))
        }
        #expect(hk_f16_to_f32(f16Bits(.nan)).isNaN)
        for h in stride(from: 0, through: 0xFFFF, by: 7).map(UInt16.init) where !f16Value(h).isNaN {
            #expect(hk_f16_to_f32(h) == f16Value(h))
        }
        #expect(hk_bf16_to_f32(0x3FC0) == 1.5)
    }
}
