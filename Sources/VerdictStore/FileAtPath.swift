import Foundation
import GRDB

/// Which file a path names: device and inode, as `stat` gives them.
struct FileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}

extension VerdictStore {
    /// What the store's path names now, compared with the file it opened.
    public enum FileAtPath: Equatable, Sendable {
        /// The file opened (or a read-only snapshot, which has no file to watch).
        case same
        /// Nothing: the file was deleted (or moved away) while open. SQLite goes
        /// on writing to the unlinked file, and every write would be lost at
        /// the next start.
        case gone
        /// Another file: an admin restored or replaced the database.
        case replaced
    }

    public var fileAtPath: FileAtPath {
        guard let opened else { return .same }
        guard let now = FileIdentity(path: path) else { return .gone }
        return now == opened ? .same : .replaced
    }

    /// For a store whose file is `.gone`: writes what it holds (the deleted
    /// file is still open, so nothing is lost) to a new file at `path`, closes
    /// itself and returns the store on the new file.
    ///
    /// The copy is made beside the path and renamed in place only after this
    /// store is closed: the old connection's `-wal` and `-shm` go by the same
    /// names and are removed when it closes.
    public func rewrittenToPath() throws -> VerdictStore {
        let copy = "\(path).rewriting-\(getpid())"
        for suffix in ["", "-wal", "-shm", "-journal"] { unlink(copy + suffix) }
        let destination = try DatabaseQueue(path: copy)
        // Through the writer's connection, which is open already: a new
        // reader connection would look for the deleted file by name.
        try pool.writeWithoutTransaction { source in
            try destination.writeWithoutTransaction { try source.backup(to: $0) }
        }
        try destination.close()
        try pool.close()
        guard rename(copy, path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path, NSUnderlyingErrorKey: POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)])
        }
        return try VerdictStore(path: path)
    }
}
