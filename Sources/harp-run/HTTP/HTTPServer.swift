import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small blocking HTTP/1.1 server over POSIX sockets: one thread accepts, one thread per
/// connection (at most `maxConnections`) reads one request, lets the handler answer, and closes.
/// Request heads and bodies are bounded; reads and writes time out, so a stalled client cannot
/// hold a thread forever.
final class HTTPServer: @unchecked Sendable {  // `openConnections` is guarded by `lock`
    struct Limits {
        var maxHeadBytes = 16 * 1024
        var maxBodyBytes = 1 << 20
        var maxConnections = 64
        var timeoutSeconds = 30
    }

    typealias Handler = @Sendable (HTTPRequest, HTTPConnection) -> Void

    let port: Int
    private let listener: Int32
    private let limits: Limits
    private let handler: Handler
    private let lock = NSLock()
    private var openConnections = 0

    /// Binds and listens on `host:port` (port 0: any free port; `port` then says which).
    init(host: String, port: Int, limits: Limits = Limits(), handler: @escaping Handler) throws {
        self.limits = limits
        self.handler = handler
        signal(SIGPIPE, SIG_IGN)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HTTPServerError.socket("socket", errno) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(clamping: port)).bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            close(fd)
            throw HTTPServerError.badHost(host)
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            let code = errno
            close(fd)
            throw HTTPServerError.socket("bind \(host):\(port)", code)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Accepts connections until the process ends (never returns).
    func serve() -> Never {
        while true {
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            var timeout = timeval(tv_sec: limits.timeoutSeconds, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let connection = HTTPConnection(socket: client)
            let admitted = lock.withLock {
                guard openConnections < limits.maxConnections else { return false }
                openConnections += 1
                return true
            }
            guard admitted else {
                connection.send(HTTPResponse(status: 503, body: Data(#"{"error":{"message":"too many connections"}}"#.utf8)))
                connection.close()
                continue
            }
            let thread = Thread { [self] in
                handle(connection)
                connection.close()
                lock.withLock { openConnections -= 1 }
            }
            thread.start()
        }
    }

    private func handle(_ connection: HTTPConnection) {
        do {
            handler(try connection.readRequest(limits: limits), connection)
        } catch let error as HTTPReadError {
            guard let status = error.status else { return }
            let body = try? JSONSerialization.data(withJSONObject: ["error": ["message": error.message, "type": "invalid_request_error"]])
            connection.send(HTTPResponse(status: status, body: body ?? Data()))
            if case .bodyTooLarge(let length) = error {
                // Read what the client is still sending so it sees the answer instead of a reset.
                connection.discard(upTo: min(length, 16 * limits.maxBodyBytes))
            }
        } catch {
            connection.send(HTTPResponse(status: 500, body: Data()))
        }
    }
}

enum HTTPServerError: Error, CustomStringConvertible {
    case socket(String, Int32)
    case badHost(String)

    var description: String {
        switch self {
        case .socket(let what, let code): return "\(what): \(String(cString: strerror(code)))"
        case .badHost(let host): return "--host: '\(host)' is not an IPv4 address"
        }
    }
}

/// One client connection: reading the request, then writing a response or a stream.
final class HTTPConnection: @unchecked Sendable {  // used by one thread or task at a time
    private let socket: Int32
    private var buffer = Data()
    private var isOpen = true

    init(socket: Int32) { self.socket = socket }

    func readRequest(limits: HTTPServer.Limits) throws -> HTTPRequest {
        let separator = Data("\r\n\r\n".utf8)
        var headEnd: Range<Data.Index>?
        while headEnd == nil {
            guard buffer.count <= limits.maxHeadBytes else { throw HTTPReadError.headersTooLarge }
            guard receive() else { throw HTTPReadError.closedOrTimedOut }
            headEnd = buffer.range(of: separator)
        }
        guard let headEnd else { throw HTTPReadError.closedOrTimedOut }
        guard headEnd.lowerBound <= limits.maxHeadBytes else { throw HTTPReadError.headersTooLarge }
        let (method, path, headers) = try HTTPHeadParser.parse(buffer[..<headEnd.lowerBound])
        buffer.removeSubrange(..<headEnd.upperBound)
        if headers["transfer-encoding"] != nil { throw HTTPReadError.unsupported("Transfer-Encoding") }
        var length = 0
        if let text = headers["content-length"] {
            guard let n = Int(text), n >= 0 else { throw HTTPReadError.malformed("bad Content-Length '\(text)'") }
            length = n
        } else if method == "POST" || method == "PUT" {
            throw HTTPReadError.lengthRequired
        }
        guard length <= limits.maxBodyBytes else { throw HTTPReadError.bodyTooLarge(length: length) }
        while buffer.count < length {
            guard receive() else { throw HTTPReadError.closedOrTimedOut }
        }
        return HTTPRequest(method: method, path: path, headers: headers, body: buffer.prefix(length))
    }

    /// Reads and drops up to `count` more bytes (or until the client stops or times out).
    func discard(upTo count: Int) {
        var remaining = count - buffer.count
        buffer.removeAll()
        while remaining > 0, receive() {
            remaining -= buffer.count
            buffer.removeAll()
        }
    }

    /// Appends what the socket has to `buffer`; false at end of stream, error or timeout.
    private func receive() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let n = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        buffer.append(contentsOf: chunk[..<n])
        return true
    }

    func send(_ response: HTTPResponse) {
        _ = write(HTTPResponse.head(status: response.status, contentType: response.contentType, contentLength: response.body.count) + response.body)
    }

    /// Starts a server-sent-events response; follow with `sendEvent`.
    func startEventStream() -> Bool {
        write(HTTPResponse.head(status: 200, contentType: "text/event-stream", contentLength: nil))
    }

    /// Sends one `data:` event; false when the client has gone away.
    func sendEvent(_ data: Data) -> Bool {
        write(Data("data: ".utf8) + data + Data("\n\n".utf8))
    }

    /// Writes everything, false when the client has gone away (or stopped reading for the timeout).
    func write(_ data: Data) -> Bool {
        guard isOpen else { return false }
        var offset = 0
        let ok = data.withUnsafeBytes { raw -> Bool in
            guard let base = raw.baseAddress else { return true }
            while offset < raw.count {
                let n = Glibc.send(socket, base + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                guard n > 0 else { return false }
                offset += n
            }
            return true
        }
        if !ok { isOpen = false }
        return ok
    }

    func close() {
        shutdown(socket, Int32(SHUT_RDWR))
        Glibc.close(socket)
    }
}
