//! Online backups: `VACUUM INTO` a private directory beside the target, then a rename that
//! never replaces anything.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{SqliteStore, StoreError, StoreErrorKind, configure};

impl SqliteStore {
    /// Copies the database to `target` with `VACUUM INTO`: one read transaction, so the copy
    /// is consistent while the server keeps serving and writing. The copy is written, 0600,
    /// in a private directory beside `target`, then moved to `target` only if nothing (no
    /// file, no symlink) is there: it never overwrites and never follows a link, and a
    /// failed backup leaves nothing behind. `progress` is told the bytes written so far
    /// (polled from the file) and the expected total, until the copy is done.
    pub async fn backup_to(
        &self,
        target: &Path,
        mut progress: impl FnMut(u64, u64) + Send + 'static,
    ) -> Result<(), StoreError> {
        let invalid = |message: String| StoreError::new(StoreErrorKind::Other, message);
        if std::fs::symlink_metadata(target).is_ok() {
            return Err(invalid(format!(
                "{} exists already; backups never overwrite",
                target.display()
            )));
        }
        let folder = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !folder.is_dir() {
            return Err(StoreError::new(
                StoreErrorKind::Other,
                format!(
                    "cannot write {}: there is no directory {}",
                    target.display(),
                    folder.display()
                ),
            ));
        }
        let parent = folder.to_owned();
        let source = self.path.as_ref().clone();
        let target = target.to_owned();
        super::blocking(move || {
            let work = crate::files::PrivateDir::beside(&target)
                .map_err(|e| invalid(format!("cannot write in {}: {e}", parent.display())))?;
            let copy = work.path().join("backup.db");
            crate::files::create_new_private(&copy)
                .map_err(|e| invalid(format!("cannot write in {}: {e}", parent.display())))?;
            let conn = Connection::open_with_flags(
                &source,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            configure(&conn)?;
            let total: u64 = conn
                .query_row(
                    "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map(|n| u64::try_from(n).unwrap_or(0))?;
            let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let watch = {
                let (done, copy) = (std::sync::Arc::clone(&done), copy.clone());
                std::thread::spawn(move || {
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let written = std::fs::metadata(&copy).map(|m| m.len()).unwrap_or(0);
                        progress(written.min(total), total);
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    progress(total, total);
                })
            };
            // VACUUM INTO writes into an empty file that exists, keeping its mode.
            let result = conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()]).map(|_| ());
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = watch.join();
            result?;
            crate::files::rename_no_replace(&copy, &target).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    invalid(format!("{} exists already; backups never overwrite", target.display()))
                } else {
                    invalid(format!("cannot move the backup to {}: {e}", target.display()))
                }
            })
        })
        .await
    }
}
