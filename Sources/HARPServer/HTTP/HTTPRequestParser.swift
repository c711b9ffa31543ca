import Foundation

/// Reads one HTTP/1.1 request from bytes as they arrive. Pure (no sockets), so the server's
/// event loop and the tests drive the same code.
///
/// Accepted: CRLF or bare-LF line endings, `Content-Length` bodies (a repeated header must repeat
/// the same value), `Expect: 100-continue` (reported once so the caller can answer `100 Continue`).
/// Refused: conflicting or non-numeric `Content-Length` (400: a request-smuggling hazard behind a
/// proxy), header folding, whitespace before a header's colon, control characters, bodies without
/// a length (411), `Transfer-Encoding` (501), heads over `maxHeadBytes` (431), bodies over
/// `maxBodyBytes` (413).
struct HTTPRequestParser {
    enum Progress: Equatable {
        case needMore
        /// The head asked for `100 Continue` and the body has not arrived; reported once.
        case sendContinue
        case complete(HTTPRequest)
    }

    struct Head: Equatable {
        var method: String
        var path: String
        var headers: [String: String]
        var contentLength: Int
        var expectsContinue: Bool
    }

    let maxHeadBytes: Int
    let maxBodyBytes: Int
    private var buffer: [UInt8] = []
    /// Where the search for the blank line that ends the head resumes.
    private var scanned = 0
    private(set) var head: Head?
    private var continueReported = false

    init(maxHeadBytes: Int, maxBodyBytes: Int) {
        self.maxHeadBytes = maxHeadBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// True once the head has been read (the body deadline applies from then on).
    var hasHead: Bool { head != nil }

    mutating func feed<C: Collection>(_ bytes: C) throws(HTTPReadError) -> Progress where C.Element == UInt8 {
        buffer.append(contentsOf: bytes)
        if head == nil {
            guard let (headEnd, bodyStart) = findHeadEnd() else {
                guard buffer.count <= maxHeadBytes else { throw .headersTooLarge }
                return .needMore
            }
            guard headEnd <= maxHeadBytes else { throw .headersTooLarge }
            head = try Self.parseHead(buffer[..<headEnd], maxBodyBytes: maxBodyBytes)
            buffer.removeFirst(bodyStart)
        }
        guard let head else { return .needMore }
        if buffer.count >= head.contentLength {
            return .complete(HTTPRequest(method: head.method, path: head.path, headers: head.headers,
                                         body: Data(buffer.prefix(head.contentLength))))
        }
        if head.expectsContinue && !continueReported {
            continueReported = true
            return .sendContinue
        }
        return .needMore
    }

    /// The end of the head (before the blank line) and the start of the body: the first LF followed
    /// by CRLF or LF.
    private mutating func findHeadEnd() -> (Int, Int)? {
        var i = max(scanned, 0)
        while i < buffer.count {
            if buffer[i] == 0x0A {
                if i + 1 < buffer.count, buffer[i + 1] == 0x0A { return (i, i + 2) }
                if i + 2 < buffer.count, buffer[i + 1] == 0x0D, buffer[i + 2] == 0x0A { return (i, i + 3) }
                if i + 2 >= buffer.count { scanned = i; return nil }  // the blank line may still be arriving
            }
            i += 1
        }
        scanned = buffer.count
        return nil
    }

    static func isToken(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        default: return Array("!#$%&'*+-.^_`|~".utf8).contains(b)
        }
    }

    /// The head's bytes up to (not including) the LF that ends its last line.
    static func parseHead(_ bytes: ArraySlice<UInt8>, maxBodyBytes: Int) throws(HTTPReadError) -> Head {
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map { line -> ArraySlice<UInt8> in
            line.last == 0x0D ? line.dropLast() : line
        }
        // A request may be preceded by empty lines (RFC 9112 §2.2).
        while let first = lines.first, first.isEmpty { lines.removeFirst() }
        guard !lines.isEmpty else { throw .malformed("empty request") }
        for line in lines where line.contains(where: { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F }) {
            throw .malformed("control character in the request head")
        }
        let requestLine = lines.removeFirst().split(separator: 0x20, omittingEmptySubsequences: false)
        guard requestLine.count == 3, !requestLine[0].isEmpty, requestLine[0].allSatisfy(isToken), !requestLine[1].isEmpty,
              requestLine[2].elementsEqual("HTTP/1.1".utf8) || requestLine[2].elementsEqual("HTTP/1.0".utf8) else {
            throw .malformed("bad request line")
        }
        var headers: [String: String] = [:]
        var lengths: Set<String> = []
        for line in lines {
            guard let first = line.first else { continue }
            guard first != 0x20, first != 0x09 else { throw .malformed("folded header line") }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex,
                  line[..<colon].allSatisfy(isToken) else {
                throw .malformed("bad header line")
            }
            guard let value = String(validating: line[(colon + 1)...], as: UTF8.self) else { throw .malformed("header value is not UTF-8") }
            let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
            let trimmed = value.trimmingCharacters(in: CharacterSet(charactersIn: " \t"))
            if name == "content-length" { lengths.insert(trimmed) }
            headers[name] = headers[name].map { "\($0), \(trimmed)" } ?? trimmed
        }
        if headers["transfer-encoding"] != nil { throw .unsupported("Transfer-Encoding") }
        let method = String(decoding: requestLine[0], as: UTF8.self)
        var length = 0
        if let text = lengths.first {
            guard lengths.count == 1 else { throw .malformed("conflicting Content-Length headers") }
            guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(text) else {
                throw .malformed("bad Content-Length '\(text)'")
            }
            length = n
            headers["content-length"] = text
        } else if method == "POST" || method == "PUT" {
            throw .lengthRequired
        }
        guard length <= maxBodyBytes else { throw .bodyTooLarge(length: length) }
        // Query strings carry nothing the API uses.
        let target = String(decoding: requestLine[1], as: UTF8.self)
        let path = String(target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
        let expects = headers["expect"]?.lowercased() == "100-continue" && length > 0
        return Head(method: method, path: path, headers: headers, contentLength: length, expectsContinue: expects)
    }
}
