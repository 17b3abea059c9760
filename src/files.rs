//! Files keyward creates on disk: every one is private to its owner (0600) whatever the
//! umask, and nothing is created through a symlink.
//!
//! The database and its `-wal`/`-shm` side files, backups and the generated admin password
//! all hold secrets (the master secret signs admin tokens), so a world-readable copy is a
//! way in for any local user.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode bits that give group or others any access.
const NOT_OWNER: u32 = 0o077;

/// Makes every file this process creates from now on private (umask 077). Called first
/// thing by the binary; the functions below do not rely on it.
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_bits_truncate(NOT_OWNER));
}

/// Creates `path` empty with mode 0600; fails if anything (a file, a symlink, even a
/// dangling one) is already there.
pub fn create_new_private(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    // The mode given to open is filtered by the umask; set it outright.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

/// Writes `text` and a newline to `path` with mode 0600, replacing a file that is there; a
/// symlink at `path` is removed, never followed.
pub fn write_private(path: &Path, text: &str) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} is a directory", path.display()),
            ));
        }
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut file = create_new_private(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// The files of the SQLite database at `db` that exist: the file itself and its side files.
pub fn database_files(db: &Path) -> Vec<PathBuf> {
    let mut files = vec![db.to_owned()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files.retain(|f| f.exists());
    files
}

/// Those of `files` that group or others may read or write, with their modes.
pub fn readable_by_others(files: &[PathBuf]) -> Vec<(PathBuf, u32)> {
    files
        .iter()
        .filter_map(|f| {
            let mode = std::fs::metadata(f).ok()?.permissions().mode() & 0o777;
            (mode & NOT_OWNER != 0).then(|| (f.clone(), mode))
        })
        .collect()
}

/// A directory only its owner can enter, made next to `near` for work in progress (a
/// backup being written); removed when dropped.
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    pub fn beside(near: &Path) -> io::Result<PrivateDir> {
        let parent = match near.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(|e| io::Error::other(format!("OS random source failed: {e}")))?;
        let name = hex::encode(random);
        let dir = parent.join(format!(".keyward-tmp-{name}"));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(PrivateDir(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Moves `from` to `to` unless something (a file, a symlink) is at `to` already: never
/// replaces, never follows a link.
pub fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        from,
        rustix::fs::CWD,
        to,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(io::Error::from)
}

/// The soft limit on open files of this process, if it has one.
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_and_never_follow_a_link() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("keyward-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let target = dir.join("elsewhere");
        std::fs::write(&target, "untouched")?;
        let link = dir.join("secret");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link)?;
        assert!(
            create_new_private(&link).is_err(),
            "a symlink is never opened for creation"
        );
        write_private(&link, "s3cret")?;
        assert_eq!(std::fs::read_to_string(&target)?, "untouched");
        let meta = std::fs::symlink_metadata(&link)?;
        assert!(meta.is_file());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&dir)
    }
}
