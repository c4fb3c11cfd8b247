import Foundation
import GRDB

extension VerdictStore {
    /// Opens the database at `path` only to read it, for a daemon that cannot
    /// write there (a read-only file system or directory): its verdicts still
    /// count. Opened as immutable, because SQLite cannot otherwise read a
    /// database in WAL mode whose `-shm` it may not create; so the snapshot
    /// does not see later changes to the file.
    public static func openReadOnlySnapshot(path: String) throws -> VerdictStore {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
        }
        var configuration = Configuration()
        configuration.readonly = true
        // A URI filename (Debian's SQLite accepts them): characters with a
        // meaning in a URI are escaped.
        var escaped = ""
        for character in path.unicodeScalars {
            switch character {
            case "%", "?", "#": escaped += String(format: "%%%02X", character.value)
            default: escaped.unicodeScalars.append(character)
            }
        }
        let queue = try DatabaseQueue(path: "file:\(escaped)?immutable=1", configuration: configuration)
        let store = VerdictStore(path: path, readOnlyPool: queue)
        // Not one of ours: better no verdicts than wrong ones. One an earlier
        // release wrote (not yet migrated: the snapshot cannot) still holds the
        // verdict table as the first migration made it, which is all it is read for.
        guard try queue.read({ db in try Self.migrator.appliedIdentifiers(db).contains("v1: verdicts") }) else {
            throw DatabaseError(resultCode: .SQLITE_MISMATCH, message: "\(path) does not hold relay-milter's current schema")
        }
        return store
    }
}
