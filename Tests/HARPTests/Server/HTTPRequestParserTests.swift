import Foundation
import Testing
@testable import HARPServer

/// The request reader on crafted bytes, fed whole and one byte at a time (a slow client).
@Suite("HTTP request parser")
struct HTTPRequestParserTests {
    static func parse(_ text: String, byteByByte: Bool = false, maxBody: Int = 1 << 20) throws(HTTPReadError) -> [HTTPRequestParser.Progress] {
        var parser = HTTPRequestParser(maxHeadBytes: 16 * 1024, maxBodyBytes: maxBody)
        let bytes = Array(text.utf8)
        var progress: [HTTPRequestParser.Progress] = []
        if byteByByte {
            for b in bytes { progress.append(try parser.feed([b])) }
        } else {
            progress.append(try parser.feed(bytes))
        }
        return progress.filter { $0 != .needMore }
    }

    static func request(_ text: String, byteByByte: Bool = false) throws -> HTTPRequest? {
        for p in try parse(text, byteByByte: byteByByte) { if case .complete(let r) = p { return r } }
        return nil
    }

    static func error(_ text: String) -> HTTPReadError? {
        do { _ = try parse(text); return nil } catch { return error }
    }

    @Test("CRLF and LF-only heads give the same request, whole or byte by byte")
    func lineEndings() throws {
        let crlf = "POST /v1/completions?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
        let lf = crlf.replacingOccurrences(of: "\r\n", with: "\n")
        let expected = HTTPRequest(method: "POST", path: "/v1/completions", headers: ["host": "a", "content-length": "4"], body: Data("body".utf8))
        for text in [crlf, lf] {
            #expect(try Self.request(text) == expected)
            #expect(try Self.request(text, byteByByte: true) == expected)
        }
        #expect(try Self.request("GET /health HTTP/1.0\n\n")?.path == "/health")
    }

    @Test("two conflicting Content-Length headers are refused (400); a repeated equal one is accepted")
    func conflictingLength() throws {
        #expect(Self.error("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}") == .malformed("conflicting Content-Length headers"))
        #expect(Self.error("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}")?.status == 400)
        #expect(try Self.request("POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}")?.body == Data("{}".utf8))
        for bad in ["+2", "-1", "2, 2", "0x2", "", "99999999999999999999"] {
            #expect(Self.error("POST / HTTP/1.1\r\nContent-Length: \(bad)\r\n\r\n{}")?.status == 400, "Content-Length '\(bad)'")
        }
    }

    @Test("malformed heads: 400 for bad request lines, folding, space before ':' and control bytes; 411, 413, 431, 501")
    func malformed() {
        for head in ["GET /\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET / HTTP/2\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n",
                     "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", "GET / HTTP/1.1\r\nName : v\r\n\r\n",
                     "GET / HTTP/1.1\r\nA: b\u{1B}[31m\r\n\r\n", "GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", "GET / HTTP/1.1\r\n: v\r\n\r\n"] {
            #expect(Self.error(head)?.status == 400, "\(head.debugDescription)")
        }
        #expect(Self.error("POST / HTTP/1.1\r\n\r\n") == .lengthRequired)
        #expect(Self.error("POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n") == .bodyTooLarge(length: 2_000_000))
        #expect(Self.error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")?.status == 501)
        #expect(Self.error("GET / HTTP/1.1\r\nA: " + String(repeating: "x", count: 17_000))?.status == 431)
    }

    @Test("Expect: 100-continue is reported once before the body, then the request completes")
    func expectContinue() throws {
        var parser = HTTPRequestParser(maxHeadBytes: 1024, maxBodyBytes: 1024)
        #expect(try parser.feed(Array("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".utf8)) == .sendContinue)
        #expect(try parser.feed(Array("{".utf8)) == .needMore)
        guard case .complete(let request) = try parser.feed(Array("}".utf8)) else { Issue.record("no request"); return }
        #expect(request.body == Data("{}".utf8))
        // A body that arrives with the head needs no 100 Continue.
        #expect(try Self.parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}").count == 1)
    }

    @Test("a body shorter than Content-Length stays incomplete (the server's body deadline answers 408)")
    func shortBody() throws {
        #expect(try Self.parse("POST / HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"prompt\"").isEmpty)
        #expect(HTTPReadError.timedOut.status == 408)
    }
}

/// The JSON reader names the field of every error.
@Suite("Request JSON")
struct RequestJSONTests {
    static func error(_ body: String, chat: Bool = true) -> String? {
        error(Array(body.utf8), chat: chat)
    }

