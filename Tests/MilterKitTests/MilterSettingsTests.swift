@testable import MilterKit
import MilterSocket
import Testing

/// What a milter asks the MTA to skip or not to wait for, by socket kind.
struct MilterSettingsTests {
    private func settings(_ socket: SocketSpec) -> MilterSettings {
        // EOM is listed as skipped but is not quiet: it must never be skipped.
        MilterSettings(name: "test", socket: socket, backlog: 8, timeoutSeconds: 5, macros: MacroRequest([:]),
                       quietStages: [.helo, .data], skippedStages: [.data, .eom])
    }

    @Test func aUnixSocketSkipsDataAndWaivesTheHeloAndDataReplies() {
        let unix = settings(.unix(path: "/run/relay-milter/sock"))
        #expect(unix.skipSteps == 0x200) // SMFIP_NODATA only
        #expect(unix.noReplySteps == 0x2000 | 0x10000) // SMFIP_NR_HELO | SMFIP_NR_DATA
    }

    @Test(arguments: [SocketSpec.inet(port: 10025, host: "127.0.0.1"), .inet6(port: 10025, host: "::1")])
    func tcpWaivesOnlyTheHeloReplyAndSkipsNothing(socket: SocketSpec) {
        // Over TCP a packet the MTA sends alone and unanswered leaves its next
        // write to Nagle: Postfix sends HELO with MAIL, but DATA alone.
        let tcp = settings(socket)
        #expect(tcp.skipSteps == 0)
        #expect(tcp.noReplySteps == 0x2000) // SMFIP_NR_HELO
    }

    @Test func onlyConnectAndHeloLeaveWithTheNextCommand() {
        let travelling = MilterStage.allCases.filter(\.unansweredLeavesWithTheNextCommand)
        #expect(Set(travelling) == [.connect, .helo])
    }
}
