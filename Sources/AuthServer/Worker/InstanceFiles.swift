import Foundation
import Logging

/// Modes of the files Gatehouse keeps in its instance folder (issue 10, item 7). The
/// process umask (027, set by `gatehouse` at start) keeps everything away from others; the
/// database (created 0600 by `Connection`) and the key are owner-only on top of that: they
/// hold password and secret hashes.
public enum InstanceFiles {
    /// Takes group-write and every permission of others away from the database files of an
    /// instance created before they were made 0600 (SQLite made them 0644). A PostgreSQL
    /// URI is no file: skipped.
    public static func tightenDatabaseModes(_ path: String) {
        guard path.hasPrefix("/") else { return }
        for file in [path, path + "-wal", path + "-shm"] {
            var st = stat()
            guard stat(file, &st) == 0, st.st_mode & 0o027 != 0 else { continue }
            let old = st.st_mode & 0o7777
            if chmod(file, old & ~0o027) == 0 {
                Log.warn("file_mode_tightened", ["path": file, "from": String(old, radix: 8), "to": String(old & ~0o027, radix: 8)])
            }
        }
    }
}
