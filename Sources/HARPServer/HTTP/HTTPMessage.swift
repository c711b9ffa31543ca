import Foundation

/// A parsed HTTP/1.1 request. Header names are lower-cased.
struct HTTPRequest: Sendable, Equatable {
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
        case 100: return "Continue"
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

    /// Status line, headers and body.
    var bytes: Data { Self.head(status: status, contentType: contentType, contentLength: body.count) + body }

    static let continueLine = Data("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    /// The status line and headers; `contentLength` nil for a body that ends when the connection closes (SSE).
    static func head(status: Int, contentType: String, contentLength: Int?) -> Data {
        var text = "HTTP/1.1 \(status) \(reason(status))\r\nContent-Type: \(contentType)\r\nConnection: close\r\n"
        if let contentLength { text += "Content-Length: \(contentLength)\r\n" } else { text += "Cache-Control: no-cache\r\n" }
        return Data((text + "\r\n").utf8)
    }
}

/// Why a request could not be read; each maps to an error status.
enum HTTPReadError: Error, Equatable {
    case malformed(String)         // 400
    case timedOut                  // 408
    case lengthRequired            // 411
    case bodyTooLarge(length: Int) // 413
    case headersTooLarge           // 431
    case unsupported(String)       // 501

    var status: Int {
        switch self {
        case .malformed: return 400
        case .timedOut: return 408
        case .lengthRequired: return 411
        case .bodyTooLarge: return 413
        case .headersTooLarge: return 431
        case .unsupported: return 501
        }
    }

    var message: String {
        switch self {
        case .malformed(let why): return "malformed HTTP request: \(why)"
        case .timedOut: return "the request was not received in time"
        case .headersTooLarge: return "request headers are too large"
        case .lengthRequired: return "a request body needs a Content-Length header"
        case .bodyTooLarge(let length): return "request body of \(length) bytes is larger than the server accepts"
        case .unsupported(let what): return "\(what) is not supported"
        }
    }

    /// The JSON error answer.
    var response: HTTPResponse {
        let body = try? JSONSerialization.data(withJSONObject: ["error": ["message": message, "type": "invalid_request_error"]])
        return HTTPResponse(status: status, body: body ?? Data())
    }
}
