import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// A tokenizer whose token `i` (< 256) is the single byte `i`: a multi-byte character is always
/// split across tokens. Token 256 ends generation.
struct ByteTokenizer: Tokenizer {
    var vocabularySize: Int { 257 }
    var endOfGenerationIDs: Set<Int32> { [256] }
    var addBOS: Bool { false }
    var bosID: Int32? { nil }
    var eosID: Int32? { 256 }
    func encode(_ text: String, parseSpecial: Bool) -> [Int32] { text.utf8.map { Int32($0) } }
    func tokenPiece(_ id: Int32) -> [UInt8] { id < 256 ? [UInt8(id)] : [] }
    func tokenType(_ id: Int32) -> TokenType { id < 256 ? .normal : .control }
    func tokenID(forText text: String) -> Int32? { nil }
}

/// The stop-string matcher and the shared decoding loop against a naive reference.
@Suite("Stop strings")
struct StopMatcherTests {
    /// The reference: the first end position where a stop string ends, cut before the longest one
    /// ending there; checked by brute force over every prefix.
    static func naive(_ text: String, _ stops: [String]) -> (text: String, stop: String?) {
        let bytes = Array(text.utf8)
        for end in 0...bytes.count {
            let ending = stops.filter { s in
                let b = Array(s.utf8)
                return b.count <= end && Array(bytes[(end - b.count)..<end]) == b
            }
            if let longest = ending.max(by: { $0.utf8.count < $1.utf8.count }) {
                return (String(decoding: bytes[..<(end - longest.utf8.count)], as: UTF8.self), longest)
            }
        }
        return (text, nil)
    }

    /// Characters of 1 to 4 UTF-8 bytes, few enough that stops overlap and recur.
    static let alphabet: [Character] = ["a", "b", "a", "b", "c", "é", "€", "😀"]

    static func randomString(_ g: inout SplitMix64, length: Int) -> String {
        String((0..<length).map { _ in alphabet[Int(g.next() % UInt64(alphabet.count))] })
    }

    static func randomStops(_ g: inout SplitMix64) -> [String] {
        var stops: [String] = []
        for _ in 0..<(1 + Int(g.next() % 4)) {
            let s = randomString(&g, length: 1 + Int(g.next() % 5))
            stops.append(s)
            // A stop that extends another one or shares its prefix.
            if g.next() % 2 == 0 { stops.append(s + randomString(&g, length: 1 + Int(g.next() % 3))) }
        }
        return stops
    }

    @Test("matcher fed random pieces equals the reference on 3,000 random texts and stop sets")
    func randomPieces() throws {
        var g = SplitMix64(seed: 7)
        var matches = 0
        for _ in 0..<3000 {
            let text = Self.randomString(&g, length: Int(g.next() % 40))
            let stops = Self.randomStops(&g)
            var matcher = StopMatcher(try StopStrings(stops))
            var delivered = ""
            var rest = Substring(text)
            while !rest.isEmpty {
                let n = 1 + Int(g.next() % 4)
                delivered += matcher.feed(String(rest.prefix(n)))
                rest = rest.dropFirst(n)
            }
            delivered += matcher.finish()
            let expected = Self.naive(text, stops)
            #expect(delivered == expected.text, "text \(text.debugDescription) stops \(stops)")
            #expect(matcher.matched == expected.stop, "text \(text.debugDescription) stops \(stops)")
            if expected.stop != nil { matches += 1 }
        }
        #expect(matches > 500, "the random cases must exercise matches (\(matches))")
    }

    /// The decoding loop with scripted tokens: greedy over one-hot logits picks each byte token in turn.
    static func decode(_ bytes: [UInt8], stops: [String], maxTokens: Int, endWithEOG: Bool) throws -> ([String], SequenceDecoder.Step) {
        let (_, continuation) = AsyncThrowingStream<GenerationEvent, any Error>.makeStream()
        let request = QueuedRequest(id: 1, promptTokens: [0], maxTokens: maxTokens, sampling: .greedy, stops: try StopStrings(stops),
                                    stopAtEndOfGeneration: true, continuation: continuation)
        var decoder = SequenceDecoder(request: request, tokenizer: ByteTokenizer())
        var pieces: [String] = []
        let script = bytes.map(Int32.init) + (endWithEOG ? [256] : [])
        for token in script {
            var logits = [Float](repeating: 0, count: 257)
            logits[Int(token)] = 1
            let step = decoder.next(logits[...], contextLeft: true)
            #expect(step.token == token)
            if let text = step.text { pieces.append(text) }
            if step.finish != nil { return (pieces, step) }
        }
        throw HARPError.invalidRequest("generation did not finish")
    }

    @Test("decoding loop: multi-byte characters split over tokens, stops, end-of-generation and max tokens equal the reference")
    func decodingLoop() throws {
        var g = SplitMix64(seed: 11)
        for round in 0..<1500 {
            let text = Self.randomString(&g, length: 1 + Int(g.next() % 30))
            let stops = Self.randomStops(&g)
            let bytes = Array(text.utf8)
            let endWithEOG = round % 2 == 0
            let (pieces, last) = try Self.decode(bytes, stops: stops, maxTokens: endWithEOG ? 10_000 : bytes.count, endWithEOG: endWithEOG)
            let expected = Self.naive(text, stops)
            #expect(pieces.joined() == expected.text, "text \(text.debugDescription) stops \(stops)")
            #expect(pieces.allSatisfy { s in !stops.contains { !$0.isEmpty && s.contains($0) } })
            let reason: FinishReason = expected.stop != nil ? .stopSequence : endWithEOG ? .endOfGeneration : .maxTokens
            #expect(last.finish == reason, "text \(text.debugDescription) stops \(stops)")
        }
    }

    @Test("limits: count, empty and oversized stop strings are refused naming the entry")
    func limits() {
        #expect(throws: GenerationError.invalidStop("at most 16 stop strings are accepted, got 17")) {
            try StopStrings(Array(repeating: "x", count: 17))
        }
        #expect(throws: GenerationError.invalidStop("stop[1] is empty")) { try StopStrings(["a", ""]) }
        #expect(throws: GenerationError.invalidStop("stop[0] has 1025 bytes; at most 1024 are accepted")) {
            try StopStrings([String(repeating: "é", count: 512) + "a"])
        }
        #expect((try? StopStrings(Array(repeating: String(repeating: "z", count: 1024), count: 16))) != nil)
    }

    @Test("a 1,024-byte stop sharing every prefix with 100,000 streamed bytes: matched once, in linear time")
    func linearTime() throws {
        // The classic quadratic case for re-scanning: text a^n, stop a^1023 b. Time it against a
        // budget far above linear cost and far below the quadratic one (10^8 comparisons).
        let stop = String(repeating: "a", count: 1023) + "b"
        var matcher = StopMatcher(try StopStrings([stop]))
        let clock = ContinuousClock()
        var delivered = 0
        let elapsed = clock.measure {
            for _ in 0..<100_000 { delivered += matcher.feed("a").utf8.count }
            delivered += matcher.feed("b").utf8.count
        }
        #expect(matcher.matched == stop)
        #expect(delivered == 100_000 - 1023)
        #expect(elapsed < .seconds(2), "100,000 pieces took \(elapsed)")
    }
}
