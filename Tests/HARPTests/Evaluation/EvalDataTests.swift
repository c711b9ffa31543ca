import Foundation
import Testing
@testable import HARP

/// The dataset readers: the layouts they accept and the one-line errors naming file and line.
@Suite("Evaluation data readers")
struct EvalDataTests {
    /// The error message of `body`, which must throw a HARPError.
    private func message(_ body: () throws -> Void) -> String {
        do { try body() } catch let error as HARPError { return error.description } catch { return "other error: \(error)" }
        return "no error"
    }

    @Test("HellaSwag: 6 lines per task; bad gold label and wrong line count name the line")
    func hellaSwag() throws {
        let good = "Ctx: a man\n2\nruns.\nsits.\njumps.\nsleeps.\n"
        let items = try EvalData.hellaSwag(text: good, path: "h.txt")
        #expect(items.count == 1 && items[0].gold == 2)
        #expect(items[0].choices[2] == .init(context: "Ctx: a man", continuation: " jumps."))
        #expect(message { _ = try EvalData.hellaSwag(text: "Ctx\n7\na\nb\nc\nd\n", path: "h.txt") }.hasPrefix("h.txt:2: "))
        #expect(message { _ = try EvalData.hellaSwag(text: "Ctx\n1\na\nb\nc\n", path: "h.txt") }.contains("not a multiple of 6"))
        #expect(message { _ = try EvalData.hellaSwag(text: "Ctx\n1\na\n\nc\nd\n", path: "h.txt") }.hasPrefix("h.txt:4: "))
    }

    @Test("Winogrande CSV: quoted sentences split at the blank; missing blank or bad answer name the line")
    func winogrande() throws {
        let rows = try EvalData.winogrande(text: "0,\"So, _ won.\",Ann,Bo,2\n1,A _ b.,x,y,1\n", path: "w.csv")
        #expect(rows[0] == .init(first: "So, ", second: " won.", options: ["Ann", "Bo"], answer: 1))
        #expect(rows[1].answer == 0)
        #expect(message { _ = try EvalData.winogrande(text: "0,A _ b.,x,y,1\n1,no blank,x,y,1\n", path: "w.csv") }.hasPrefix("w.csv:2: "))
        #expect(message { _ = try EvalData.winogrande(text: "0,A _ b.,x,y,3\n", path: "w.csv") }.hasPrefix("w.csv:1: "))
        #expect(message { _ = try EvalData.winogrande(text: "0,\"A _ b.,x,y,1\n", path: "w.csv") }.contains("unterminated"))
        #expect(message { _ = try EvalData.winogrande(text: "0,A _ b.,x,y\n", path: "w.csv") }.hasPrefix("w.csv:1: "))
    }

