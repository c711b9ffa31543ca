// hk_attention against naive softmax attention; hk_parallel_for coverage.
import CKernels
import Foundation
import Testing

@Suite("Kernels: attention and pool")
struct KernelsAttentionTests {
    struct Case: Sendable, CustomStringConvertible {
        var nHead: Int, nKVHead: Int, headDim: Int, nKV: [Int], f16: Bool, softcap: Float
        var description: String { "h\(nHead)/kv\(nKVHead) d\(headDim) n\(nKV) \(f16 ? "f16" : "f32") cap \(softcap)" }
    }

    static let cases: [Case] = [
        Case(nHead: 9, nKVHead: 3, headDim: 64, nKV: [1, 2, 3, 70, 129], f16: false, softcap: 0),  // prefill-like
        Case(nHead: 9, nKVHead: 3, headDim: 64, nKV: [1000], f16: true, softcap: 0),  // long decode: split runs
        Case(nHead: 4, nKVHead: 4, headDim: 40, nKV: [0, 5, 300], f16: true, softcap: 0),  // odd head_dim, empty
        Case(nHead: 8, nKVHead: 2, headDim: 32, nKV: [17, 600], f16: false, softcap: 30),  // soft-capping
    ]

    @Test("attention matches naive softmax attention", arguments: cases)
    func attention(c: Case) {
        var rng = KRNG(UInt64(c.headDim * 31 + c.nKV.count))
        let row = c.nKVHead * c.headDim, qn = c.nHead * c.headDim
        let maxKV = max(c.nKV.max()!, 1)
        // One shared cache; each query attends to its first nKV positions.
        var kf = rng.floats(maxKV * row, scale: 2), vf = rng.floats(maxKV * row)
        if c.f16 {  // the reference sees the same rounded values the kernel reads
            kf = kf.map { f16Value(f16Bits($0)) }
            vf = vf.map { f16Value(f16Bits($0)) }
        }
        let kh = kf.map(f16Bits), vh = vf.map(f16Bits)
        let q = rng.floats(c.nKV.count * qn)
        let scale = 1 / Float(c.headDim).squareRoot()

        var ref = [Double](repeating: 0, count: c.nKV.count * qn)
        let group = c.nHead / c.nKVHead
        for (qi, n) in c.nKV.enumerated() {
            for h in 0..<c.nHead {
                let g = h / group
                var s = (0..<n).map { j -> Double in
                    var dot = 0.0
                    for d in 0..<c.headDim { dot += Double(q[qi * qn + h * c.headDim + d]) * Double(kf[j * row + g * c.headDim + d]) }
                    dot *= Double(scale)
                    return c.softcap > 0 ? Double(c.softcap) * tanh(dot / Double(c.softcap)) : dot
                }
                let m = s.max() ?? 0
                s = s.map { exp($0 - m) }
                let sum = s.reduce(0, +)
                for d in 0..<c.headDim {
                    var o = 0.0
                    for j in 0..<n { o += s[j] / sum * Double(vf[j * row + g * c.headDim + d]) }
                    ref[qi * qn + h * c.headDim + d] = o
                }
            }
        }

        for level in simdLevels {
            for threads in [1, 2] {
                var out = [Float](repeating: .nan, count: c.nKV.count * qn)
                q.withUnsafeBufferPointer { qp in
                    out.withUnsafeMutableBufferPointer { op in
                        kh.withUnsafeBytes { khp in vh.withUnsafeBytes { vhp in
                            kf.withUnsafeBytes { kfp in vf.withUnsafeBytes { vfp in
                                let queries = c.nKV.enumerated().map { qi, n in
                                    hk_attn_query(q: qp.baseAddress! + qi * qn, out: op.baseAddress! + qi * qn,
                                                  k: c.f16 ? khp.baseAddress : kfp.baseAddress,
                                                  v: c.f16 ? vhp.baseAddress : vfp.baseAddress, n_kv: Int64(n))
                                }
                                withPool(threads: threads, level: level) { pool in
                                    hk_attention(pool, queries, Int64(queries.count), Int64(c.nHead), Int64(c.nKVHead),
                                                 Int64(c.headDim), c.f16 ? KType.f16.rawValue : KType.f32.rawValue, scale, c.softcap)
                                }
                            } }
                        } }
                    }
                }
                let err = zip(out, ref).map { abs(Double($0) - $1) }.max()!
                #expect(err <= 2e-5, "\(c) level \(level) threads \(threads): max error \(err)")
            }
        }
    }

