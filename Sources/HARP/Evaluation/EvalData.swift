import Foundation

/// One item of a multiple-choice task scored by log-likelihood: each choice is a context and a
/// continuation whose tokens are scored given the context (lm-eval's `loglikelihood` request).
/// Most tasks share one context across choices; Winogrande's contexts differ (the option fills
/// the blank) and share the continuation.
public struct MultipleChoiceItem: Sendable, Equatable {
    public struct Choice: Sendable, Equatable {
        public var context: String
        public var continuation: String
        public init(context: String, continuation: String) {
            self.context = context
            self.continuation = continuation
        }
    }

    public var choices: [Choice]
    public var gold: Int

    public init(choices: [Choice], gold: Int) {
        self.choices = choices
        self.gold = gold
    }

    /// Choices that share `context`.
    public init(context: String, continuations: [String], gold: Int) {
        self.init(choices: continuations.map { Choice(context: context, continuation: $0) }, gold: gold)
    }
}

/// A question answered by greedy generation, with every accepted answer.
public struct GenerationItem: Sendable, Equatable {
    public var question: String
    /// GSM8K: the worked solution ending in `#### N`; NQ: unused.
    public var solution: String
    public var answers: [String]

    public init(question: String, solution: String = "", answers: [String]) {
        self.question = question
        self.solution = solution
        self.answers = answers
    }
}

/// Readers of the evaluation files under `Benchmarks/data/eval/`. Every malformed line ends
/// with an error naming the file and the line (`file:line: reason`).
public enum EvalData {
    static func malformed(_ path: String, _ line: Int, _ reason: String) -> HARPError {
        .io(path: "\(path):\(line)", reason: reason)
    }

