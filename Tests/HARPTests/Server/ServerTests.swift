import Foundation
import Testing
@testable import HARP
@testable import HARPServer
import HARPTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// A blocking loopback client on raw sockets, to send exactly the bytes a hostile client would.
struct LoopbackClient {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port)).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { throw HARPError.io(path: "127.0.0.1:\(port)", reason: "connect failed") }
    }

    func send(_ text: String) { send(Array(text.utf8)) }
    func send(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }

    /// Reads until the server closes or `timeout` seconds pass (on a thread of its own: a blocked
    /// cooperative thread could starve the server's tasks in this process).
    func receive(timeout: Double, until stop: String? = nil) async -> String {
        await withCheckedContinuation { c in Thread { c.resume(returning: receiveBlocking(timeout: timeout, until: stop)) }.start() }
    }

    private func receiveBlocking(timeout: Double, until stop: String?) -> String {
        var out: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { break }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            out += chunk[..<n]
            if let stop, String(decoding: out, as: UTF8.self).contains(stop) { break }
        }
        return String(decoding: out, as: UTF8.self)
    }

    func close() { Glibc.close(fd) }

    /// One request on a fresh connection: the status and the whole response text.
    static func exchange(_ port: Int, _ request: String, timeout: Double = 120) async throws -> (status: Int, text: String) {
        let client = try LoopbackClient(port: port)
        defer { client.close() }
        client.send(request)
        let text = await client.receive(timeout: timeout)
        return (Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0, text)
    }

    static func post(_ path: String, _ body: String) -> String {
        "POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }
}

/// A real server on 127.0.0.1 in this process, over the tiny random model, with short deadlines.
@Suite("HTTP server (loopback)", .serialized)
struct ServerTests {
    static func withServer(context: Int = 256, _ body: (Engine, HTTPServer) async throws -> Void) async throws {
        let (engine, _, path) = try EngineTests.tinyEngine(slots: 2, budget: 64, context: context)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var limits = HTTPServer.Limits()
        limits.headTimeout = 1
        limits.bodyTimeout = 1
        limits.maxBodyBytes = 64 * 1024
        let server = try OpenAIServer(engine: engine, modelID: "tiny").listen(host: "127.0.0.1", port: 0, limits: limits)
        server.start()
        defer { server.stop() }
        try await body(engine, server)
    }

    static let hi = #""messages": [{"role": "user", "content": "Hi"}]"#

