import Foundation
import Testing
@testable import HARP
import HARPTestSupport

/// Files crafted by hand: overlapping tensors, names built to garble a terminal, huge arrays.
@Suite("Hostile GGUF files")
struct HostileGGUFTests {
    /// A GGUF v3 file byte by byte, so tests can state what the project's writer never would.
    struct RawGGUF {
        var bytes: [UInt8] = []
        mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
        mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes += Array(s.utf8) }
        /// Header, one string key (general.architecture = llama), and `tensors` f32 entries at the given offsets.
        init(tensors: [(name: String, elements: Int, offset: Int)], dataBytes: Int) {
            u32(0x4655_4747); u32(3); u64(UInt64(tensors.count)); u64(1)
            string("general.architecture"); u32(8); string("llama")
            for t in tensors {
                string(t.name); u32(1); u64(UInt64(t.elements)); u32(GGMLType.f32.rawValue); u64(UInt64(t.offset))
            }
            bytes += [UInt8](repeating: 0, count: (32 - bytes.count % 32) % 32 + dataBytes)
        }
        func write() throws -> String {
            let path = TinyModel.temporaryPath("raw")
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
    }

    static func error(opening path: String) -> String? {
        do { _ = try GGUFFile(path: path); return nil } catch { return "\(error)" }
    }

    @Test("tensors whose data overlap are refused")
    func overlap() throws {
        let path = try RawGGUF(tensors: [("a", 16, 0), ("b", 16, 32)], dataBytes: 128).write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let message = try #require(Self.error(opening: path))
        #expect(message.contains("tensors \"a\" and \"b\" overlap"), "\(message)")
        let apart = try RawGGUF(tensors: [("a", 16, 0), ("b", 16, 64)], dataBytes: 128).write()
        defer { try? FileManager.default.removeItem(atPath: apart) }
        #expect(Self.error(opening: apart) == nil)
    }

    @Test("names from the file are escaped and cut in errors: one short line, no ESC")
    func escapedNames() throws {
        let name = "x\n\u{1B}[31mred\u{7}" + String(repeating: "A", count: 100_000)
        // An offset past the end of the file makes the reader name the tensor.
        let path = try RawGGUF(tensors: [(name, 8, 1 << 20)], dataBytes: 64).write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let message = try #require(Self.error(opening: path))
        #expect(!message.contains("\n") && !message.contains("\u{1B}") && !message.contains("\u{7}"))
        #expect(message.contains("x\\u{A}\\u{1B}[31mred\\u{7}AAA"), "\(message.prefix(300))")
        #expect(message.count < 600, "\(message.count) characters")
        // The same through HARPError's own description, for text that reached a message elsewhere.
        #expect(HARPError.invalidModel(path: "m.gguf", reason: "bad \u{1B}[2J\r\nkind").description == "m.gguf: bad \\u{1B}[2J\\u{D}\\u{A}kind")
    }

    @Test("a numeric metadata array is stored packed and written back byte for byte")
    func packedArrays() throws {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        w.set("big.u8", .array(bytes.map { .uint8($0) }))
        w.set("small.f32", .array([.float32(1.5), .float32(-2)]))
        w.set("flags", .array([.bool(true), .bool(false)]))
        let path = TinyModel.temporaryPath("packed")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)
        let file = try GGUFFile(path: path)
        guard case .packed(let packed) = file.metadata["big.u8"] else { Issue.record("not packed"); return }
        #expect(packed.bytes == bytes && packed.count == 100_000)
        #expect(file.metadata["big.u8"] == .array(bytes.map { .uint8($0) }))
        #expect(file.metadata["small.f32"]?.floatArray == [1.5, -2])
        #expect(file.metadata["flags"]?.arrayValue == [.bool(true), .bool(false)])
        // The in-memory reader (the fuzz target's) reads the same.
        let inMemory = try GGUFFile(bytes: try w.encoded(), name: "memory.gguf")
        #expect(inMemory.metadata == file.metadata && inMemory.metadataKeys == file.metadataKeys)
        // Copying the metadata into a writer re-encodes the same file.
        var copy = GGUFWriter()
        copy.copyMetadata(from: file)
        #expect(try copy.encoded() == w.encoded())
    }

    @Test("a bool array element other than 0 or 1 is refused")
    func badBoolArray() throws {
        var w = GGUFWriter()
        w.set("flags", .array([.uint8(1), .uint8(2)]))
        var bytes = try w.encoded()
        // Element type code u8 (0) → bool (7): the 4 bytes after the key's value type and before the count.
        let key = Array("flags".utf8)
        let at = try #require((0..<bytes.count - key.count).first { Array(bytes[$0..<$0 + key.count]) == key }) + key.count + 4
        bytes[at] = 7
        let path = TinyModel.temporaryPath("bools")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(Self.error(opening: path)?.contains("bool value 2 at index 1") == true)
    }

    @Test("an array length beyond the file is refused before anything is allocated")
    func hugeArrayLength() throws {
        var raw = RawGGUF(tensors: [], dataBytes: 0)
        raw.bytes = Array(raw.bytes.prefix(24))
        raw.bytes[16] = 1  // metadata count 1
        raw.string("k"); raw.u32(9); raw.u32(0); raw.u64(1 << 62)
        let path = try raw.write()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(Self.error(opening: path)?.contains("array length 4611686018427387904 runs past the end of the file") == true)
    }
}
