import NIOCore
import RelayProbe

/// Splits the byte stream into lines (CRLF or bare LF). Only framing: what a
/// line means is the state machine's business. A "line" longer than
/// `maxLength` is cut there and handed on as it is: an SMTP server never
/// sends one, so the state machine will call it not-SMTP.
struct SMTPLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = String
    let maxLength: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        if let newline = view.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - view.startIndex
            var line = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 1)
            if line.readableBytesView.last == UInt8(ascii: "\r") { line = line.getSlice(at: line.readerIndex, length: line.readableBytes - 1)! }
            context.fireChannelRead(wrapInboundOut(String(decoding: line.readableBytesView.prefix(maxLength), as: UTF8.self)))
            return .continue
        }
        if buffer.readableBytes > maxLength {
            let line = buffer.readSlice(length: buffer.readableBytes)!
            context.fireChannelRead(wrapInboundOut(String(decoding: line.readableBytesView.prefix(maxLength), as: UTF8.self)))
            return .continue
        }
        return .needMoreData
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
