import Foundation

/// Greedy generation tasks through the `Engine`, many items decoding at once.
public enum GenerationTasks {
    /// What one item produced.
    public struct Output: Sendable, Equatable {
        public var text: String
        public var generatedTokens: Int
    }

    /// A protocol of a generation task: how items become prompts, where a reply ends, how it is judged.
    public struct TaskProtocol: Sendable {
        public var name: String
        public var maxTokens: Int
        public var stops: [String]
        public var prompt: @Sendable (_ shots: [GenerationItem], _ item: GenerationItem) -> String
        /// Metrics of a reply (1 = right): name → hit.
        public var judge: @Sendable (_ reply: String, _ item: GenerationItem) -> [(String, Bool)]
    }

    /// GSM8K as lm-eval's `gsm8k` prompts it ("Question: …\nAnswer: <worked solution> #### N"),
    /// stopping at "Question:"; `exact_match` compares the last number of the reply with the answer,
    /// `exact_match_strict` the number after "#### " (lm-eval's flexible and strict extraction).
    public static let gsm8k = TaskProtocol(
        name: "gsm8k", maxTokens: 256, stops: ["Question:", "</s>", "<|im_end|>"],
        prompt: { shots, item in
            shots.map { "Question: \($0.question)\nAnswer: \($0.solution)\n\n" }.joined() + "Question: \(item.question)\nAnswer:"
        },
        judge: { reply, item in
            let target = AnswerNormalization.number(item.answers[0])
            return [("exact_match", AnswerNormalization.lastNumber(in: reply).map(AnswerNormalization.number) == target),
                    ("exact_match_strict", AnswerNormalization.strictNumber(in: reply).map(AnswerNormalization.number) == target)]
        })

    /// NQ-open as lm-eval's `nq_open` prompts it ("Q: …?\nA: …"), stopping at a newline, "." or ",";
    /// exact match with any accepted answer after SQuAD normalisation.
    public static let nqOpen = TaskProtocol(
        name: "nq_open", maxTokens: 32, stops: ["\n", ".", ","],
        prompt: { shots, item in
            shots.map { "Q: \($0.question)?\nA: \($0.answers[0])\n\n" }.joined() + "Q: \(item.question)?\nA:"
        },
        judge: { reply, item in
            let r = AnswerNormalization.squad(reply)
            return [("exact_match", item.answers.contains { AnswerNormalization.squad($0) == r })]
        })

    /// Runs `items` (after the `shots` used as examples) with at most `engine.configuration.maxConcurrentSequences`
    /// decoding together; the outputs are in item order.
    public static func evaluate(_ task: TaskProtocol, shots: [GenerationItem], items: [GenerationItem], engine: Engine,
                                progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) async throws -> (TaskResult, [Output]) {
        let started = Date()
        let tokenizer = engine.tokenizer
        let bos: [Int32] = tokenizer.addBOS ? tokenizer.bosID.map { [$0] } ?? [] : []
        let prompts = items.map { bos + tokenizer.encode(task.prompt(shots, $0), parseSpecial: false) }
        let width = engine.configuration.maxConcurrentSequences
        var outputs = [Output?](repeating: nil, count: items.count)
        try await withThrowingTaskGroup(of: (Int, Output).self) { group in
            var next = 0, done = 0
            func submit() {
                let i = next
                next += 1
                let request = GenerationRequest(prompt: .tokens(prompts[i]), maxTokens: task.maxTokens, sampling: .greedy)
                group.addTask { (i, try await generate(request, engine: engine, stops: task.stops)) }
            }
            while next < min(width, items.count) { submit() }
            while let (i, output) = try await group.next() {
                outputs[i] = output
                done += 1
                progress(done, items.count)
                if next < items.count { submit() }
            }
        }
        let replies = outputs.map { $0! }
        var hits: [String: [Bool]] = [:], order: [String] = []
        for (reply, item) in zip(replies, items) {
            for (name, hit) in task.judge(reply.text, item) {
                if hits[name] == nil { order.append(name) }
                hits[name, default: []].append(hit)
            }
        }
        let seconds = Date().timeIntervalSince(started)
        var metrics = order.map { Statistics.accuracy($0, hits[$0]!) }
        metrics.append(Metric("items_per_s", Double(items.count) / max(seconds, 1e-9)))
        return (TaskResult(task: task.name, metrics: metrics, items: items.count, seconds: seconds), replies)
    }

    /// Generates until a stop string appears (the text before it is returned) or the engine
    /// finishes; on a stop the stream is dropped, which cancels the sequence in the engine.
    /// (When `GenerationRequest` carries stop strings itself, this becomes one field.)
    static func generate(_ request: GenerationRequest, engine: Engine, stops: [String]) async throws -> Output {
        var text = ""
        var tokens = 0
        for try await event in engine.generate(request) {
            switch event {
            case .token(_, let piece):
                tokens += 1
                text += piece
                if let cut = firstStop(in: text, stops: stops) { return Output(text: String(text[..<cut]), generatedTokens: tokens) }
            case .finished:
                return Output(text: text, generatedTokens: tokens)
            }
        }
        return Output(text: text, generatedTokens: tokens)
    }

    static func firstStop(in text: String, stops: [String]) -> String.Index? {
        stops.compactMap { text.range(of: $0)?.lowerBound }.min()
    }
}

/// Answer normalisation of the generation tasks.
public enum AnswerNormalization {
    /// SQuAD's: lower case, punctuation removed, the articles a/an/the removed, whitespace collapsed.
    public static func squad(_ text: String) -> String {
        let lowered = text.lowercased()
        let noPunctuation = String(lowered.unicodeScalars.filter { !CharacterSet.punctuationCharacters.contains($0) && !CharacterSet.symbols.contains($0) || $0 == " " }.map(Character.init))
        let words = noPunctuation.split(whereSeparator: { $0.isWhitespace }).filter { !["a", "an", "the"].contains($0) }
        return words.joined(separator: " ")
    }

    /// A number as compared: commas and dollar signs removed, a trailing period dropped.
    public static func number(_ text: String) -> String {
        var s = text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: "").replacingOccurrences(of: "$", with: "")
        while s.hasSuffix(".") { s.removeLast() }
        return s
    }

    /// The last number in the text (lm-eval's flexible extraction: `-?[$0-9.,]{2,}|-?[0-9]+`).
    public static func lastNumber(in text: String) -> String? {
        matches(#"(-?[$0-9.,]{2,})|(-?[0-9]+)"#, in: text).last
    }

    /// The number after "#### " (lm-eval's strict extraction).
    public static func strictNumber(in text: String) -> String? {
        guard let m = text.range(of: #"#### (\-?[0-9\.\,]+)"#, options: .regularExpression) else { return nil }
        return String(text[m].dropFirst(5))
    }

    static func matches(_ pattern: String, in text: String) -> [String] {
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return [] }
        let ns = text as NSString
        return regex.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) }
    }
}
