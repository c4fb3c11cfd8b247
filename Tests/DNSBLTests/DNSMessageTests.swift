import DNSBL
import Testing

struct DNSMessageTests {
    @Test func queryBytesAreWhatTheRFCSays() throws {
        let bytes = try DNSMessage.query(id: 0x1234, name: "2.0.0.127.bl.test", type: .a)
        #expect(Array(bytes.prefix(12)) == [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])
        #expect(Array(bytes.dropFirst(12)) == [1] + Array("2".utf8) + [1] + Array("0".utf8) + [1] + Array("0".utf8)
            + [3] + Array("127".utf8) + [2] + Array("bl".utf8) + [4] + Array("test".utf8) + [0, 0, 1, 0, 1])
    }

    @Test func badNamesAreRefused() {
        #expect(throws: DNSMessage.Malformed.self) { try DNSMessage.query(id: 1, name: "a..b", type: .a) }
        #expect(throws: DNSMessage.Malformed.self) { try DNSMessage.query(id: 1, name: String(repeating: "x", count: 64) + ".test", type: .a) }
        #expect(throws: DNSMessage.Malformed.self) {
            try DNSMessage.query(id: 1, name: Array(repeating: String(repeating: "x", count: 60), count: 5).joined(separator: "."), type: .a)
        }
    }

    @Test func blocklistNames() {
        #expect(DNSMessage.blocklistName(ipv4: 0x7F00_0002, zone: "bl.test") == "2.0.0.127.bl.test")
        let v6 = DNSMessage.blocklistName(ipv6: 0x2001_0db8_0000_0000_0000_0000_0000_0001, zone: "bl.test")
        #expect(v6 == "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test")
    }

    /// A listed host: an A and a TXT answer, names compressed.
    @Test func parsesAListing() throws {
        var bytes: [UInt8] = [0xAB, 0xCD, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0]
        let question = try DNSMessage.query(id: 0, name: "2.0.0.127.bl.test", type: .a).dropFirst(12)
        bytes += question
        bytes += [0xC0, 12, 0, 1, 0, 1, 0, 0, 0x0E, 0x10, 0, 4, 127, 0, 0, 2] // A 127.0.0.2, TTL 3600
        let text = Array("open relay".utf8)
        bytes += [0xC0, 12, 0, 16, 0, 1, 0, 0, 0, 60, 0, UInt8(text.count + 4), UInt8(text.count)] + text + [2] + Array("!!".utf8)
        let answer = try DNSMessage.parse(bytes, expectingID: 0xABCD)
        #expect(answer.rcode == .noError && !answer.truncated)
        #expect(answer.addresses == [DNSMessage.AddressRecord(address: 0x7F00_0002, ttl: 3600)])
        #expect(answer.texts == ["open relay!!"])
    }

    /// Not listed: NXDOMAIN with the zone's SOA, whose minimum bounds the caching.
    @Test func parsesANameErrorWithItsNegativeTTL() throws {
        var bytes: [UInt8] = [0, 7, 0x84, 0x03, 0, 0, 0, 0, 0, 1, 0, 0]
        bytes += [2] + Array("bl".utf8) + [0, 0, 6, 0, 1, 0, 0, 1, 0x2C] // SOA, TTL 300
        let rdata: [UInt8] = [0xC0, 12, 0xC0, 12] + [0, 0, 0, 1] + [0, 0, 0, 2] + [0, 0, 0, 3] + [0, 0, 0, 4] + [0, 0, 0, 60]
        bytes += [0, UInt8(rdata.count)] + rdata
        let answer = try DNSMessage.parse(bytes, expectingID: 7)
        #expect(answer.rcode == .nameError && answer.addresses.isEmpty && answer.negativeTTL == 60)
    }

    @Test(arguments: [
        [UInt8](),
        [0, 7, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0], // an answer promised, none there
        [0, 7, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 9, 1, 2], // record data beyond the end
        [0, 7, 0x81, 0x80, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 3, 1, 2, 3], // A of 3 bytes
        [0, 7, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0x80, 0], // label type 10
        [0, 7, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0], // a query, not a response
        [0, 8, 0x81, 0x80, 0, 0, 0, 0, 0, 0, 0, 0], // another ID
    ])
    func malformedAnswersAreErrorsNotCrashes(bytes: [UInt8]) {
        #expect(throws: DNSMessage.Malformed.self) { try DNSMessage.parse(bytes, expectingID: 7) }
    }

    /// A pointer to itself ends the name when skipping: no loop.
    @Test func aSelfPointerDoesNotLoop() throws {
        let bytes: [UInt8] = [0, 7, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]
        #expect(try DNSMessage.parse(bytes, expectingID: 7).addresses.isEmpty)
    }
}