    static func readText(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw HARPError.io(path: path, reason: "cannot read file") }
        guard let text = String(data: data, encoding: .utf8) else { throw HARPError.io(path: path, reason: "not UTF-8 text") }
        return text
    }

    /// Lines without their terminators (a final empty line after the last newline is dropped).
    static func lines(_ text: String) -> [Substring] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last == "" { lines.removeLast() }
        return lines.map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
    }

    // MARK: - HellaSwag (llama.cpp's text layout)

    /// llama.cpp's `--hellaswag` layout: 6 lines per task — the context, the gold index 0–3, four endings.
    /// Choices: context, and " " + ending (llama.cpp tokenizes `context + " " + ending`).
    public static func hellaSwag(path: String) throws -> [MultipleChoiceItem] {
        try hellaSwag(text: readText(path), path: path)
    }

    public static func hellaSwag(text: String, path: String) throws -> [MultipleChoiceItem] {
        let lines = lines(text)
        guard lines.count % 6 == 0 else {
            throw malformed(path, lines.count, "the file has \(lines.count) lines, not a multiple of 6 (context, gold label, 4 endings per task)")
        }
        var items: [MultipleChoiceItem] = []
        for task in 0..<(lines.count / 6) {
            let base = task * 6
            guard let gold = Int(lines[base + 1]), (0..<4).contains(gold) else {
                throw malformed(path, base + 2, "expected the gold ending index 0-3, got '\(lines[base + 1].prefix(40))'")
            }
            for j in 0..<6 where lines[base + j].isEmpty {
                throw malformed(path, base + j + 1, "empty line in task \(task + 1)")
            }
            items.append(MultipleChoiceItem(context: String(lines[base]), continuations: (2..<6).map { " " + lines[base + $0] }, gold: gold))
        }
        return items
    }

    // MARK: - Winogrande (llama.cpp's CSV layout)

    /// One Winogrande row: the sentence split at its blank, the two options, the answer index 0/1.
    public struct WinograndeRow: Sendable, Equatable {
        public var first: String, second: String, options: [String], answer: Int
    }

    /// llama.cpp's `--winogrande` CSV: `idx,sentence,option1,option2,answer` (answer 1 or 2,
    /// sentence quoted when it holds a comma, one `_` marks the blank, no header).
    public static func winogrande(path: String) throws -> [WinograndeRow] {
        try winogrande(text: readText(path), path: path)
    }

    public static func winogrande(text: String, path: String) throws -> [WinograndeRow] {
        var rows: [WinograndeRow] = []
        for (i, line) in lines(text).enumerated() {
            let fields = try CSV.fields(of: line, path: path, line: i + 1)
            guard fields.count == 5 else { throw malformed(path, i + 1, "expected 5 fields (idx,sentence,option1,option2,answer), got \(fields.count)") }
            let sentence = fields[1]
            guard let blank = sentence.firstIndex(of: "_") else { throw malformed(path, i + 1, "the sentence has no '_' blank") }
            guard let answer = Int(fields[4]), answer == 1 || answer == 2 else {
                throw malformed(path, i + 1, "expected answer 1 or 2, got '\(fields[4])'")
            }
            guard !fields[2].isEmpty, !fields[3].isEmpty else { throw malformed(path, i + 1, "empty option") }
            rows.append(WinograndeRow(first: String(sentence[..<blank]), second: String(sentence[sentence.index(after: blank)...]),
                                      options: [fields[2], fields[3]], answer: answer - 1))
        }
        return rows
    }

    // MARK: - JSON lines

    /// Each line of a JSON-lines file as an object, with its 1-based line number; blank lines are skipped.
    static func jsonLines(_ path: String) throws -> [(line: Int, object: [String: Any])] {
        try jsonLines(text: readText(path), path: path)
    }

    static func jsonLines(text: String, path: String) throws -> [(line: Int, object: [String: Any])] {
        var out: [(Int, [String: Any])] = []
        for (i, line) in lines(text).enumerated() where !line.allSatisfy(\.isWhitespace) {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                throw malformed(path, i + 1, "not a JSON object")
            }
            out.append((i + 1, object))
        }
        return out
    }

    static func string(_ object: [String: Any], _ key: String, _ path: String, _ line: Int) throws -> String {
        guard let s = object[key] as? String else { throw malformed(path, line, "missing string field \"\(key)\"") }
        return s
    }

    /// llm-foundry's multiple-choice layout (`query`, `choices`, `gold`): ARC, BoolQ, OpenBookQA.
    /// The context is `query + suffix`; each choice is scored as " " + choice.
    public static func queryChoices(path: String, contextSuffix: String) throws -> [MultipleChoiceItem] {
        try queryChoices(text: readText(path), path: path, contextSuffix: contextSuffix)
    }

    public static func queryChoices(text: String, path: String, contextSuffix: String) throws -> [MultipleChoiceItem] {
        try jsonLines(text: text, path: path).map { line, object in
            let query = try string(object, "query", path, line)
            guard let choices = object["choices"] as? [String], choices.count >= 2 else {
                throw malformed(path, line, "missing \"choices\" (a list of at least 2 strings)")
            }
            guard let gold = object["gold"] as? Int, choices.indices.contains(gold) else {
                throw malformed(path, line, "\"gold\" must be an index into \"choices\" (0..<\(choices.count))")
            }
            return MultipleChoiceItem(context: query + contextSuffix, continuations: choices.map { " " + $0 }, gold: gold)
        }
    }

    /// GSM8K (`question`, `answer` ending in `#### N`).
    public static func gsm8k(path: String) throws -> [GenerationItem] {
        try gsm8k(text: readText(path), path: path)
    }

    public static func gsm8k(text: String, path: String) throws -> [GenerationItem] {
        try jsonLines(text: text, path: path).map { line, object in
            let question = try string(object, "question", path, line)
            let solution = try string(object, "answer", path, line)
            guard let marker = solution.range(of: "####", options: .backwards) else {
                throw malformed(path, line, "\"answer\" has no '#### N' final answer")
            }
            let final = solution[marker.upperBound...].trimmingCharacters(in: .whitespaces)
            guard !final.isEmpty else { throw malformed(path, line, "empty final answer after '####'") }
            return GenerationItem(question: question, solution: solution, answers: [final])
        }
    }

    /// NQ-open (`question`, `answer`: list of strings).
    public static func nqOpen(path: String) throws -> [GenerationItem] {
        try nqOpen(text: readText(path), path: path)
    }

    public static func nqOpen(text: String, path: String) throws -> [GenerationItem] {
        try jsonLines(text: text, path: path).map { line, object in
            let question = try string(object, "question", path, line)
            guard let answers = object["answer"] as? [String], !answers.isEmpty else {
                throw malformed(path, line, "\"answer\" must be a non-empty list of strings")
            }
            return GenerationItem(question: question, answers: answers)
        }
    }

    /// LAMBADA (`text`); the target is the last word, scored as " " + word given the text before it.
    public static func lambada(path: String) throws -> [MultipleChoiceItem] {
        try lambada(text: readText(path), path: path)
    }

    public static func lambada(text: String, path: String) throws -> [MultipleChoiceItem] {
        try jsonLines(text: text, path: path).map { line, object in
            let text = try string(object, "text", path, line)
            guard let space = text.lastIndex(of: " "), text.index(after: space) < text.endIndex, space > text.startIndex else {
                throw malformed(path, line, "\"text\" needs a context and a last word separated by a space")
            }
            return MultipleChoiceItem(context: String(text[..<space]), continuations: [String(text[space...])], gold: 0)
        }
    }

    // MARK: - MMLU (one CSV per subject)

    /// One MMLU question: four choices, answer index 0–3.
    public struct MMLUQuestion: Sendable, Equatable {
        public var question: String, choices: [String], answer: Int
    }

    /// A subject CSV with the header `question,choice0,choice1,choice2,choice3,answer`.
    public static func mmluSubject(path: String) throws -> [MMLUQuestion] {
        try mmluSubject(text: readText(path), path: path)
    }

    public static func mmluSubject(text: String, path: String) throws -> [MMLUQuestion] {
        let records = try CSV.records(text, path: path)
        guard let header = records.first, header.fields == ["question", "choice0", "choice1", "choice2", "choice3", "answer"] else {
            throw malformed(path, 1, "expected the header question,choice0,choice1,choice2,choice3,answer")
        }
        return try records.dropFirst().map { record in
            guard record.fields.count == 6 else { throw malformed(path, record.line, "expected 6 fields, got \(record.fields.count)") }
            guard let answer = Int(record.fields[5]), (0..<4).contains(answer) else {
                throw malformed(path, record.line, "expected answer 0-3, got '\(record.fields[5])'")
            }
            return MMLUQuestion(question: record.fields[0], choices: Array(record.fields[1..<5]), answer: answer)
        }
    }
}

