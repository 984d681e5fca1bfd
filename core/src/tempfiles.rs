//! The temporary files of atomic writes ([`crate::persist::write_atomic`]): named
//! `.NAME.tmpPID-N` next to their target, registered while they exist so that a process
//! stopped by a signal can remove them ([`remove_all`]), and removed by a later save to the
//! same target once the process that made them is gone ([`remove_stale`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Temporary files this process has created and not yet renamed or removed.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// A temporary file being written; deregistered (and removed if it still exists) on drop.
pub(crate) struct TempFile {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
}

fn prefix(name: &str) -> String {
    format!(".{name}.tmp")
}

impl TempFile {
    /// Creates a fresh temporary file for `name` in `dir`, exclusively: a name unique to this
    /// process and call, so concurrent saves to the same target never share one.
    pub(crate) fn create(dir: &Path, name: &str) -> std::io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{}{}-{n}", prefix(name), std::process::id()));
        // Registered before it exists, so no moment is left in which a signal could strand it.
        lock().push(path.clone());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => Ok(TempFile { path, file }),
            Err(e) => {
                forget(&path);
                Err(e)
            }
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // After a successful rename the path is gone and this does nothing.
        let _ = std::fs::remove_file(&self.path);
        forget(&self.path);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    // A panic while holding the list leaves it valid: take it anyway.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn forget(path: &Path) {
    lock().retain(|p| p != path);
}

/// Removes every temporary file this process is writing. For a handler of SIGINT/SIGTERM run
/// on an ordinary thread just before the process exits (it takes a lock, so not from inside
/// a signal handler). Returns how many were removed.
pub fn remove_all() -> usize {
    let paths = std::mem::take(&mut *lock());
    paths
        .iter()
        .filter(|p| std::fs::remove_file(p).is_ok())
        .count()
}

/// Whether process `pid` still runs. Where that cannot be told, it is assumed to, so that a
/// file is never taken from under a live writer.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

/// Removes the temporary files for `name` in `dir` left by processes that no longer run (a
/// save killed before it could clean up). Returns how many were removed.
pub fn remove_stale(dir: &Path, name: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let prefix = prefix(name);
    entries
        .flatten()
        .filter(|e| {
            let file = e.file_name();
            let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
                return false;
            };
            // `PID-N`, both decimal: anything else is not ours.
            let Some((pid, n)) = rest.split_once('-') else {
                return false;
            };
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            digits(n)
                && digits(pid)
                && pid.parse::<u32>().is_ok_and(|p| !alive(p))
                && e.file_type().is_ok_and(|t| t.is_file())
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_files_are_removed_on_request_and_stale_ones_of_dead_processes_only() {
        let dir = tempfile::tempdir().unwrap();
        // (`remove_all` itself would take other tests' files from under them.)
        let t = TempFile::create(dir.path(), "m.safetensors").unwrap();
        let p = t.path.clone();
        assert!(p.exists() && lock().contains(&p));
        drop(t);
        assert!(!p.exists() && !lock().contains(&p));

        let touch = |n: &str| {
            let p = dir.path().join(n);
            std::fs::write(&p, b"x").unwrap();
            p
        };
        // No process has a PID beyond Linux's largest (2^22).
        let dead = touch(".m.safetensors.tmp4294967295-3");
        let own = touch(&format!(".m.safetensors.tmp{}-99", std::process::id()));
        let other = touch(".other.tmp4294967295-3");
        let odd = touch(".m.safetensors.tmp12x-3");
        let removed = remove_stale(dir.path(), "m.safetensors");
        if cfg!(target_os = "linux") {
            assert_eq!(removed, 1);
            assert!(!dead.exists());
        }
        assert!(own.exists() && other.exists() && odd.exists());
    }
}
