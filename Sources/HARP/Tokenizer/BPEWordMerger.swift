/// Applies BPE merges to one word the way llama.cpp's `llm_tokenizer_bpe_session` does: start
/// from one symbol per byte, then repeatedly merge the adjacent pair with the lowest merge rank
/// (the leftmost on ties), using a priority queue and a linked list of live symbols. Queue
/// entries made stale by an earlier merge are skipped when popped.
///
/// The buffers are kept between words, so one merger should tokenize a whole text.
struct BPEWordMerger {
    private struct Candidate {
        var rank: Int32
        var left: Int32
        var right: Int32
        var leftSymbol: Int32
        var rightSymbol: Int32
        var result: Int32

        func precedes(_ other: Candidate) -> Bool {
            rank != other.rank ? rank < other.rank : left < other.left
        }
    }

    /// Symbol id at each position; `deadSymbol` once merged into its left neighbour.
    private var symbols: [Int32] = []
    private var previous: [Int32] = []
    private var next: [Int32] = []
    /// Binary min-heap ordered by `Candidate.precedes`.
    private var queue: [Candidate] = []
    private static let deadSymbol: Int32 = -1

    /// Appends the symbols of `word` (raw UTF-8 bytes) after merging to `output`.
    mutating func merge<Bytes: Collection>(_ word: Bytes, table: BPEMergeTable, into output: inout [Int32])
    where Bytes.Element == UInt8 {
        symbols.removeAll(keepingCapacity: true)
        previous.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        queue.removeAll(keepingCapacity: true)

        let count = word.count
        for (index, byte) in word.enumerated() {
            symbols.append(table.byteSymbols[Int(byte)])
            previous.append(Int32(index - 1))
            next.append(index + 1 < count ? Int32(index + 1) : -1)
        }
        for index in 1..<max(count, 1) { addCandidate(Int32(index - 1), Int32(index), table) }

        while let candidate = popCandidate() {
            let left = Int(candidate.left), right = Int(candidate.right)
            // Stale if either side has changed since the pair was queued.
            guard symbols[left] == candidate.leftSymbol, symbols[right] == candidate.rightSymbol else { continue }
            symbols[left] = candidate.result
            symbols[right] = Self.deadSymbol
            next[left] = next[right]
            if next[right] >= 0 { previous[Int(next[right])] = candidate.left }
            addCandidate(previous[left], candidate.left, table)
            addCandidate(candidate.left, next[left], table)
        }

        var index: Int32 = count > 0 ? 0 : -1
        while index >= 0 {
            output.append(symbols[Int(index)])
            index = next[Int(index)]
        }
    }

    private mutating func addCandidate(_ left: Int32, _ right: Int32, _ table: BPEMergeTable) {
        guard left >= 0, right >= 0 else { return }
        let leftSymbol = symbols[Int(left)], rightSymbol = symbols[Int(right)]
        guard let merge = table.merge(leftSymbol, rightSymbol) else { return }
        pushCandidate(Candidate(
            rank: merge.rank, left: left, right: right,
            leftSymbol: leftSymbol, rightSymbol: rightSymbol, result: merge.result))
    }

    private mutating func pushCandidate(_ candidate: Candidate) {
        queue.append(candidate)
        var child = queue.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard queue[child].precedes(queue[parent]) else { break }
            queue.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func popCandidate() -> Candidate? {
        guard let last = queue.popLast() else { return nil }
        guard !queue.isEmpty else { return last }
        let top = queue[0]
        queue[0] = last
        var parent = 0
        while true {
            let leftChild = 2 * parent + 1, rightChild = leftChild + 1
            var smallest = parent
            if leftChild < queue.count && queue[leftChild].precedes(queue[smallest]) { smallest = leftChild }
            if rightChild < queue.count && queue[rightChild].precedes(queue[smallest]) { smallest = rightChild }
            if smallest == parent { break }
            queue.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
