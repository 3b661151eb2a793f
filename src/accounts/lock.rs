//! Who may write the database: an advisory lock on `<database>.lock`,
//! held by a running server for its life and by an account command while
//! it writes, so neither changes accounts under the other.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it: a server running on this database, or an
    /// account command changing it.
    #[error(
        "{0} is held: a rookery server (or another `rookery accounts` command) is using this database"
    )]
    Held(PathBuf),
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An exclusive lock on the database, released when dropped (or when the
/// process ends, however it ends).
#[derive(Debug)]
pub struct DatabaseLock {
    _file: File,
    path: PathBuf,
}

impl DatabaseLock {
    /// Takes the lock beside `database` without waiting; the lock file is
    /// created if need be and left in place.
    pub fn acquire(database: &Path) -> Result<DatabaseLock, LockError> {
        let path = lock_path(database);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match try_lock_exclusive(&file) {
            Ok(true) => Ok(DatabaseLock { _file: file, path }),
            Ok(false) => Err(LockError::Held(path)),
            Err(source) => Err(io(source)),
        }
    }

    /// The lock file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `flock(LOCK_EX | LOCK_NB)`: false when another open file holds it. The
/// lock goes with the file, so with the process too, however it ends.
/// (std's `File::try_lock` does the same from Rust 1.89, above this
/// crate's minimum version.)
fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    // SAFETY: flock takes a descriptor that `file` keeps open for the
    // call, and no pointers.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.kind() == std::io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(error)
    }
}

/// `<database>.lock`, beside the database.
fn lock_path(database: &Path) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(".lock");
    PathBuf::from(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_database_is_refused_until_the_first_goes() {
        let dir = std::env::temp_dir().join(format!("rookery-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let database = dir.join("rookery.db");
        let first = DatabaseLock::acquire(&database).unwrap();
        assert_eq!(first.path(), dir.join("rookery.db.lock"));
        match DatabaseLock::acquire(&database) {
            Err(LockError::Held(path)) => assert_eq!(path, dir.join("rookery.db.lock")),
            other => panic!("expected Held, got {other:?}"),
        }
        drop(first);
        DatabaseLock::acquire(&database).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
