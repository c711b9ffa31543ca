// Elementwise kernels, normalisation, softmax, RoPE and KV stores against naive formulas.
import CKernels
import Foundation
import Testing

@Suite("Kernels: elementwise ops")
struct KernelsOpsTests {
    static func close(_ a: [Float], _ b: [Double], rel: Double, abs absTol: Double = 1e-6) -> Bool {
        zip(a, b).allSatisfy { Swift.abs(Double($0) - $1) <= rel * Swift.abs($1) + absTol }
    }

    @Test("rmsnorm with and without weight, in place")
    func rmsnorm() {
        var rng = KRNG(11)
        let n = 67, T = 3
        let x = rng.floats(n * T, scale: 3), w = rng.floats(n)
        for level in simdLevels {
            let ops = hk_ops_for_level(level)!.pointee
            for useWeight in [true, false] {
                var ref = [Double](repeating: 0, count: n * T)
                for t in 0..<T {
                    let row = x[(t * n)..<((t + 1) * n)].map(Double.init)
                    let s = 1 / sqrt(row.map { $0 * $0 }.reduce(0, +) / Double(n) + 1e-5)
                    for i in 0..<n { ref[t * n + i] = row[i] * s * (useWeight ? Double(w[i]) : 1) }
                }
                var y = x  // in place
                y.withUnsafeMutableBufferPointer { p in
                    w.withUnsafeBufferPointer { wp in
                        ops.rmsnorm(p.baseAddress, useWeight ? wp.baseAddress : nil, p.baseAddress, Int64(n), Int64(T), 1e-5)
                    }
                }
                #expect(Self.close(y, ref, rel: 1e-5), "level \(level) weight \(useWeight)")
            }
        }
    }

    @Test("silu·u, gelu·u, axpy, scale")
    func elementwise() {
        var rng = KRNG(12)
        let n = 203
        var g = rng.floats(n, scale: 8)
        g[0] = -100; g[1] = 100; g[2] = 0  // saturation and zero
        let u = rng.floats(n, scale: 2)
        let silu = (0..<n).map { Double(g[$0]) / (1 + exp(-Double(g[$0]))) * Double(u[$0]) }
        let gelu = (0..<n).map { i -> Double in
            let x = Double(g[i])
            return 0.5 * x * (1 + tanh(0.7978845608028654 * x * (1 + 0.044715 * x * x))) * Double(u[i])
        }
        for level in simdLevels {
            let ops = hk_ops_for_level(level)!.pointee
            var y = [Float](repeating: 0, count: n)
            ops.silu_mul(g, u, &y, Int64(n))
            #expect(Self.close(y, silu, rel: 2e-6, abs: 1e-6), "silu level \(level)")
            ops.gelu_mul(g, u, &y, Int64(n))
            #expect(Self.close(y, gelu, rel: 2e-6, abs: 1e-6), "gelu level \(level)")
            var acc = u
            ops.axpy(0.75, g, &acc, Int64(n))
            #expect(Self.close(acc, (0..<n).map { Double(u[$0]) + 0.75 * Double(g[$0]) }, rel: 1e-6))
            var s = g
            ops.scale(&s, -1.5, Int64(n))
            #expect(Self.close(s, g.map { -1.5 * Double($0) }, rel: 1e-7))
        }
        // Public entry points dispatch to the best level.
        var y = [Float](repeating: 0, count: n)
        hk_silu_mul(g, u, &y, Int64(n))
        #expect(Self.close(y, silu, rel: 2e-6, abs: 1e-6))
        hk_gelu_mul(g, u, &y, Int64(n))
        #expect(Self.close(y, gelu, rel: 2e-6, abs: 1e-6))
    }

    @Test("softmax is stable for large inputs")
    func softmax() {
        var rng = KRNG(13)
        for n in [1, 7, 1000] {
            let x = rng.floats(n, scale: 30).map { $0 + 500 }  // overflow without max subtraction
            let m = Double(x.max()!)
            let e = x.map { exp(Double($0) - m) }
            let ref = e.map { $0 / e.reduce(0, +) }
            for level in simdLevels {
                var y = x
                hk_ops_for_level(level)!.pointee.softmax(&y, Int64(n))
                #expect(Self.close(y, ref, rel: 1e-5, abs: 1e-9), "n \(n) level \(level)")
            }
        }
    }

    @Test("store_row to F32 and F16")
    func storeRow() {
        var rng = KRNG(14)
        let n = 77
        let x = rng.floats(n, scale: 10)
        for level in simdLevels {
            let ops = hk_ops_for_level(level)!.pointee
            var h = [UInt16](repeating: 0, count: n)
            ops.store_row(KType.f16.rawValue, x, &h, Int64(n))
            #expect(h == x.map(f16Bits), "level \(level)")
            var f = [Float](repeating: 0, count: n)
            ops.store_row(KType.f32.rawValue, x, &f, Int64(n))
            #expect(f == x)
        }
    }