    static func error(_ body: [UInt8], chat: Bool = true) -> String? {
        do { _ = try CompletionBody(json: body, chat: chat); return nil } catch { return error.description }
    }

    static let hi = #""messages": [{"role": "user", "content": "Hi"}]"#

    @Test("each invalid field is answered with its name")
    func fieldNames() {
        let cases: [(String, Bool, String)] = [
            (#"{\#(Self.hi), "temperature": -1}"#, true, "temperature: must be in [0, 2], got -1"),
            (#"{\#(Self.hi), "max_tokens": 4.5}"#, true, "max_tokens: expected an integer in 1...1000000000, got 4.5"),
            (#"{\#(Self.hi), "max_tokens": 0}"#, true, "max_tokens: must be in 1...1000000000, got 0"),
            (#"{\#(Self.hi), "max_tokens": "8"}"#, true, "max_tokens: expected an integer, got a string"),
            (#"{\#(Self.hi), "top_p": 0}"#, true, "top_p: must be in (0, 1], got 0"),
            (#"{\#(Self.hi), "stream": "yes"}"#, true, "stream: expected true or false, got a string"),
            (#"{\#(Self.hi), "stop": 5}"#, true, "stop: expected a string or a list of strings, got a number"),
            (#"{\#(Self.hi), "stop": ["a", 1]}"#, true, "stop[1]: expected a string, got a number"),
            (#"{\#(Self.hi), "stop": [""]}"#, true, "stop[0] is empty"),
            (#"{\#(Self.hi), "n": 2}"#, true, "n: only one choice per request is supported, got 2"),
            (#"{\#(Self.hi), "temperature": 1, "temperature": 2}"#, true, "temperature: appears twice"),
            (#"{"messages": [{"role": "user", "content": 5}]}"#, true, "messages[0].content: expected a string or a list of text parts, got a number"),
            (#"{"messages": [{"role": "robot", "content": "x"}]}"#, true, "messages[0].role: 'robot' is not supported (system, developer, user, assistant)"),
            (#"{"messages": []}"#, true, "messages: must not be empty"),
            (#"{"messages": {}}"#, true, "messages: expected an array, got an object"),
            (#"{}"#, true, "messages: is required"),
            (#"{"prompt": ""}"#, false, "prompt: must not be empty"),
            (#"{"prompt": 3}"#, false, "prompt: expected a string, got a number"),
            (#"{"prompt": "a\ud800"}"#, false, "prompt: string has an unpaired UTF-16 surrogate"),
            (#"[1]"#, true, "expected an object, got an array"),
            (#"{"messages": ["#, true, "invalid JSON at byte 14: unexpected end of the body"),
        ]
        for (body, chat, message) in cases {
            #expect(Self.error(body, chat: chat) == message, "\(body)")
        }
    }

    @Test("invalid UTF-8 inside a content string names the field; deep nesting is refused, not a stack overflow")
    func hostileBytes() {
        let body = Array(#"{"messages": [{"role": "user", "content": "a"#.utf8) + [0xFF, 0xFE] + Array(#"b"}]}"#.utf8)
        #expect(Self.error(body) == "messages[0].content: string is not valid UTF-8")
        #expect(Self.error(String(repeating: "[", count: 100_000))?.contains("nested deeper than 64 levels") == true)
    }

    @Test("valid bodies: defaults, text parts, escapes, a stop string and integral floats")
    func valid() throws {
        let body = try CompletionBody(json: Array(#"""
            {"model": "m", "messages": [{"role": "system", "content": [{"type": "text", "text": "Be "}, {"text": "brief."}]},
             {"role": "user", "content": "caf\u00e9 \ud83d\ude00\n"}], "max_tokens": 8.0, "temperature": 0, "stop": "\n\n", "seed": -1,
             "stream": true, "stream_options": {"include_usage": true}, "unknown": [null, {"x": 1e5}]}
            """#.utf8), chat: true)
        #expect(body.prompt == .chat([.system("Be brief."), .user("café 😀\n")]))
        #expect(body.maxTokens == 8 && body.stop == ["\n\n"] && body.stream && body.includeUsage && body.model == "m")
        #expect(body.sampling.temperature == 0 && body.sampling.seed == UInt64.max)
        #expect(try CompletionBody(json: Array(#"{"prompt": ["x"]}"#.utf8), chat: false).maxTokens == nil)
    }
}
