#if canImport(Glibc)
import Glibc
#endif
import RelayConfig

/// Running as root only as long as it takes to open the socket.
enum Privileges {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Gives the unix socket its configured mode and group. Neither call
    /// follows a symbolic link: the socket's directory may belong to the
    /// service user, who must not be able to point root's chmod elsewhere.
    static func prepareSocket(path: String, mode: UInt32, group: String?) throws(Failure) {
        if let group {
            guard let entry = getgrnam(group) else { throw Failure(description: "socket_group \"\(group)\" does not exist") }
            guard fchownat(AT_FDCWD, path, uid_t.max, entry.pointee.gr_gid, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw Failure(description: "cannot give \(path) to group \(group): \(String(cString: strerror(errno)))")
            }
        }
        // glibc does this without following a link (it fails on one instead).
        guard fchmodat(AT_FDCWD, path, mode_t(mode), AT_SYMLINK_NOFOLLOW) == 0 else {
            throw Failure(description: "cannot set mode \(String(mode, radix: 8)) on \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Creates the directory of the verdict database if missing and, when we
    /// are root and will become `user`, gives it and the database's files to
    /// that user so the database stays writable after the switch.
    ///
    /// That directory belongs to the service user, so whatever is in it may
    /// have been planted by whoever took that user over: a `verdicts.sqlite-wal`
    /// that links to /etc/shadow must not make root hand it over. So each
    /// file is opened without following links, must be a regular file with no
    /// other name (a hard link), and is changed through its descriptor.
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
        let uid = entry.pointee.pw_uid, gid = entry.pointee.pw_gid
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard directoryFD >= 0 else {
            throw Failure(description: "cannot open \(directory) (a symbolic link is refused): \(String(cString: strerror(errno)))")
        }
        defer { close(directoryFD) }
        guard fchown(directoryFD, uid, gid) == 0 else {
            throw Failure(description: "cannot give \(directory) to \(user): \(String(cString: strerror(errno)))")
        }
        let name = String(databasePath[databasePath.index(after: databasePath.lastIndex(of: "/")!)...])
        for file in [name, name + "-wal", name + "-shm"] {
            let fd = openat(directoryFD, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
            if fd < 0 && errno == ENOENT { continue }
            guard fd >= 0 else {
                let reason = errno == ELOOP ? "it is a symbolic link; remove it" : String(cString: strerror(errno))
                throw Failure(description: "refusing to give \(directory)/\(file) to \(user): \(reason)")
            }
            defer { close(fd) }
            try giveRegularFile(fd, path: "\(directory)/\(file)", to: uid, gid, user: user)
        }
    }

    private static func giveRegularFile(_ fd: CInt, path: String, to uid: uid_t, _ gid: gid_t, user: String) throws(Failure) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw Failure(description: "cannot stat \(path): \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG, info.st_nlink == 1 else {
            throw Failure(description: "refusing to give \(path) to \(user): it is not a plain file with a single name "
                + "(\(info.st_nlink) link(s)); remove it")
        }
        guard fchown(fd, uid, gid) == 0 else {
            throw Failure(description: "cannot give \(path) to \(user): \(String(cString: strerror(errno)))")
        }
    }

    /// Writes the pid file as root, before the switch. Its directory may be
    /// the service user's (the unit's RuntimeDirectory), so the same care as
    /// for the database: no link followed, and a file with another name (a
    /// hard link to a system file) is not truncated.
    static func writePIDFile(_ path: String) throws(Failure) {
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let reason = errno == ELOOP ? "it is a symbolic link; remove it" : String(cString: strerror(errno))
            throw Failure(description: "cannot write pid file \(path): \(reason)")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_nlink == 1 else {
            throw Failure(description: "cannot write pid file \(path): it is not a plain file with a single name; remove it")
        }
        let text = Array("\(getpid())\n".utf8)
        guard ftruncate(fd, 0) == 0, write(fd, text, text.count) == text.count else {
            throw Failure(description: "cannot write pid file \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Why a start as root must not go on: with `user` empty the daemon would
    /// stay root for good, and whatever the MTA or a tested host sends is then
    /// handled by root. Staying root takes `run_as_root`, named on purpose.
    static func rootRefusal(_ service: RelayMilterConfig.Service) -> String? {
        guard getuid() == 0 || geteuid() == 0, service.user == nil, !service.runAsRoot else { return nil }
        return "service.user: started as root with no user to run as: name one (user = \"relay-milter\", the "
            + "package's), or set run_as_root = true to stay root"
    }

    /// When root, becomes `user` (its primary group and supplementary groups).
    /// Returns false when nothing was to be done.
    static func drop(to user: String?, socketPath: String?) throws(Failure) -> Bool {
        guard getuid() == 0 || geteuid() == 0, let user else { return false }
        guard let entry = getpwnam(user) else { throw Failure(description: "user \"\(user)\" does not exist") }
        let uid = entry.pointee.pw_uid, gid = entry.pointee.pw_gid
        // The socket's owner becomes the service user, so that it can remove it at stop.
        if let socketPath { _ = fchownat(AT_FDCWD, socketPath, uid, gid_t.max, AT_SYMLINK_NOFOLLOW) }
        guard initgroups(user, gid) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
            throw Failure(description: "cannot switch to user \(user): \(String(cString: strerror(errno)))")
        }
        guard setuid(0) != 0 else { throw Failure(description: "still able to regain root after switching to \(user)") }
        return true
    }
}
