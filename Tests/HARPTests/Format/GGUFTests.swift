import Foundation
import Testing
@testable import HARP
import HARPTestSupport

@Suite("GGUF reader and writer")
struct GGUFTests {
    @Test("every metadata type and tensor survives a write and read")
    func roundTrip() throws {
        var w = GGUFWriter()
        let values: [(String, GGUFValue)] = [
            ("a.u8", .uint8(200)), ("a.i8", .int8(-3)), ("a.u16", .uint16(60000)), ("a.i16", .int16(-300)),
            ("a.u32", .uint32(4_000_000_000)), ("a.i32", .int32(-70000)), ("a.u64", .uint64(1 << 40)),
            ("a.i64", .int64(-(1 << 40))), ("a.f32", .float32(1.5)), ("a.f64", .float64(-2.25)),
            ("a.bool", .bool(true)), ("a.str", .string("naïve ☃")),
            ("a.arr", .array([.int32(1), .int32(-2)])), ("a.strs", .array([.string("x"), .string("")])),
            ("a.nested", .array([.array([.uint8(1)]), .array([])])),
        ]
        for (k, v) in values { w.set(k, v) }
        let floats: [Float] = (0..<64).map { Float($0) * 0.25 - 3 }
        try w.addTensor(name: "t.f32", shape: [32, 2], type: .f32, floats: floats)
        try w.addTensor(name: "t.q8", shape: [64], type: .q8_0, floats: floats)
        let path = TinyModel.temporaryPath("roundtrip")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try w.write(to: path)

        let file = try GGUFFile(path: path)
        #expect(file.version == 3)
        #expect(file.metadataKeys == values.map(\.0))
        for (k, v) in values { #expect(file.metadata[k] == v, "key \(k)") }
        let t = try #require(file.tensor(named: "t.f32"))
        #expect(t.shape == [32, 2] && t.type == .f32 && t.fileOffset % 32 == 0)
        #expect(TensorCodec.decode(file.bytes(of: t), type: .f32, rowLength: 32, rows: 2) == floats)
        let q = try #require(file.tensor(named: "t.q8"))
        let decoded = TensorCodec.decode(file.bytes(of: q), type: .q8_0, rowLength: 64, rows: 1)
        // Q8_0 rounds to the nearest step of amax/127 within each block of 32.
        #expect(decoded.maxAbsDifference(floats) <= 12.75 / 127 * 0.51)  // half a step, plus the f16 rounding of the scale
    }

    @Test("accessors accept every integer width")
    func accessors() {
        #expect(GGUFValue.uint16(7).intValue == 7)
        #expect(GGUFValue.int64(-7).intValue == -7)
        #expect(GGUFValue.float32(2).floatValue == 2)
        #expect(GGUFValue.array([.uint32(1), .int8(2)]).intArray == [1, 2])
        #expect(GGUFValue.array([.uint32(1), .string("x")]).intArray == nil)
        #expect(GGUFValue.string("x").intValue == nil)
    }

    private func writeSample() throws -> (bytes: [UInt8], tensorDataStart: Int) {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        try w.addTensor(name: "t", shape: [32, 4], type: .f32, floats: Array(repeating: 1, count: 128))
        let bytes = try w.encoded()
        return (bytes, bytes.count - 128 * 4)
    }

    private func expectInvalid(_ bytes: [UInt8], mentioning text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let path = TinyModel.temporaryPath("bad")
        defer { try? FileManager.default.removeItem(atPath: path) }
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        do {
            _ = try GGUFFile(path: path)
            Issue.record("expected an error mentioning '\(text)'", sourceLocation: sourceLocation)
        } catch let error as HARPError {
            #expect(error.description.contains(path), sourceLocation: sourceLocation)
            #expect(error.description.contains(text), "\(error.description)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("bad magic, unsupported version")
    func badHeader() throws {
        var (bytes, _) = try writeSample()
        bytes[0] = UInt8(ascii: "X")
        expectInvalid(bytes, mentioning: "bad magic")
        (bytes, _) = try writeSample()
        bytes[4] = 9
        expectInvalid(bytes, mentioning: "version 9")
    }

    @Test("a file cut at any length is rejected, never read past its end")
    func truncated() throws {
        let (bytes, _) = try writeSample()
        for cut in stride(from: 0, to: bytes.count - 1, by: 7) {
            let path = TinyModel.temporaryPath("cut")
            FileManager.default.createFile(atPath: path, contents: Data(bytes[0..<cut]))
            #expect(throws: HARPError.self, "cut at \(cut)") { _ = try GGUFFile(path: path) }
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    @Test("unknown tensor type and out-of-range offsets are named")
    func badTensorInfo() throws {
        let (bytes, _) = try writeSample()
        // The tensor entry: name length (u64 1), "t", n_dims (u32 2), dims (u64 32, 4), then type u32 and offset u64.
        let entry: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, UInt8(ascii: "t"), 2, 0, 0, 0]
        var typeAt = -1
        for i in 0..<(bytes.count - entry.count) where Array(bytes[i..<(i + entry.count)]) == entry {
            typeAt = i + entry.count + 16
            break
        }
        try #require(typeAt > 0)
        var unknown = bytes
        unknown[typeAt] = 99
        expectInvalid(unknown, mentioning: "tensor \"t\" has unknown type 99")
        var far = bytes
        far[typeAt + 4 + 3] = 0x7f  // offset = large
        expectInvalid(far, mentioning: "tensor \"t\"")
    }

    @Test("a missing file names the path")
    func missingFile() {
        #expect(throws: HARPError.io(path: "/nonexistent/model.gguf", reason: "No such file or directory")) {
            _ = try GGUFFile(path: "/nonexistent/model.gguf")
        }
    }

    @Test("writing refuses to replace the protected input and leaves no temporary file")
    func atomicWrite() throws {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        let dir = try TinyModel.temporaryDirectory("atomic")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.gguf"
        try w.write(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        w.set("x", .bool(true))
        #expect(throws: HARPError.self) { try w.write(to: path, protecting: path) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["model.gguf"])
    }
}
