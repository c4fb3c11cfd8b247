#if canImport(Glibc)
import Glibc
#endif

/// Running as root only as long as it takes to open the socket.
enum Privileges {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Gives the unix socket its configured mode and group.
    static func prepareSocket(path: String, mode: UInt32, group: String?) throws(Failure) {
        if let group {
            guard let entry = getgrnam(group) else { throw Failure(description: "socket_group \"\(group)\" does not exist") }
            guard chown(path, uid_t.max, entry.pointee.gr_gid) == 0 else {
                throw Failure(description: "cannot give \(path) to group \(group): \(String(cString: strerror(errno)))")
            }
        }
        guard chmod(path, mode_t(mode)) == 0 else {
            throw Failure(description: "cannot set mode \(String(mode, radix: 8)) on \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Creates the directory of the verdict database if missing and, when we
    /// are root and will become `user`, gives it to that user so the database
    /// stays writable after the switch.
    static func prepareStateDirectory(for databasePath: String, user: String?) throws(Failure) {
        let directory = String(databasePath[..<(databasePath.lastIndex(of: "/") ?? databasePath.startIndex)])
        guard !directory.isEmpty else { return }
        var info = stat()
        if stat(directory, &info) != 0 {
            guard mkdir(directory, 0o750) == 0 else {
                throw Failure(description: "cannot create \(directory): \(String(cString: strerror(errno)))")
            }
        }
        guard geteuid() == 0, let user, let entry = getpwnam(user) else { return }
        for path in [directory, databasePath, databasePath + "-wal", databasePath + "-shm"] {
            _ = chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid)
        }
    }

    /// When root, becomes `user` (its primary group and supplementary groups).
    /// Returns false when nothing was to be done.
    static func drop(to user: String?, socketPath: String?) throws(Failure) -> Bool {
        guard getuid() == 0 || geteuid() == 0, let user else { return false }
        guard let entry = getpwnam(user) else { throw Failure(description: "user \"\(user)\" does not exist") }
        let uid = entry.pointee.pw_uid, gid = entry.pointee.pw_gid
        // The socket's owner becomes the service user, so that it can remove it at stop.
        if let socketPath { _ = chown(socketPath, uid, gid_t.max) }
        guard initgroups(user, gid) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw Failure(description: "cannot switch to user \(user): \(String(cString: strerror(errno)))")
        }
        guard setuid(0) != 0 else { throw Failure(description: "still able to regain root after switching to \(user)") }
        return true
    }
}
