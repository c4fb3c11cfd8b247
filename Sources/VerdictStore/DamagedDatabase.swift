import Foundation
import GRDB

extension VerdictStore {
    /// Opens the database at `path` like `init(path:)`, except that a file
    /// SQLite calls corrupt or not a database is moved aside (to
    /// `PATH.corrupt-UNIXTIME`, with its `-wal` and `-shm`) for an admin to
    /// look at, and a fresh database is made in its place. The verdicts it held
    /// are lost; hosts are tested again as they connect. Any other error (no
    /// permission, no space) is thrown as it is: the file may be fine.
    public static func openMovingDamagedAside(path: String, now: Date = Date()) throws -> (store: VerdictStore, movedTo: String?) {
        do {
            return (try VerdictStore(path: path), nil)
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CORRUPT || error.resultCode == .SQLITE_NOTADB {
            let movedTo = "\(path).corrupt-\(Int(now.timeIntervalSince1970))"
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
                try FileManager.default.moveItem(atPath: path + suffix, toPath: movedTo + suffix)
            }
            return (try VerdictStore(path: path), movedTo)
        }
    }
}
