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
                                                  v: c.f16 ? vhp.baseAddress : vfp.baseAddress, n_kv: Int64(n), pos: 0)
                                }
                                let rc = withPool(threads: threads, level: level) { pool in
                                    hk_attention(pool, queries, Int64(queries.count), Int64(c.nHead), Int64(c.nKVHead),
                                                 Int64(c.headDim), c.f16 ? KType.f16.rawValue : KType.f32.rawValue, scale, c.softcap)
                                }
                                #expect(rc == 0)
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
                                          k: kp.baseAddress, v: vp.baseAddress, n_kv: Int64(item.1), pos: 0)
                        }
                        let rc = withPool(threads: threads, level: level) { pool in
                            hk_attention(pool, queries, Int64(queries.count), Int64(nHead), Int64(nKVHead), Int64(headDim),
                                         KType.f16.rawValue, scale, 0)
                        }
                        #expect(rc == 0)
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

    /// Batches shaped like the transformer's calls: prompts (causal, from position 0 or
    /// continuing a cached prefix), sliding windows, decode at depth, several sequences mixed.
    struct BatchCase: Sendable, CustomStringConvertible {
        /// One query: sequence, position, first attended position.
        struct Q: Sendable { var seq: Int, pos: Int, first: Int }
        var name: String
        var nHead: Int, nKVHead: Int, headDim: Int, f16: Bool, softcap: Float
        var queries: [Q]
        var description: String { "\(name): h\(nHead)/kv\(nKVHead) d\(headDim) \(f16 ? "f16" : "f32") cap \(softcap), \(queries.count) queries" }

        /// Tokens `from ..< to` of sequence `seq`, causal (window nil) or in a sliding window.
        static func prompt(_ seq: Int, _ from: Int, _ to: Int, window: Int? = nil) -> [Q] {
            (from..<to).map { p in Q(seq: seq, pos: p, first: window.map { max(0, p - $0 + 1) } ?? 0) }
        }
    }

    static let batchCases: [BatchCase] = [
        BatchCase(name: "prompt", nHead: 9, nKVHead: 3, headDim: 64, f16: true, softcap: 0,
                  queries: BatchCase.prompt(0, 0, 300)),
        BatchCase(name: "chunk after a cached prefix, GQA 7", nHead: 14, nKVHead: 2, headDim: 64, f16: true, softcap: 0,
                  queries: BatchCase.prompt(0, 290, 420)),
        BatchCase(name: "decode at depth, 8 sequences, GQA 6", nHead: 12, nKVHead: 2, headDim: 128, f16: true, softcap: 0,
                  queries: (0..<8).map { BatchCase.Q(seq: $0, pos: [1000, 0, 513, 255, 256, 700, 64, 31][$0], first: 0) }),
        BatchCase(name: "one decode at depth", nHead: 9, nKVHead: 3, headDim: 64, f16: true, softcap: 0,
                  queries: [BatchCase.Q(seq: 0, pos: 1500, first: 0)]),
        BatchCase(name: "sliding window 48, MQA", nHead: 4, nKVHead: 1, headDim: 256, f16: true, softcap: 0,
                  queries: BatchCase.prompt(0, 0, 160, window: 48)),
        BatchCase(name: "window 64 + softcap, f32", nHead: 8, nKVHead: 4, headDim: 32, f16: false, softcap: 20,
                  queries: BatchCase.prompt(0, 30, 140, window: 64)),
        BatchCase(name: "MHA, odd head_dim (scalar path)", nHead: 4, nKVHead: 4, headDim: 40, f16: true, softcap: 0,
                  queries: BatchCase.prompt(0, 0, 70)),
        BatchCase(name: "mixed sequences", nHead: 9, nKVHead: 3, headDim: 64, f16: true, softcap: 0,
                  queries: BatchCase.prompt(0, 0, 40) + [BatchCase.Q(seq: 1, pos: 600, first: 0)] + BatchCase.prompt(2, 100, 140)
                      + BatchCase.prompt(0, 40, 45) + [BatchCase.Q(seq: 1, pos: 601, first: 0)]),
    ]

    /// Every query against naive attention in double precision, at every SIMD level and 1 or 2
    /// threads; and each query's result equal bit for bit to the same query attended alone.
    @Test("tiled batches match naive attention, and each query its result alone", arguments: batchCases)
    func batches(c: BatchCase) {
        var rng = KRNG(UInt64(c.queries.count * 7 + c.headDim))
        let row = c.nKVHead * c.headDim, qn = c.nHead * c.headDim, group = c.nHead / c.nKVHead
        let seqs = c.queries.map(\.seq).max()! + 1, capacity = c.queries.map(\.pos).max()! + 1
        // One cache buffer per sequence, `capacity` rows each.
        var kf = rng.floats(seqs * capacity * row, scale: 2), vf = rng.floats(seqs * capacity * row)
        if c.f16 {
            kf = kf.map { f16Value(f16Bits($0)) }
            vf = vf.map { f16Value(f16Bits($0)) }
        }
        let kh = kf.map(f16Bits), vh = vf.map(f16Bits)
        let q = rng.floats(c.queries.count * qn)
        let scale = 1 / Float(c.headDim).squareRoot()

        var ref = [Double](repeating: 0, count: c.queries.count * qn)
        for (qi, query) in c.queries.enumerated() {
            let base = query.seq * capacity * row
            for h in 0..<c.nHead {
                let g = h / group
                var s = (query.first...query.pos).map { j -> Double in
                    var dot = 0.0
                    for d in 0..<c.headDim { dot += Double(q[qi * qn + h * c.headDim + d]) * Double(kf[base + j * row + g * c.headDim + d]) }
                    dot *= Double(scale)
                    return c.softcap > 0 ? Double(c.softcap) * tanh(dot / Double(c.softcap)) : dot
                }
                let m = s.max()!
                s = s.map { exp($0 - m) }
                let sum = s.reduce(0, +)
                for d in 0..<c.headDim {
                    var o = 0.0
                    for (n, j) in (query.first...query.pos).enumerated() { o += s[n] / sum * Double(vf[base + j * row + g * c.headDim + d]) }
                    ref[qi * qn + h * c.headDim + d] = o
                }
            }
        }

        /// Attends the queries `indices` in one call; returns their outputs in order.
        func attend(_ indices: [Int], threads: Int, level: Int32) -> [Float] {
            var out = [Float](repeating: .nan, count: indices.count * qn)
            var rc: Int32 = -2
            q.withUnsafeBufferPointer { qp in
                out.withUnsafeMutableBufferPointer { op in
                    kh.withUnsafeBytes { khp in vh.withUnsafeBytes { vhp in kf.withUnsafeBytes { kfp in vf.withUnsafeBytes { vfp in
                        let kp = c.f16 ? khp.baseAddress! : kfp.baseAddress!, vp = c.f16 ? vhp.baseAddress! : vfp.baseAddress!
                        let eb = c.f16 ? 2 : 4
                        let queries = indices.enumerated().map { n, qi -> hk_attn_query in
                            let query = c.queries[qi]
                            let offset = (query.seq * capacity + query.first) * row * eb
                            return hk_attn_query(q: qp.baseAddress! + qi * qn, out: op.baseAddress! + n * qn, k: kp + offset, v: vp + offset,
                                                 n_kv: Int64(query.pos - query.first + 1), pos: Int64(query.first))
                        }
                        rc = withPool(threads: threads, level: level) { pool in
                            hk_attention(pool, queries, Int64(queries.count), Int64(c.nHead), Int64(c.nKVHead), Int64(c.headDim),
                                         c.f16 ? KType.f16.rawValue : KType.f32.rawValue, scale, c.softcap)
                        }
                    } } } }
                }
            }
            #expect(rc == 0)
            return out
        }

        let all = Array(c.queries.indices)
        for level in simdLevels {
            let alone = all.flatMap { attend([$0], threads: 1, level: level) }
            for threads in [1, 2] {
                let out = attend(all, threads: threads, level: level)
                let err = zip(out, ref).map { abs(Double($0) - $1) }.max()!
                #expect(err <= 2e-5, "\(c) level \(level) threads \(threads): max error \(err)")
                let differing = all.filter { qi in (0..<qn).contains { out[qi * qn + $0].bitPattern != alone[qi * qn + $0].bitPattern } }
                #expect(differing.isEmpty, "\(c) level \(level) threads \(threads): queries \(differing.prefix(5)) differ from alone")
            }
        }
    }

    @Test("invalid shapes are refused")
    func invalidShapes() {
        var q = [Float](repeating: 1, count: 8), out = [Float](repeating: 0, count: 8), kv = [Float](repeating: 1, count: 8)
        q.withUnsafeMutableBufferPointer { qp in out.withUnsafeMutableBufferPointer { op in kv.withUnsafeMutableBufferPointer { kvp in
            var query = hk_attn_query(q: qp.baseAddress, out: op.baseAddress, k: kvp.baseAddress, v: kvp.baseAddress, n_kv: 1, pos: 0)
            withPool(threads: 1, level: hk_simd_level()) { pool in
                #expect(hk_attention(pool, &query, 1, 3, 2, 8, KType.f32.rawValue, 1, 0) == -1)  // 3 heads on 2 KV heads
                #expect(hk_attention(pool, &query, 1, 1, 1, 8, KType.q8_0.rawValue, 1, 0) == -1)  // no such cache type
                #expect(hk_attention(pool, &query, 1, 1, 1, 8, KType.f32.rawValue, 1, 0) == 0)
            }
        } } }
        #expect(zip(out, kv).allSatisfy { $0 == $1 })  // one position: its value row
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
