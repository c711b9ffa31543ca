import Foundation

/// A parsed HTTP/1.1 request. Header names are lower-cased.
struct HTTPRequest: Sendable {
    var method: String
    var path: String
    var headers: [String: String]
    var body: Data
}

/// A complete response, sent with `Content-Length` and `Connection: close`.
struct HTTPResponse: Sendable {
    var status: Int
    var contentType = "application/json"
    var body: Data

    init(status: Int, contentType: String = "application/json", body: Data) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        default: return "Status \(status)"
        }
    }

    /// The status line and headers; `contentLength` nil for a body that ends when the connection closes (SSE).
    static func head(status: Int, contentType: String, contentLength: Int?) -> Data {
        var text = "HTTP/1.1 \(status) \(reason(status))\r\nContent-Type: \(contentType)\r\nConnection: close\r\n"
        if let contentLength { text += "Content-Length: \(contentLength)\r\n" } else { text += "Cache-Control: no-cache\r\n" }
        return Data((text + "\r\n").utf8)
    }
}

/// Why a request could not be read; each maps to an error status.
enum HTTPReadError: Error {
    case malformed(String)        // 400
    case headersTooLarge          // 431
    case lengthRequired           // 411
    case bodyTooLarge(length: Int) // 413
    case unsupported(String)      // 501
    case closedOrTimedOut         // nothing to answer

    var status: Int? {
        switch self {
        case .malformed: return 400
        case .headersTooLarge: return 431
        case .lengthRequired: return 411
        case .bodyTooLarge: return 413
        case .unsupported: return 501
        case .closedOrTimedOut: return nil
        }
    }

    var message: String {
        switch self {
        case .malformed(let why): return "malformed HTTP request: \(why)"
        case .headersTooLarge: return "request headers are too large"
        case .lengthRequired: return "a request body needs a Content-Length header"
        case .bodyTooLarge(let length): return "request body of \(length) bytes is larger than the server accepts"
        case .unsupported(let what): return "\(what) is not supported"
        case .closedOrTimedOut: return "connection closed"
        }
    }
}

/// Splits the request head (everything before the blank line) into method, path and headers.
enum HTTPHeadParser {
    static func parse(_ head: Data) throws -> (method: String, path: String, headers: [String: String]) {
        guard let text = String(data: head, encoding: .utf8) else { throw HTTPReadError.malformed("head is not UTF-8") }
        var lines = text.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1.") else {
            throw HTTPReadError.malformed("bad request line")
        }
        var headers: [String: String] = [:]
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { throw HTTPReadError.malformed("header line without ':'") }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        // Query strings carry nothing the API uses.
        let path = requestLine[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return (String(requestLine[0]), path, headers)
    }
}
