//! The temporary files of atomic writes ([`crate::persist::write_atomic`]): named
//! `.NAME.tmpPID-N` next to their target, registered while they exist so that a process
//! stopped by a signal can remove them ([`remove_all`]), and removed by a later save to the
//! same target once the process that made them is gone ([`remove_stale`]).
//!
//! For tests of that clean-up, the environment variable [`PAUSE_VAR`] holds a full temporary
//! file open for that many milliseconds before it is renamed, so that a test can signal or
//! kill a `mnnn` process at that moment rather than race a save of a few microseconds. It
//! changes no byte written; unset (or not a number) it costs one environment look-up a save.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Milliseconds [`TempFile::pause_if_asked`] waits with the temporary file full and not yet
/// renamed: a hook for tests of interrupted saves.
pub const PAUSE_VAR: &str = "MNNN_TEST_SAVE_PAUSE_MS";

/// Temporary files this process has created and not yet renamed or removed.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Set by [`remove_all`]: the process is ending, and a save that starts after the clean-up
/// must not create a file that nothing would remove.
static CLOSED: AtomicBool = AtomicBool::new(false);

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
        // Created and registered under the lock `remove_all` takes: a signal's clean-up
        // either sees this file or runs before it, and then refuses it.
        let mut live = lock();
        if CLOSED.load(Ordering::SeqCst) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "the program is being interrupted",
            ));
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        live.push(path.clone());
        Ok(TempFile { path, file })
    }

    /// Waits [`PAUSE_VAR`] milliseconds if that variable is set: called with the file written
    /// and synced, before the rename.
    pub(crate) fn pause_if_asked(&self) {
        if let Some(ms) = std::env::var(PAUSE_VAR)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            std::thread::sleep(Duration::from_millis(ms));
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
/// a signal handler). Saves that start after it fail instead of leaving a file behind.
/// Returns how many were removed.
pub fn remove_all() -> usize {
    let paths = {
        let mut live = lock();
        CLOSED.store(true, Ordering::SeqCst);
        std::mem::take(&mut *live)
    };
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
