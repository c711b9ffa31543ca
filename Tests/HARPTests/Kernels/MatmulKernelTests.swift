// hk_matmul against dequantize + float dot, for every type, small and large T, every SIMD level.
import CKernels
import Testing

@Suite("Kernels: matmul")
struct KernelsMatmulTests {
    /// Checks Y = X·Wᵀ with an error bound that covers int8 activation quantization: each activation
    /// moves by at most half a step (block amax / 254), so |err| ≤ Σ|w|·amax/254 per block.
    static func check(_ type: KType, rows: Int, cols: Int, T: Int, threads: Int, level: Int32, seed: UInt64) {
        var rng = KRNG(seed)
        let raw = randomMatrix(type, rows: rows, cols: cols, rng: &rng)
        let rb = type.rowBytes(cols)
        let w = (0..<rows).map { naiveDequantize(type, raw, offset: $0 * rb, count: cols) }
        // Strided X and Y catch stride mix-ups.
        let xs = cols + 3, ys = rows + 5
        let x = rng.floats(T * xs, scale: 2)
        var y = [Float](repeating: .nan, count: T * ys)
        withPool(threads: threads, level: level) { pool in
            hk_matmul(pool, type.rawValue, raw, Int64(rows), Int64(cols), x, Int64(xs), Int64(T), &y, Int64(ys))
        }
        // Quantized weights see int8 activations at every T.
        let qblock = type.isFloat ? 0 : (type.isKQuant ? 256 : 32)
        for t in 0..<T {
            let xt = Array(x[(t * xs)..<(t * xs + cols)])
            let amax = qblock == 0 ? [] : stride(from: 0, to: cols, by: qblock).map { xt[$0..<($0 + qblock)].map(abs).max()! }
            for r in 0..<rows {
                var ref = 0.0, mag = 0.0, bound = 0.0
                for c in 0..<cols {
                    ref += Double(w[r][c]) * Double(xt[c])
                    mag += abs(Double(w[r][c]) * Double(xt[c]))
                    if qblock > 0 { bound += abs(Double(w[r][c])) * Double(amax[c / qblock]) / 254 }
                }
                let tol = bound * 1.01 + mag * 2e-5 + 1e-5
                let got = Double(y[t * ys + r])
                #expect(abs(got - ref) <= tol, "\(type) T=\(T) level \(level) t=\(t) r=\(r): \(got) vs \(ref)")
            }
            for r in rows..<ys { #expect(y[t * ys + r].isNaN, "wrote outside the row") }
        }
    }

    @Test("small T, every type and SIMD level", arguments: KType.allCases)
    func smallT(type: KType) {
        for level in simdLevels {
            for T in [1, 3, 8] {
                Self.check(type, rows: 19, cols: 512, T: T, threads: 2, level: level, seed: UInt64(T * 100) + UInt64(type.rawValue))
            }
        }
    }

    /// The quantized types of real k-quant models (Q4_K_M: Q4_K, Q6_K, some Q5_0/Q8_0; Q5_K_M: Q5_K)
    /// at every T the int8 kernels tile differently: T = 1 (row pairs), partial and full groups of
    /// activation rows (8 on AVX2, 16 on AVX-512) and the former sgemm threshold (32); 37 rows leave
    /// partial row pairs and chunks, 4 threads share them out.
    @Test("int8 kernels at every T and tiling edge", arguments: [KType.q4_K, .q5_K, .q6_K, .q5_0, .q8_0])
    func everyT(type: KType) {
        for level in simdLevels {
            for T in [1, 2, 3, 4, 7, 8, 16, 31, 32, 33, 64, 100] {
                Self.check(type, rows: 37, cols: 512, T: T, threads: T % 2 == 0 ? 2 : 4, level: level,
                           seed: UInt64(T * 1000) + UInt64(type.rawValue))
            }
        }
    }

    /// The k-quant kernels of every SIMD level reduce each super-block's integer sums exactly and
    /// then follow the scalar kernel's float order, and the activations quantize to the same bytes at
    /// every level, so every level gives the scalar result bit for bit.
    @Test("k-quant results are the same bits at every SIMD level", arguments: [KType.q4_K, .q5_K, .q6_K])
    func kquantLevelsAgree(type: KType) {
        var rng = KRNG(77 + UInt64(type.rawValue))
        let rows = 29, cols = 768
        let raw = randomMatrix(type, rows: rows, cols: cols, rng: &rng)
        for T in [1, 5, 40] {
            let x = rng.floats(T * cols, scale: 3)
            var results: [[Float]] = []
            for level in simdLevels {
                var y = [Float](repeating: .nan, count: T * rows)
                withPool(threads: 2, level: level) { pool in
                    hk_matmul(pool, type.rawValue, raw, Int64(rows), Int64(cols), x, Int64(cols), Int64(T), &y, Int64(rows))
                }
                results.append(y)
            }
            #expect(results.count >= 2, "needs a SIMD level besides scalar to compare")
            for (i, y) in results.enumerated().dropFirst() {
                let differ = (0..<y.count).filter { y[$0].bitPattern != results[0][$0].bitPattern }
                #expect(differ.isEmpty, "\(type) T=\(T) level \(i) differs from scalar at \(differ.prefix(5))")
            }
        }
    }

    @Test("large T (sgemm or int8 slabs, by level and type)", arguments: [KType.f32, .f16, .q4_0, .q4_1, .q8_0, .q6_K])
    func largeT(type: KType) {
        for level in simdLevels {
            for T in [33, 130] {
                Self.check(type, rows: 70, cols: 256, T: T, threads: 2, level: level, seed: 9 + UInt64(type.rawValue + Int32(T)))
            }
        }
    }

    /// Batched rows of the 32-element formats around the edges of the AVX-512 kernel's tiling: T just
    /// past a slab of eight activation rows, row counts that leave a partial group of eight weight
    /// rows, and chunks of several groups whose unpacked weights are reused by later slabs.
    @Test("batched rows across slab and row-group edges", arguments: [KType.q4_0, .q4_1, .q5_0, .q5_1, .q8_0])
    func slabEdges(type: KType) {
        for level in simdLevels {
            for (rows, T) in [(203, 9), (77, 17), (8, 16)] {
                Self.check(type, rows: rows, cols: 128, T: T, threads: 2, level: level, seed: UInt64(rows * T) + UInt64(type.rawValue))
            }
        }
    }

    @Test("thread counts and awkward row counts")
    func threads() {
        for threads in [1, 3] {
            Self.check(.q4_1, rows: 1, cols: 64, T: 2, threads: threads, level: hk_simd_level(), seed: 1)
            Self.check(.q8_0, rows: 133, cols: 96, T: 5, threads: threads, level: hk_simd_level(), seed: 2)
        }
    }

    /// A row's result may not depend on the batch it comes in (batched greedy decoding must give
    /// each sequence the tokens it gets alone): the probe row computed alone (T = 1) equals, bit for
    /// bit, the same row inside calls of T = 2...maxT random rows, at varying positions and thread
    /// counts. Quantized weights stay on the int8 kernels at every T (maxT 40 crosses the groups
    /// of 8 and 16 activation rows and the former sgemm threshold of 32); float weights stay below
    /// their sgemm threshold (16).
    @Test("each row of a batch equals its T = 1 result bit for bit", arguments: [
        (KType.q4_0, 20), (.q4_1, 20), (.q5_0, 20), (.q5_1, 20), (.q8_0, 20),
        (.q4_K, 40), (.q5_K, 40), (.q6_K, 40), (.f16, 15),
    ])
    func batchEqualsSingle(type: KType, maxT: Int) {
        var rng = KRNG(42 + UInt64(type.rawValue))
        let rows = 45, cols = type.isKQuant ? 512 : 160  // 45: partial row groups; 160: an odd block count
        let raw = randomMatrix(type, rows: rows, cols: cols, rng: &rng)
        let probe = rng.floats(cols, scale: 2)
        for level in simdLevels {
            var single = [Float](repeating: 0, count: rows)
            withPool(threads: 2, level: level) { pool in
                hk_matmul(pool, type.rawValue, raw, Int64(rows), Int64(cols), probe, Int64(cols), 1, &single, Int64(rows))
            }
            for T in 2...maxT {
                let at = (T * 7) % T
                var x = rng.floats(T * cols, scale: 2)
                x.replaceSubrange((at * cols)..<((at + 1) * cols), with: probe)
                var y = [Float](repeating: 0, count: T * rows)
                withPool(threads: T % 3 == 0 ? 1 : 2, level: level) { pool in
                    hk_matmul(pool, type.rawValue, raw, Int64(rows), Int64(cols), x, Int64(cols), Int64(T), &y, Int64(rows))
                }
                let mismatches = (0..<rows).filter { y[at * rows + $0].bitPattern != single[$0].bitPattern }
                #expect(mismatches.isEmpty, "\(type) level \(level) T=\(T) row \(at): rows \(mismatches) differ")
            }
        }
    }
}