    @Test("JSON-lines tasks: a broken line or a missing field names its line")
    func jsonLines() throws {
        let arc = try EvalData.queryChoices(text: "{\"query\": \"Question: Q\", \"choices\": [\"a\", \"b\"], \"gold\": 1}\n", path: "a.jsonl",
                                            contextSuffix: "\nAnswer:")
        #expect(arc == [MultipleChoiceItem(context: "Question: Q\nAnswer:", continuations: [" a", " b"], gold: 1)])
        #expect(message { _ = try EvalData.queryChoices(text: "{\"query\": \"q\", \"choices\": [\"a\", \"b\"], \"gold\": 0}\n{oops\n", path: "a.jsonl", contextSuffix: "") }
            .hasPrefix("a.jsonl:2: "))
        #expect(message { _ = try EvalData.queryChoices(text: "{\"query\": \"q\", \"choices\": [\"a\", \"b\"], \"gold\": 2}\n", path: "a.jsonl", contextSuffix: "") }
            .hasPrefix("a.jsonl:1: "))
        let gsm = try EvalData.gsm8k(text: "{\"question\": \"q\", \"answer\": \"3+4=7\\n#### 7\"}\n", path: "g.jsonl")
        #expect(gsm[0].answers == ["7"])
        #expect(message { _ = try EvalData.gsm8k(text: "\n{\"question\": \"q\", \"answer\": \"7\"}\n", path: "g.jsonl") }.hasPrefix("g.jsonl:2: "))
        #expect(message { _ = try EvalData.nqOpen(text: "{\"question\": \"q\", \"answer\": []}\n", path: "n.jsonl") }.hasPrefix("n.jsonl:1: "))
        let lambada = try EvalData.lambada(text: "{\"text\": \"the cat sat\"}\n", path: "l.jsonl")
        #expect(lambada[0].choices == [.init(context: "the cat", continuation: " sat")])
        #expect(message { _ = try EvalData.lambada(text: "{\"text\": \"oneword\"}\n", path: "l.jsonl") }.hasPrefix("l.jsonl:1: "))
    }

    @Test("MMLU CSV: header, quoted multi-line fields, bad answers name the record's line")
    func mmlu() throws {
        let text = "question,choice0,choice1,choice2,choice3,answer\n\"Two\nlines, here\",a,\"b \"\"q\"\"\",c,d,3\nQ2,a,b,c,d,0\n"
        let rows = try EvalData.mmluSubject(text: text, path: "m.csv")
        #expect(rows.count == 2 && rows[0].question == "Two\nlines, here" && rows[0].choices[1] == "b \"q\"" && rows[0].answer == 3)
        #expect(message { _ = try EvalData.mmluSubject(text: "question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,d,0\n\"x\ny\",a,b,c,d,E\n", path: "m.csv") }
            .hasPrefix("m.csv:3: "))
        #expect(message { _ = try EvalData.mmluSubject(text: "q,a,b,c,d,0\n", path: "m.csv") }.hasPrefix("m.csv:1: "))
        #expect(message { _ = try EvalData.mmluSubject(text: "question,choice0,choice1,choice2,choice3,answer\nq,a,b,c,0\n", path: "m.csv") }
            .hasPrefix("m.csv:2: "))
    }

    @Test("MMLU prompt: subject header, shots with answers, the question and lettered choices")
    func mmluPrompt() {
        let q = EvalData.MMLUQuestion(question: "1+1?", choices: ["1", "2", "3", "4"], answer: 1)
        let items = MultipleChoice.mmlu(subject: "high_school_math", dev: [q], test: [q], shots: 1)
        let block = "1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:"
        #expect(items[0].choices[0].context == "The following are multiple choice questions (with answers) about high school math.\n\n"
            + block + " B\n\n" + block)
        #expect(items[0].choices.map(\.continuation) == [" A", " B", " C", " D"])
    }

    @Test("the copied data sets parse whole")
    func shippedData() throws {
        let dir = Fixtures.packageRoot.appendingPathComponent("Benchmarks/data/eval").path
        #expect(try EvalData.hellaSwag(path: dir + "/" + EvalTask.hellaswag.defaultPath).count == 10_042)
        #expect(try EvalData.winogrande(path: dir + "/" + EvalTask.winogrande.defaultPath).count == 1_267)
        #expect(try EvalData.queryChoices(path: dir + "/" + EvalTask.arcEasy.defaultPath, contextSuffix: "").count == 2_376)
        #expect(try EvalData.queryChoices(path: dir + "/" + EvalTask.boolq.defaultPath, contextSuffix: "").count == 3_270)
        #expect(try EvalData.queryChoices(path: dir + "/" + EvalTask.openbookqa.defaultPath, contextSuffix: "").count == 500)
        #expect(try EvalData.gsm8k(path: dir + "/" + EvalTask.gsm8k.defaultPath).count == 1_319)
        #expect(try EvalData.nqOpen(path: dir + "/" + EvalTask.nqOpen.defaultPath).count == 3_610)
        #expect(try EvalData.lambada(path: dir + "/" + EvalTask.lambada.defaultPath).count == 5_153)
        let transformerFree = try Evaluator.mmluItems(directory: dir + "/mmlu", limit: nil, shots: 5)
        #expect(transformerFree.count == 14_042)
    }
}
