/// Stop strings, validated: at most `maxCount` non-empty strings of at most `maxBytes` UTF-8 bytes each.
public struct StopStrings: Sendable, Equatable {
    public static let maxCount = 16
    public static let maxBytes = 1024

    public let strings: [String]

    /// Throws `GenerationError.invalidStop` naming the offending entry (`stop[i]`).
    public init(_ strings: [String]) throws {
        guard strings.count <= Self.maxCount else {
            throw GenerationError.invalidStop("at most \(Self.maxCount) stop strings are accepted, got \(strings.count)")
        }
        for (i, s) in strings.enumerated() {
            guard !s.isEmpty else { throw GenerationError.invalidStop("stop[\(i)] is empty") }
            guard s.utf8.count <= Self.maxBytes else {
                throw GenerationError.invalidStop("stop[\(i)] has \(s.utf8.count) bytes; at most \(Self.maxBytes) are accepted")
            }
        }
        self.strings = strings
    }
}

/// Finds the first stop string in text that arrives piece by piece, in time linear in the text
/// and the stop strings (an Aho–Corasick automaton over UTF-8 bytes), and says which text is safe
/// to deliver: everything before the match, minus the longest tail that could still begin one.
///
/// The match is the one that *ends* first in the text; of the stop strings ending there, the
/// longest (it starts earliest). This does not depend on how the text is split into pieces.
/// Matching is on UTF-8 bytes, so a stop string matches exactly those scalars (no Unicode
/// normalization); cuts fall on scalar boundaries because every stop string begins with a lead byte.
public struct StopMatcher: Sendable {
    private struct Node: Sendable {
        var children: [UInt8: Int32] = [:]
        var failure: Int32 = 0
        var depth: Int32 = 0
        /// Length of the longest stop string ending here (this node or along its failure chain); 0 if none.
        var match: Int32 = 0
        var matchIndex: Int32 = -1
    }

    public let stops: [String]
    private var nodes: [Node] = [Node()]
    private var state: Int32 = 0
    /// Bytes received but not yet delivered: the longest suffix of the text that is a proper prefix of a stop.
    private var pending: [UInt8] = []
    /// The stop string that ended the text, once one has matched.
    public private(set) var matched: String?

    public init(_ stops: StopStrings) {
        self.stops = stops.strings
        for (index, stop) in stops.strings.enumerated() {
            var node: Int32 = 0
            for byte in stop.utf8 {
                if let next = nodes[Int(node)].children[byte] {
                    node = next
                } else {
                    let next = Int32(nodes.count)
                    nodes.append(Node(depth: nodes[Int(node)].depth + 1))
                    nodes[Int(node)].children[byte] = next
                    node = next
                }
            }
            if nodes[Int(node)].match == 0 { nodes[Int(node)].match = nodes[Int(node)].depth; nodes[Int(node)].matchIndex = Int32(index) }
        }
        // Breadth first: each node's failure link is the longest proper suffix that is also in the trie.
        var queue: [Int32] = nodes[0].children.values.sorted()
        var head = 0
        while head < queue.count {
            let node = queue[head]
            head += 1
            let failure = nodes[Int(node)].failure
            if nodes[Int(node)].match == 0 && nodes[Int(failure)].match > 0 {
                nodes[Int(node)].match = nodes[Int(failure)].match
                nodes[Int(node)].matchIndex = nodes[Int(failure)].matchIndex
            }
            for (byte, child) in nodes[Int(node)].children.sorted(by: { $0.key < $1.key }) {
                var f = failure
                while f != 0 && nodes[Int(f)].children[byte] == nil { f = nodes[Int(f)].failure }
                let target = nodes[Int(f)].children[byte] ?? 0
                nodes[Int(child)].failure = target == child ? 0 : target
                queue.append(child)
            }
        }
    }

    public var isStopped: Bool { matched != nil }

    /// Feeds the next piece of text and returns what may be delivered now ("" once stopped).
    public mutating func feed(_ piece: String) -> String {
        guard matched == nil else { return "" }
        if stops.isEmpty { return piece }
        for byte in piece.utf8 {
            pending.append(byte)
            while state != 0 && nodes[Int(state)].children[byte] == nil { state = nodes[Int(state)].failure }
            state = nodes[Int(state)].children[byte] ?? 0
            let node = nodes[Int(state)]
            if node.match > 0 {
                matched = stops[Int(node.matchIndex)]
                let safe = String(decoding: pending[..<(pending.count - Int(node.match))], as: UTF8.self)
                pending.removeAll()
                return safe
            }
        }
        let held = Int(nodes[Int(state)].depth)
        let safe = String(decoding: pending[..<(pending.count - held)], as: UTF8.self)
        pending.removeFirst(pending.count - held)
        return safe
    }

    /// The text still held back when generation ends without a match ("" after a match).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return matched == nil ? String(decoding: pending, as: UTF8.self) : ""
    }
}