    /// A query's output may not depend on the batch it comes in: the probe query attended alone
    /// equals, bit for bit, the same query inside calls of 2...9 queries with random other
    /// lengths, at varying positions and thread counts, for lengths below, at and past one run.
    @Test("each query of a batch equals its result alone bit for bit", arguments: [100, 256, 257, 1100])
    func batchEqualsAlone(nKV: Int) {
        let nHead = 9, nKVHead = 3, headDim = 64, maxKV = 1100
        let row = nKVHead * headDim, qn = nHead * headDim
        var rng = KRNG(UInt64(nKV))
        let k = rng.floats(maxKV * row, scale: 2).map(f16Bits), v = rng.floats(maxKV * row).map(f16Bits)
        let probe = rng.floats(qn)
        let scale = 1 / Float(headDim).squareRoot()
        /// Attends queries (q, n_kv) on the shared cache; returns every query's output.
        func attend(_ items: [([Float], Int)], threads: Int, level: Int32) -> [[Float]] {
            let q = items.flatMap(\.0)
            var out = [Float](repeating: .nan, count: items.count * qn)
            q.withUnsafeBufferPointer { qp in
                out.withUnsafeMutableBufferPointer { op in
                    k.withUnsafeBytes { kp in v.withUnsafeBytes { vp in
                        let queries = items.enumerated().map { i, item in
                            hk_attn_query(q: qp.baseAddress! + i * qn, out: op.baseAddress! + i * qn,
                                          k: kp.baseAddress, v: vp.baseAddress, n_kv: Int64(item.1))
                        }
                        withPool(threads: threads, level: level) { pool in
                            hk_attention(pool, queries, Int64(queries.count), Int64(nHead), Int64(nKVHead), Int64(headDim),
                                         KType.f16.rawValue, scale, 0)
                        }
                    } }
                }
            }
            return (0..<items.count).map { Array(out[($0 * qn)..<(($0 + 1) * qn)]) }
        }
        for level in simdLevels {
            let alone = attend([(probe, nKV)], threads: 2, level: level)[0]
            for n in 2...9 {
                var items = (0..<n).map { _ in (rng.floats(qn), 1 + Int(rng.next() % UInt64(maxKV))) }
                let at = (n * 5) % n
                items[at] = (probe, nKV)
                let got = attend(items, threads: n % 2 == 0 ? 2 : 1, level: level)[at]
                #expect(zip(got, alone).allSatisfy { $0.bitPattern == $1.bitPattern },
                        "n_kv \(nKV) level \(level): query \(at) of \(n) differs from alone")
            }
        }
    }

    @Test("parallel_for runs every index exactly once", arguments: [1, 2, 3])
    func parallelFor(threads: Int) {
        let pool = hk_pool_create(Int32(threads))!
        defer { hk_pool_destroy(pool) }
        #expect(hk_pool_threads(pool) == Int32(threads))
        for n in [0, 1, 5, 1001, 100_003] {
            let counts = UnsafeMutablePointer<Int32>.allocate(capacity: max(n, 1))
            counts.initialize(repeating: 0, count: max(n, 1))
            defer { counts.deallocate() }
            // Each index owns its slot, so plain increments are race-free unless an index repeats.
            hk_parallel_for(pool, Int64(n), { ctx, i in
                ctx!.assumingMemoryBound(to: Int32.self)[Int(i)] += 1
            }, counts)
            #expect((0..<n).allSatisfy { counts[$0] == 1 }, "n \(n)")
        }
    }

    /// Thousands of tiny back-to-back operations: joins, closes and sleeps must never lose or
    /// repeat an index, nor hang.
    @Test("back-to-back tiny operations")
    func backToBack() {
        let pool = hk_pool_create(2)!
        defer { hk_pool_destroy(pool) }
        let n = 5, rounds = 3000
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        counts.initialize(repeating: 0, count: n)
        defer { counts.deallocate() }
        for _ in 0..<rounds {
            hk_parallel_for(pool, Int64(n), { ctx, i in
                ctx!.assumingMemoryBound(to: Int32.self)[Int(i)] += 1
            }, counts)
        }
        #expect((0..<n).allSatisfy { counts[$0] == Int32(rounds) })
    }
}
