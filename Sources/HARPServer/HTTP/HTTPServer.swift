import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A small HTTP/1.1 server over POSIX sockets, built so that slow or hostile clients cannot deny it
/// to others:
/// - one reader thread multiplexes every connection that is still sending its request (`poll`),
///   so a connection costs a thread only once its request is complete;
/// - the head must arrive within `headTimeout` seconds of accepting and the body within
///   `bodyTimeout` seconds of the head (else 408); at most `maxReadingConnections` are read at
///   once, and when a new one arrives beyond that the one reading longest is answered 408 and closed;
/// - at most `maxActiveRequests` requests are handled at once (each on its own thread); beyond that 503.
/// Every response closes its connection.
public final class HTTPServer: @unchecked Sendable {  // `active` is guarded by `lock`; the loop's state belongs to the reader thread
    public struct Limits: Sendable {
        public var maxHeadBytes = 16 * 1024
        public var maxBodyBytes = 1 << 20
        public var maxReadingConnections = 256
        public var maxActiveRequests = 64
        public var headTimeout = 10.0
        public var bodyTimeout = 30.0
        /// A handler's write that makes no progress for this long fails (the client stopped reading).
        public var writeTimeout = 30
        public init() {}
    }

    typealias Handler = @Sendable (HTTPRequest, HTTPConnection) -> Void

    public let port: Int
    let limits: Limits
    private let listener: Int32
    private let handler: Handler
    private let lock = NSLock()
    private var active = 0
    private var stopped = false
    private let wake: (read: Int32, write: Int32)

    /// Binds and listens on `host:port` (port 0: any free port; `port` then says which).
    init(host: String, port: Int, limits: Limits = Limits(), handler: @escaping Handler) throws {
        self.limits = limits
        self.handler = handler
        signal(SIGPIPE, SIG_IGN)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
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
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else {
            close(fd)
            throw HTTPServerError.socket("pipe", errno)
        }
        for end in pipeFDs { Self.setNonBlocking(end, true) }
        wake = (pipeFDs[0], pipeFDs[1])
        listener = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(listener)
        close(wake.read)
        close(wake.write)
    }

    /// Requests being handled now.
    var activeRequests: Int { lock.withLock { active } }

    /// Runs the reader loop on the calling thread until `stop()`.
    public func serve() {
        var reading: [Int32: Reading] = [:]
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while !lock.withLock({ stopped }) {
            let now = Date().timeIntervalSinceReferenceDate
            var fds = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0), pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            let order = Array(reading.keys)
            for fd in order { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let nextDeadline = reading.values.map(\.deadline).min() ?? now + 1
            let timeout = Int32(max(0, min(1000, (nextDeadline - now) * 1000 + 1)))
            let ready = poll(&fds, nfds_t(fds.count), timeout)
            if ready < 0 && errno != EINTR { usleep(10_000) }
            if fds[0].revents != 0 { drainWakePipe() }
            for (k, fd) in order.enumerated() where fds[k + 2].revents != 0 {
                // Taken out of the table (and the parser out of the connection) so the parser's
                // buffer has one owner and grows in place instead of being copied on every read.
                guard var connection = reading.removeValue(forKey: fd) else { continue }
                let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n < 0 && (errno == EAGAIN || errno == EINTR) { reading[fd] = connection; continue }
                if n <= 0 { Glibc.close(fd); continue }
                guard var parser = connection.parser else {
                    connection.discarded += n
                    if connection.discarded > 4 * limits.maxBodyBytes { Glibc.close(fd) } else { reading[fd] = connection }
                    continue
                }
                connection.parser = nil
                do {
                    let progress = try parser.feed(chunk[..<n])
                    if case .complete(let request) = progress {
                        dispatch(request, fd)
                        continue
                    }
                    if progress == .sendContinue { _ = Self.sendNow(fd, HTTPResponse.continueLine) }
                    if parser.hasHead && !connection.headRead {
                        connection.headRead = true
                        connection.deadline = Date().timeIntervalSinceReferenceDate + limits.bodyTimeout
                    }
                    connection.parser = parser
                    reading[fd] = connection
                } catch {
                    reading[fd] = refuse(fd, error.response)
                }
            }
            let after = Date().timeIntervalSinceReferenceDate
            for (fd, connection) in reading where connection.deadline <= after {
                if connection.closing {
                    reading[fd] = nil
                    Glibc.close(fd)
                } else {
                    reading[fd] = refuse(fd, HTTPReadError.timedOut.response)
                }
            }
            if fds[1].revents != 0 { acceptAll(into: &reading) }
        }
        for fd in reading.keys { Glibc.close(fd) }
    }

