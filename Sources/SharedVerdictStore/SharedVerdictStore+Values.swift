import VerdictStore

// What the shared store takes and gives, the same in every build (see
// SharedVerdictStore.swift, and SharedVerdictStoreNotBuiltIn.swift for a
// build without the PostgreSQL trait).
extension SharedVerdictStore {
    public enum TLSMode: String, Sendable, CaseIterable {
        case disable, prefer, require
    }

    /// Where the shared database is and how to log in.
    public struct Endpoint: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var user: String
        public var password: String?
        public var database: String
        public var tls: TLSMode
        /// PEM certificates to verify the server against instead of the system's roots.
        public var caFile: String?

        public init(host: String, port: Int, user: String, password: String?, database: String, tls: TLSMode, caFile: String? = nil) {
            self.host = host
            self.port = port
            self.user = user
            self.password = password
            self.database = database
            self.tls = tls
            self.caFile = caFile
        }
    }

    /// The outcome of asking to run a host's test.
    public enum Claim: Sendable, Equatable {
        /// This instance runs the test; release the claim when it is written.
        case claimed
        /// Another instance is testing the host now.
        case heldBy(instance: String)
        /// Another instance already tested it; here is its unexpired verdict.
        case known(VerdictRecord)
    }

    /// A verdict as changed in the shared database, in change order.
    public struct Change: Sendable, Equatable {
        public var id: Int64
        public var record: VerdictRecord
        /// The instance that wrote it.
        public var instance: String
    }

    public enum Failure: Error, CustomStringConvertible {
        case schemaTooNew(found: Int, known: Int)
        case notBuiltIn
        /// The connection closed before a query could start on it.
        case connectionClosed
        /// A query had no answer in this time; the connection was closed.
        case noAnswer(within: Duration)

        public var description: String {
            switch self {
            case .schemaTooNew(let found, let known):
                "the shared database has schema version \(found); this relay-milter knows up to \(known): upgrade it"
            case .notBuiltIn:
                "this relay-milter was built without PostgreSQL support (the package trait PostgreSQL)"
            case .connectionClosed:
                "the connection to the shared database has closed"
            case .noAnswer(let time):
                "the shared database did not answer a query in \(time); the connection was closed"
            }
        }
    }
}
