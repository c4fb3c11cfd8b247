import Logging
import MilterKit
import RelayPolicy

/// relay-milter's whole configuration, validated. Immutable: a reload builds a
/// new one, and each connection keeps the one it started with.
public struct RelayMilterConfig: Sendable, Equatable {
    public struct Milter: Sendable, Equatable {
        public var socket: SocketSpec
        /// Permission bits for a unix socket; 0660 so the MTA's group can connect.
        public var socketMode: UInt32
        /// Group to own a unix socket (the MTA's group, e.g. `postfix`); nil keeps ours.
        public var socketGroup: String?
        public var backlog: Int32
        public var timeoutSeconds: Int32
    }

    public struct Service: Sendable, Equatable {
        /// Run as this user after opening the socket, when started as root.
        public var user: String?
        public var pidFile: String?
        public var logLevel: Logger.Level
        /// How long a stop waits for MTA sessions in progress.
        public var shutdownTimeoutSeconds: Int
    }

    public struct Replies: Sendable, Equatable {
        /// Text of the `550 5.7.1` reply; `{recipient}`, `{client}`, `{reason}` are filled in.
        public var rejectText: String
        /// Text of the `451 4.7.1` reply.
        public var tempfailText: String
        /// Header added to tagged messages.
        public var tagHeader: String
    }

    public var milter: Milter
    public var service: Service
    public var policy: PolicyConfig
    public var rules: ActionRules
    public var replies: Replies

    public static let defaultPath = "/etc/relay-milter/relay-milter.toml"

    public static let defaults = RelayMilterConfig(
        milter: Milter(
            socket: .unix(path: "/run/relay-milter/relay-milter.sock"),
            socketMode: 0o660, socketGroup: nil, backlog: 128, timeoutSeconds: 30
        ),
        service: Service(user: nil, pidFile: nil, logLevel: .info, shutdownTimeoutSeconds: 10),
        policy: PolicyConfig(
            trustedNetworks: [try! NetworkBlock(parsing: "127.0.0.0/8"), try! NetworkBlock(parsing: "::1/128")]
        ),
        rules: ActionRules(),
        replies: Replies(
            rejectText: "<{recipient}>: Relay access denied ({reason})",
            tempfailText: "<{recipient}>: Relay access temporarily refused ({reason})",
            tagHeader: "X-Relay-Milter"
        )
    )

    /// The config names of the per-reason actions in `[actions]`.
    static let actionKeys: [(key: String, reason: ReasonCode)] = [
        ("relay_denied", .denied),
        ("routed_address", .routedAddress),
        ("invalid_address", .invalidAddress),
        ("mta_remote_transport", .mtaRemoteTransport),
        ("sender_not_local", .senderNotLocal),
    ]
}