    /// Naive RoPE written from the formula theta_i = pos · freq_scale · base^(-2i/n_rot) / f_i.
    static func naiveRope(_ x: [Float], heads: Int, headDim: Int, nRot: Int, pos: Int, base: Double,
                          freqScale: Double, factors: [Float]? = nil, neox: Bool) -> [Double] {
        var y = x.map(Double.init)
        for h in 0..<heads {
            for i in 0..<(nRot / 2) {
                let theta = Double(pos) * freqScale * pow(base, -2 * Double(i) / Double(nRot)) / Double(factors?[i] ?? 1)
                let (a, b) = neox ? (h * headDim + i, h * headDim + i + nRot / 2) : (h * headDim + 2 * i, h * headDim + 2 * i + 1)
                let x0 = Double(x[a]), x1 = Double(x[b])
                y[a] = x0 * cos(theta) - x1 * sin(theta)
                y[b] = x0 * sin(theta) + x1 * cos(theta)
            }
        }
        return y
    }

    @Test("rope, both layouts, partial rotation", arguments: [false, true])
    func rope(neox: Bool) {
        var rng = KRNG(15)
        for (headDim, nRot, pos, base, fs) in [(64, 64, 0, 10000.0, 1.0), (64, 64, 37, 10000.0, 1.0),
                                               (64, 32, 511, 100000.0, 0.5), (128, 128, 2047, 500000.0, 1.0)] {
            let heads = 3
            let x = rng.floats(heads * headDim)
            var y = x
            hk_rope(&y, Int64(heads), Int64(headDim), Int64(nRot), Int64(pos), Float(base), Float(fs), nil, neox ? 1 : 0)
            let ref = Self.naiveRope(x, heads: heads, headDim: headDim, nRot: nRot, pos: pos, base: base, freqScale: fs, neox: neox)
            // Float theta at position ~2000 carries ~1e-4 absolute angle error, as in llama.cpp.
            let tol = 2e-6 * Double(max(pos, 1))
            #expect(zip(y, ref).allSatisfy { abs(Double($0) - $1) <= tol + 1e-6 }, "dim \(headDim) rot \(nRot) pos \(pos)")
            // Dimensions past n_rot are untouched.
            for h in 0..<heads { #expect(y[(h * headDim + nRot)..<((h + 1) * headDim)] == x[(h * headDim + nRot)..<((h + 1) * headDim)]) }
        }
    }

    /// Llama 3.1's frequency factors, computed here in Double from the formula of llama.cpp's
    /// converter (`rope_type == "llama3"`): 1 for wavelengths below original/high, `factor` above
    /// original/low, a smooth blend between.
    static func llama3Factors(headDim: Int, base: Double, factor: Double = 8, low: Double = 1, high: Double = 4,
                              original: Double = 8192) -> [Float] {
        (0..<(headDim / 2)).map { i in
            let wavelength = 2 * Double.pi * pow(base, 2 * Double(i) / Double(headDim))
            if wavelength < original / high { return 1 }
            if wavelength > original / low { return Float(factor) }
            let smooth = (original / wavelength - low) / (high - low)
            return Float(1 / ((1 - smooth) / factor + smooth))
        }
    }

    @Test("rope with frequency factors (Llama 3.1 rope_freqs) against the naive formula", arguments: [false, true])
    func ropeFrequencyFactors(neox: Bool) {
        var rng = KRNG(16)
        for (headDim, pos, base, fs) in [(64, 5, 500000.0, 1.0), (64, 3000, 500000.0, 1.0), (128, 9000, 500000.0, 1.0),
                                         (64, 700, 100000.0, 0.25)] {
            let heads = 2
            let factors = Self.llama3Factors(headDim: headDim, base: base)
            // Every regime of the formula is exercised: unscaled, fully scaled and blended pairs.
            #expect(factors.contains(1) && factors.contains(8) && factors.contains { $0 > 1 && $0 < 8 })
            let x = rng.floats(heads * headDim)
            var y = x, plain = x
            factors.withUnsafeBufferPointer { f in
                hk_rope(&y, Int64(heads), Int64(headDim), Int64(headDim), Int64(pos), Float(base), Float(fs), f.baseAddress, neox ? 1 : 0)
            }
            hk_rope(&plain, Int64(heads), Int64(headDim), Int64(headDim), Int64(pos), Float(base), Float(fs), nil, neox ? 1 : 0)
            let ref = Self.naiveRope(x, heads: heads, headDim: headDim, nRot: headDim, pos: pos, base: base, freqScale: fs,
                                     factors: factors, neox: neox)
            let tol = 2e-6 * Double(max(pos, 1)) + 1e-6
            #expect(zip(y, ref).allSatisfy { abs(Double($0) - $1) <= tol }, "dim \(headDim) pos \(pos)")
            // The factors change the rotation (the bug they replace: silently ignored) once the
            // scaled low-frequency pairs have turned far enough.
            if pos >= 700 { #expect(zip(y, plain).map { abs($0 - $1) }.max()! > 0.01) }
        }
        // All-ones factors are the unscaled rotation, bit for bit.
        let x = rng.floats(2 * 64), ones = [Float](repeating: 1, count: 32)
        var a = x, b = x
        ones.withUnsafeBufferPointer { hk_rope(&a, 2, 64, 64, 1234, 10000, 1, $0.baseAddress, neox ? 1 : 0) }
        hk_rope(&b, 2, 64, 64, 1234, 10000, 1, nil, neox ? 1 : 0)
        #expect(a == b)
    }
}