    @Test("invalid fields are answered 400 naming the field; a valid request is answered 200")
    func invalidFields() async throws {
        try await Self.withServer { _, server in
            let cases: [(String, String, String)] = [
                ("/v1/chat/completions", #"{\#(Self.hi), "temperature": -1}"#, "temperature"),
                ("/v1/completions", #"{"prompt": ""}"#, "prompt: must not be empty"),
                ("/v1/chat/completions", #"{\#(Self.hi), "max_tokens": 4.5}"#, "max_tokens"),
                ("/v1/chat/completions", #"{"messages": [{"role": "user", "content": ["x"]}]}"#, "messages[0].content[0]"),
                ("/v1/chat/completions", #"{\#(Self.hi), "stop": "\#(String(repeating: "x", count: 40_000))"}"#, "stop[0] has 40000 bytes"),
            ]
            for (path, body, field) in cases {
                let (status, text) = try await LoopbackClient.exchange(server.port, LoopbackClient.post(path, body))
                #expect(status == 400 && text.contains(field), "\(body.prefix(80)): \(text.suffix(200))")
            }
            let bad = Array(LoopbackClient.post("/v1/chat/completions", #"{"messages": [{"role": "user", "content": "a_b"}]}"#).utf8)
                .map { $0 == UInt8(ascii: "_") ? 0xFF : $0 }
            let client = try LoopbackClient(port: server.port)
            client.send(bad)
            let text = await client.receive(timeout: 60)
            client.close()
            #expect(text.hasPrefix("HTTP/1.1 400") && text.contains("messages[0].content: string is not valid UTF-8"), "\(text)")
            let ok = try await LoopbackClient.exchange(server.port, LoopbackClient.post("/v1/chat/completions", #"{\#(Self.hi), "max_tokens": 3}"#))
            #expect(ok.status == 200 && ok.text.contains(#""completion_tokens":3"#), "\(ok.text)")
        }
    }

    @Test("HTTP reproducers: conflicting Content-Length 400, LF-only head answered, short body 408 after the deadline, 100 Continue")
    func httpReproducers() async throws {
        try await Self.withServer { _, server in
            let conflicting = try await LoopbackClient.exchange(server.port, "POST /v1/completions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}")
            #expect(conflicting.status == 400 && conflicting.text.contains("conflicting Content-Length"))

            let body = #"{"prompt": "Hello", "max_tokens": 2}"#
            let lf = try await LoopbackClient.exchange(server.port, "POST /v1/completions HTTP/1.1\nContent-Length: \(body.utf8.count)\n\n\(body)")
            #expect(lf.status == 200 && lf.text.contains(#""completion_tokens":2"#), "\(lf.text)")

            let started = Date()
            let short = try await LoopbackClient.exchange(server.port, "POST /v1/completions HTTP/1.1\r\nContent-Length: 40\r\n\r\n{\"prompt\"")
            let waited = Date().timeIntervalSince(started)
            #expect(short.status == 408, "\(short.text)")
            #expect(waited > 0.9 && waited < 30, "answered after \(waited) s with a 1 s body deadline")

            let client = try LoopbackClient(port: server.port)
            defer { client.close() }
            client.send("POST /v1/completions HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
            #expect(await client.receive(timeout: 30, until: "\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n")
            client.send(body)
            let answer = await client.receive(timeout: 120)
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
        }
    }

    @Test("64 connections trickling their heads do not make other requests 503; they get 408 at the head deadline")
    func slowClients() async throws {
        try await Self.withServer { _, server in
            let slow = try (0..<64).map { _ in try LoopbackClient(port: server.port) }
            defer { slow.forEach { $0.close() } }
            for c in slow { c.send("POST /v1/chat/completions HTTP/1.1\r\nHo") }
            for _ in 0..<3 {
                let (status, text) = try await LoopbackClient.exchange(server.port, LoopbackClient.post("/v1/chat/completions", #"{\#(Self.hi), "max_tokens": 2}"#))
                #expect(status == 200, "\(text)")
            }
            var timedOut: [String] = []
            for c in slow.prefix(4) { timedOut.append(await c.receive(timeout: 30)) }
            #expect(timedOut.allSatisfy { $0.hasPrefix("HTTP/1.1 408") }, "\(timedOut)")
        }
    }

    @Test("a client that closes a non-streaming request has its generation cancelled within 1 s; default max_tokens is bounded")
    func disconnectCancels() async throws {
        try await Self.withServer(context: 4096) { engine, server in
            let client = try LoopbackClient(port: server.port)
            // No max_tokens: the default is min(512, context left), so even an abandoned request ends.
            client.send(LoopbackClient.post("/v1/completions", #"{"prompt": "abc", "temperature": 0}"#))
            var waited = 0
            while engine.statistics.activeSequences == 0 && waited < 500 { try await Task.sleep(for: .milliseconds(10)); waited += 1 }
            #expect(engine.statistics.activeSequences == 1)
            client.close()
            let closed = ContinuousClock.now
            while engine.statistics.activeSequences > 0 && ContinuousClock.now - closed < .seconds(3) { try await Task.sleep(for: .milliseconds(5)) }
            let elapsed = ContinuousClock.now - closed
            #expect(engine.statistics.activeSequences == 0)
            #expect(elapsed < .seconds(1), "the sequence ran \(elapsed) after the client left")
            #expect((engine.statistics.cachedTokensPerSlot.max() ?? 0) < 3 + OpenAIServer.defaultMaxTokens)
        }
    }

    @Test("stop strings over HTTP cut the reply before the stop, finish_reason stop, streamed and not")
    func stopStrings() async throws {
        try await Self.withServer { _, server in
            // The tiny model's tokens read "<id>", so a greedy reply looks like "<17><3>..."; stop at its second token.
            let plain = try await LoopbackClient.exchange(server.port, LoopbackClient.post("/v1/completions", #"{"prompt": "abc", "max_tokens": 6, "temperature": 0}"#))
            let full = try #require(plain.text.split(separator: "\r\n\r\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
            let text = try #require((full["choices"] as? [[String: Any]])?.first?["text"] as? String)
            let pieces = text.split(separator: ">").map { $0 + ">" }
            try #require(pieces.count == 6)
            let stop = String(pieces[1].dropLast())  // e.g. "<3": the reply must end just before its first occurrence
            let expected = String(text[..<(try #require(text.range(of: stop))).lowerBound])
            for stream in [false, true] {
                let (status, answer) = try await LoopbackClient.exchange(server.port, LoopbackClient.post("/v1/completions",
                    #"{"prompt": "abc", "max_tokens": 6, "temperature": 0, "stream": \#(stream), "stop": ["\#(stop)"]}"#))
                #expect(status == 200)
                #expect(answer.contains(#""finish_reason":"stop""#), "\(answer)")
                if stream {
                    let texts = answer.components(separatedBy: "\n\n").compactMap { event -> String? in
                        guard event.hasPrefix("data: {"), let object = try? JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any] else { return nil }
                        return (object["choices"] as? [[String: Any]])?.first?["text"] as? String
                    }
                    #expect(texts.joined() == expected, "\(answer)")
                } else {
                    #expect(answer.contains(#""text":"\#(expected)""#), "\(answer)")
                }
            }
        }
    }
}
