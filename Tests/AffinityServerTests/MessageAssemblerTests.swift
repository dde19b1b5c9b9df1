import NIOCore
import NIOWebSocket
import Testing

@testable import AffinityServer

@Suite("MessageAssembler")
struct MessageAssemblerTests {
    private func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func aSingleTextFrameIsAMessage() {
        var assembler = MessageAssembler(limit: 100)
        let result = assembler.append(opcode: .text, fin: true, maskKey: nil, data: buffer("hello"))
        #expect(result == .message(.text(Array("hello".utf8))))
        #expect(!assembler.isAssembling)
    }

    @Test func fragmentsAreJoinedAndUnmaskedEachFromItsOwnStart() {
        var assembler = MessageAssembler(limit: 100)
        let nioKey: WebSocketMaskingKey = [1, 2, 3, 4]
        let key = WebSocketMask(nioKey)
        func masked(_ text: String) -> ByteBuffer {
            var data = ByteBuffer(string: text)
            data.webSocketMask(nioKey)
            return data
        }
        #expect(assembler.append(opcode: .text, fin: false, maskKey: key, data: masked("{\"type\":")) == .incomplete)
        #expect(assembler.isAssembling)
        #expect(assembler.append(opcode: .continuation, fin: false, maskKey: key, data: masked("\"hel")) == .incomplete)
        let last = assembler.append(opcode: .continuation, fin: true, maskKey: key, data: masked("lo\"}"))
        #expect(last == .message(.text(Array(#"{"type":"hello"}"#.utf8))))
    }

    @Test func anOversizedFrameKeepsOnlyItsPrefix() {
        var assembler = MessageAssembler(limit: 10, oversizedPrefix: 4)
        let result = assembler.append(opcode: .text, fin: true, maskKey: nil, data: buffer("0123456789AB"))
        #expect(result == .message(.oversized(prefix: Array("0123".utf8))))
    }

    @Test func fragmentsOverTheLimitBecomeOversizedWithTheirPrefix() {
        var assembler = MessageAssembler(limit: 10, oversizedPrefix: 6)
        #expect(assembler.append(opcode: .text, fin: false, maskKey: nil, data: buffer("0123")) == .incomplete)
        #expect(
            assembler.append(opcode: .continuation, fin: false, maskKey: nil, data: buffer("456789")) == .incomplete)
        #expect(
            assembler.append(opcode: .continuation, fin: false, maskKey: nil, data: buffer("ABCDEF")) == .incomplete)
        let result = assembler.append(opcode: .continuation, fin: true, maskKey: nil, data: buffer("GH"))
        #expect(result == .message(.oversized(prefix: Array("012345".utf8))))
        // the next message starts afresh
        #expect(
            assembler.append(opcode: .text, fin: true, maskKey: nil, data: buffer("ok")) == .message(.text([111, 107])))
    }

    @Test func exactlyTheLimitIsNotOversized() {
        var assembler = MessageAssembler(limit: 4)
        #expect(assembler.append(opcode: .text, fin: false, maskKey: nil, data: buffer("ab")) == .incomplete)
        #expect(
            assembler.append(opcode: .continuation, fin: true, maskKey: nil, data: buffer("cd"))
                == .message(.text(Array("abcd".utf8))))
    }

    @Test func binaryMessagesAreReportedWithoutTheirContent() {
        var assembler = MessageAssembler(limit: 4)
        #expect(assembler.append(opcode: .binary, fin: false, maskKey: nil, data: buffer("abcdef")) == .incomplete)
        #expect(
            assembler.append(opcode: .continuation, fin: true, maskKey: nil, data: buffer("gh")) == .message(.binary))
    }

    @Test func aContinuationWithoutAMessageIsAProtocolError() {
        var assembler = MessageAssembler(limit: 100)
        #expect(assembler.append(opcode: .continuation, fin: true, maskKey: nil, data: buffer("x")) == .protocolError)
    }

    @Test func aNewMessageInsideAFragmentedOneIsAProtocolError() {
        var assembler = MessageAssembler(limit: 100)
        #expect(assembler.append(opcode: .text, fin: false, maskKey: nil, data: buffer("x")) == .incomplete)
        #expect(assembler.append(opcode: .text, fin: true, maskKey: nil, data: buffer("y")) == .protocolError)
        #expect(!assembler.isAssembling)
        #expect(assembler.append(opcode: .binary, fin: false, maskKey: nil, data: buffer("x")) == .incomplete)
        #expect(assembler.append(opcode: .text, fin: true, maskKey: nil, data: buffer("y")) == .protocolError)
    }

    @Test func anEmptyTextMessageIsAMessage() {
        var assembler = MessageAssembler(limit: 100)
        #expect(assembler.append(opcode: .text, fin: true, maskKey: nil, data: ByteBuffer()) == .message(.text([])))
    }
}
