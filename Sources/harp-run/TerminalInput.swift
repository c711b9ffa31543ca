import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The chat's input. On a terminal it reads in raw (non-canonical) mode with its own line editing,
/// so a line is not cut at the terminal's 4095-byte canonical limit, and with bracketed paste
/// (`ESC[?2004h`): a paste arrives whole between `ESC[200~` and `ESC[201~`, newlines included,
/// and only Enter typed outside a paste sends the message. Keys: Enter sends, Backspace erases a
/// character, Ctrl-U the line, Ctrl-C abandons the line, Ctrl-D on an empty line ends the chat.
/// While a reply streams, `pollDuringReply` sees Ctrl-C (stop the reply) and Ctrl-D (stop it and
/// end the chat); other keys typed then are kept for the next line. Not a terminal: plain lines.
final class TerminalInput {
    enum Line: Equatable {
        case text(String)
        /// Ctrl-C at the prompt: the line was abandoned.
        case interrupted
        /// Ctrl-D on an empty line, or the end of input.
        case end
    }

    enum ReplyKey { case interrupt, end }

    let isTerminal: Bool
    private var saved = termios()
    private var typedAhead: [UInt8] = []
    private var restored = false

    init() {
        isTerminal = isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1
        guard isTerminal, tcgetattr(STDIN_FILENO, &saved) == 0 else { return }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw)
        Output.write("\u{1B}[?2004h")
    }

    deinit { restore() }

    /// Gives the terminal back as it was (also called on exit).
    func restore() {
        guard isTerminal, !restored else { return }
        restored = true
        Output.write("\u{1B}[?2004l")
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
    }

    func readLine() -> Line {
        guard isTerminal else { return Swift.readLine(strippingNewline: true).map(Line.text) ?? .end }
        var editor = LineEditor()
        while true {
            let bytes: [UInt8]
            if !typedAhead.isEmpty {
                bytes = typedAhead
                typedAhead = []
            } else {
                var chunk = [UInt8](repeating: 0, count: 64 * 1024)
                let n = chunk.withUnsafeMutableBytes { Glibc.read(STDIN_FILENO, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return editor.isEmpty ? .end : .text(editor.text) }
                bytes = Array(chunk[..<n])
            }
            for (i, byte) in bytes.enumerated() {
                let (echo, line) = editor.feed(byte)
                if !echo.isEmpty { Output.write(echo) }
                if let line {
                    typedAhead = Array(bytes[(i + 1)...])
                    return line
                }
            }
        }
    }

    /// Checks, without blocking, for Ctrl-C or Ctrl-D typed during a reply.
    func pollDuringReply() -> ReplyKey? {
        guard isTerminal else { return nil }
        var fds = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        guard poll(&fds, 1, 0) > 0 else { return nil }
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = chunk.withUnsafeMutableBytes { Glibc.read(STDIN_FILENO, $0.baseAddress, $0.count) }
        guard n > 0 else { return .end }
        var key: ReplyKey?
        for byte in chunk[..<n] {
            switch byte {
            case 0x03: key = key ?? .interrupt
            case 0x04: key = .end
            default: typedAhead.append(byte)
            }
        }
        return key
    }
}

/// The line being typed: bytes in, echo out. Separate from the terminal so it can be tested.
struct LineEditor {
    private var bytes: [UInt8] = []
    private var pasting = false
    /// Bytes of an escape sequence being read (starting with ESC).
    private var escape: [UInt8] = []

    var isEmpty: Bool { bytes.isEmpty }
    var text: String { String(decoding: bytes, as: UTF8.self) }

    /// Consumes one byte; returns what to echo and, when the line ends, the result.
    mutating func feed(_ byte: UInt8) -> (echo: String, line: TerminalInput.Line?) {
        if !escape.isEmpty { return (readEscape(byte), nil) }
        if byte == 0x1B { escape = [byte]; return ("", nil) }
        if pasting {
            switch byte {
            case 0x0A, 0x0D: bytes.append(0x0A); return ("\n", nil)
            case 0x09, 0x20...: bytes.append(byte); return (byte < 0x80 ? String(UnicodeScalar(byte)) : echoUTF8(), nil)
            default: return ("", nil)
            }
        }
        switch byte {
        case 0x0A, 0x0D:
            return ("\n", .text(text))
        case 0x03:
            bytes.removeAll()
            return ("^C\n", .interrupted)
        case 0x04:
            return ("", bytes.isEmpty ? .end : nil)
        case 0x7F, 0x08:
            return (erase(), nil)
        case 0x15:
            var echo = ""
            while !bytes.isEmpty { echo += erase() }
            return (echo, nil)
        case 0x09, 0x20...:
            bytes.append(byte)
            return (byte < 0x80 ? String(UnicodeScalar(byte)) : echoUTF8(), nil)
        default:
            return ("", nil)
        }
    }

    /// A multi-byte character is echoed once its last byte arrives.
    private func echoUTF8() -> String {
        var start = bytes.count - 1
        while start > 0 && bytes[start] & 0xC0 == 0x80 { start -= 1 }
        let tail = Array(bytes[start...])
        guard let lead = tail.first else { return "" }
        let length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return tail.count == length ? String(decoding: tail, as: UTF8.self) : ""
    }

    private mutating func erase() -> String {
        guard !bytes.isEmpty else { return "" }
        var text = self.text
        let removed = text.removeLast()
        bytes = Array(text.utf8)
        if removed == "\n" { return "" }  // the previous line stays on screen
        let wide = removed.unicodeScalars.first.map { (0x1100...0x115F).contains($0.value) || (0x2E80...0xA4CF).contains($0.value)
            || (0xAC00...0xD7A3).contains($0.value) || (0xF900...0xFAFF).contains($0.value) || (0xFF00...0xFF60).contains($0.value)
            || (0x1F300...0x1FAFF).contains($0.value) || (0x20000...0x3FFFD).contains($0.value) } ?? false
        return wide ? "\u{8}\u{8}  \u{8}\u{8}" : "\u{8} \u{8}"
    }

    /// ESC [ params final (CSI) or ESC O final (SS3); only the paste brackets mean something here.
    private mutating func readEscape(_ byte: UInt8) -> String {
        escape.append(byte)
        if escape.count == 2 {
            if byte != UInt8(ascii: "[") && byte != UInt8(ascii: "O") { escape = [] }
            return ""
        }
        if escape[1] == UInt8(ascii: "O") || (0x40...0x7E).contains(byte) || escape.count > 32 {
            let sequence = String(decoding: escape, as: UTF8.self)
            escape = []
            if sequence == "\u{1B}[200~" { pasting = true }
            if sequence == "\u{1B}[201~" { pasting = false }
        }
        return ""
    }
}