    /// Starts `serve()` on a thread of its own (for embedding and tests).
    func start() {
        let thread = Thread { [self] in serve() }
        thread.name = "harp-http"
        thread.start()
    }

    /// Ends `serve()` soon; requests being handled finish on their own threads.
    func stop() {
        lock.withLock { stopped = true }
        var byte: UInt8 = 1
        _ = Glibc.write(wake.write, &byte, 1)
    }

    /// A connection still sending its request, or (no parser) being drained after an error answer.
    private struct Reading {
        var parser: HTTPRequestParser?
        var deadline: Double
        var accepted: Double
        var headRead = false
        var discarded = 0
        var closing: Bool { parser == nil }
    }

    private func drainWakePipe() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while Glibc.read(wake.read, &bytes, bytes.count) > 0 {}
    }

    private func acceptAll(into reading: inout [Int32: Reading]) {
        while true {
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { return }
            Self.setNonBlocking(fd, true)
            let open = reading.filter { !$0.value.closing }
            if open.count >= limits.maxReadingConnections, let oldest = open.min(by: { $0.value.accepted < $1.value.accepted }) {
                reading[oldest.key] = refuse(oldest.key, HTTPReadError.timedOut.response)
            }
            let now = Date().timeIntervalSinceReferenceDate
            reading[fd] = Reading(parser: HTTPRequestParser(maxHeadBytes: limits.maxHeadBytes, maxBodyBytes: limits.maxBodyBytes),
                                  deadline: now + limits.headTimeout, accepted: now)
        }
    }

    /// Answers an error without blocking, then drains what the client still sends for a moment so
    /// it sees the answer instead of a connection reset.
    private func refuse(_ fd: Int32, _ response: HTTPResponse) -> Reading {
        _ = Self.sendNow(fd, response.bytes)
        shutdown(fd, Int32(SHUT_WR))
        return Reading(parser: nil, deadline: Date().timeIntervalSinceReferenceDate + 2, accepted: 0)
    }

    static func setNonBlocking(_ fd: Int32, _ on: Bool) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, on ? flags | Int32(O_NONBLOCK) : flags & ~Int32(O_NONBLOCK))
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    private static func sendNow(_ fd: Int32, _ data: Data) -> Bool {
        data.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return true }
            return Glibc.send(fd, base, raw.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) == raw.count
        }
    }

    /// Hands a complete request to a handler thread, or answers 503 when too many are running.
    private func dispatch(_ request: HTTPRequest, _ fd: Int32) {
        let admitted = lock.withLock {
            guard active < limits.maxActiveRequests else { return false }
            active += 1
            return true
        }
        guard admitted else {
            _ = Self.sendNow(fd, HTTPResponse(status: 503, body: Data(#"{"error":{"message":"too many requests at once"}}"#.utf8)).bytes)
            Glibc.close(fd)
            return
        }
        Self.setNonBlocking(fd, false)
        var timeout = timeval(tv_sec: limits.writeTimeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connection = HTTPConnection(socket: fd)
        let thread = Thread { [self] in
            handler(request, connection)
            connection.close()
            lock.withLock { active -= 1 }
        }
        thread.start()
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

/// One client connection once its request is read: writing a response or a stream, and noticing
/// when the client has gone away.
final class HTTPConnection: @unchecked Sendable {  // used by one thread or task at a time; `isOpen` by the writer only
    private let socket: Int32
    private var isOpen = true

    init(socket: Int32) { self.socket = socket }

    func send(_ response: HTTPResponse) {
        _ = write(response.bytes)
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

    /// True when the client has closed its side or the connection broke. Bytes it sends after its
    /// request are read and dropped (every response closes the connection). Never blocks.
    func peerHasClosed() -> Bool {
        let peerShutdown = Int16(0x2000)  // POLLRDHUP (Linux; not exported without _GNU_SOURCE)
        var fds = pollfd(fd: socket, events: Int16(POLLIN) | peerShutdown, revents: 0)
        guard poll(&fds, 1, 0) > 0 else { return false }
        if fds.revents & (peerShutdown | Int16(POLLHUP) | Int16(POLLERR)) != 0 { return true }
        var scratch = [UInt8](repeating: 0, count: 4096)
        let n = scratch.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)
    }

    func close() {
        shutdown(socket, Int32(SHUT_RDWR))
        Glibc.close(socket)
    }
}