/// A small RFC 4180 reader: fields separated by commas, quoted with `"` (`""` inside quotes),
/// quoted fields may span lines.
enum CSV {
    struct Record { var line: Int; var fields: [String] }

    static func fields(of line: Substring, path: String, line number: Int) throws -> [String] {
        let records = try records(String(line), path: path, firstLine: number)
        guard records.count == 1 else { throw EvalData.malformed(path, number, "unterminated quoted field") }
        return records[0].fields
    }

    static func records(_ text: String, path: String, firstLine: Int = 1) throws -> [Record] {
        var records: [Record] = []
        var fields: [String] = [], field = "", quoted = false, afterQuote = false
        var line = firstLine, recordLine = firstLine
        var chars = Array(text.unicodeScalars)
        if chars.last == "\n" { chars.removeLast() }
        var i = 0
        func endRecord() {
            fields.append(field)
            records.append(Record(line: recordLine, fields: fields))
            fields = []
            field = ""
        }
        while i < chars.count {
            let c = chars[i]
            i += 1
            if quoted {
                if c == "\"" {
                    if i < chars.count, chars[i] == "\"" { field.unicodeScalars.append("\""); i += 1 } else { quoted = false; afterQuote = true }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case ",":
                fields.append(field)
                field = ""
                afterQuote = false
            case "\n":
                endRecord()
                afterQuote = false
                line += 1
                recordLine = line
            case "\r" where i < chars.count && chars[i] == "\n":
                continue
            case "\"" where field.isEmpty && !afterQuote:
                quoted = true
            default:
                if afterQuote { throw EvalData.malformed(path, line, "text after a closing quote") }
                field.unicodeScalars.append(c)
            }
        }
        if quoted { throw EvalData.malformed(path, recordLine, "unterminated quoted field") }
        if !chars.isEmpty { endRecord() }
        return records
    }
}
