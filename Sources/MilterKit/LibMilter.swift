import CMilter
import CMilterShim

// Every number below is libmilter's, written out because Swift does not
// import these macros as typed constants; CShim/CMilterShim/contract.c checks
// each against libmilter's headers at compile time.

/// libmilter's `sfsistat` values, named once.
enum SMFIStatus: CInt {
    case `continue` = 0
    case reject = 1
    case discard = 2
    case accept = 3
    case tempfail = 4
    case noReply = 7
    case skip = 8
    case allOptions = 10
}

/// libmilter's `SMFIM_*` macro stages for `smfi_setsymlist`.
extension MilterStage {
    var symlistStage: CInt? {
        switch self {
        case .connect: 0
        case .helo: 1
        case .mail: 2
        case .rcpt: 3
        case .data: 4
        case .eom: 5
        }
    }
}

/// Flags from mfapi.h/mfdef.h that Swift does not import (they are `L`-suffixed macros).
enum MilterFlags {
    static let addHeaders: UInt = 0x0000_0001 // SMFIF_ADDHDRS
    static let setSymlist: UInt = 0x0000_0100 // SMFIF_SETSYMLIST

    static let noBody: UInt = 0x0000_0010 // SMFIP_NOBODY
    static let noHeaders: UInt = 0x0000_0020 // SMFIP_NOHDRS
    static let noEndOfHeaders: UInt = 0x0000_0040 // SMFIP_NOEOH
    static let noUnknown: UInt = 0x0000_0100 // SMFIP_NOUNKNOWN
    static let noData: UInt = 0x0000_0200 // SMFIP_NODATA
    static let rejectedRecipients: UInt = 0x0000_0800 // SMFIP_RCPT_REJ
    static let noReplyConnect: UInt = 0x0000_1000 // SMFIP_NR_CONN
    static let noReplyHelo: UInt = 0x0000_2000 // SMFIP_NR_HELO
    static let noReplyData: UInt = 0x0001_0000 // SMFIP_NR_DATA
}

extension MilterStage {
    /// The `SMFIP_NR_*` flag that tells the MTA not to wait for this stage's
    /// reply; nil for the stages where a milter's answer is its decision.
    var noReplyFlag: UInt? {
        switch self {
        case .connect: MilterFlags.noReplyConnect
        case .helo: MilterFlags.noReplyHelo
        case .data: MilterFlags.noReplyData
        case .mail, .rcpt, .eom: nil
        }
    }

    /// Whether an MTA that need not wait for this stage's reply sends its
    /// packet together with its next command, which matters over TCP: a packet
    /// sent alone and left unanswered holds the MTA's next write until the
    /// milter's delayed ACK (Nagle, ~40 ms). Postfix keeps what it writes in
    /// its stream buffer until it next reads from the milter (milter8.c), so
    /// HELO leaves with MAIL, or with QUIT when the client leaves first; no
    /// stall measured. DATA does not: a no-reply DATA stalls Postfix, which
    /// hands the milter connection to its cleanup server right after it; that
    /// the hand-over sends DATA alone is our reading of that stall. CONNECT
    /// leaves with HELO in the same way (read, not measured). Postfix only;
    /// Sendmail writes each packet at once, its macros apart from their
    /// command, so unanswered packets are no new case for it.
    var unansweredLeavesWithTheNextCommand: Bool {
        switch self {
        case .connect, .helo: true
        case .data, .mail, .rcpt, .eom: false
        }
    }

    /// The `SMFIP_NO*` flag that tells the MTA not to send this stage at all;
    /// nil where MilterKit has no use for skipping it.
    var skipFlag: UInt? {
        switch self {
        case .data: MilterFlags.noData
        case .connect, .helo, .mail, .rcpt, .eom: nil
        }
    }
}

let miSuccess: CInt = 0 // MI_SUCCESS
