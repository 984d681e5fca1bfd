//! Ctrl-C (SIGINT) and SIGTERM during a long command: the signal only raises a flag; a
//! watcher thread sees it and runs the command's own last words (print what finished, write
//! it) before the program exits with 130, as a shell expects of an interrupted program.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static RAISED: AtomicBool = AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn raise(_: libc::c_int) {
    // Async-signal-safe: a store to an atomic.
    RAISED.store(true, Ordering::SeqCst);
}

/// On SIGINT or SIGTERM, runs `last_words` on a watcher thread and exits with 130. Where
/// signals cannot be caught (not Unix) the default stands: the program ends, and what was
/// already written stays.
pub fn on_interrupt(last_words: impl FnOnce() + Send + 'static) {
    #[cfg(unix)]
    {
        let handler = raise as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: `raise` only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, handler);
            libc::signal(libc::SIGTERM, handler);
        }
        std::thread::spawn(move || {
            while !RAISED.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            last_words();
            // These handlers replace the one `main` installs, so its clean-up is done here:
            // a save the signal interrupted must not leave its temporary file.
            mnnn_core::tempfiles::remove_all();
            std::process::exit(130);
        });
    }
    #[cfg(not(unix))]
    drop(last_words);
}
