//! Two threads in lock step, one step of a recurrence at a time: the batch-1 LSTM's split of
//! each step across the machine's two cores (see [`row`](crate::row)).
//!
//! A step at batch 1 is a few microseconds, so the threads meet through two counters they
//! spin on (rayon's fork–join costs about as much as a step, per call); each thread keeps
//! its half of `W_hh` resident in its own core's L2 for the whole window. A thread that has
//! spun for long yields its core, so a loaded machine slows the pair down but is not stalled
//! by it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// Hidden width from which a batch-1 window is split across two threads: below it, a step's
/// matrix is small enough that meeting once per step costs more than half the step.
pub(crate) const MIN_HIDDEN: usize = 128;

/// Spins before a waiting thread starts yielding its core.
const SPINS: u32 = 1 << 14;

/// How many threads a batch-`b` window of a width-`h` layer runs on: two when the batch is 1,
/// the layer wide enough, `RAYON_NUM_THREADS` asks for two threads or more (and rayon's pool
/// has them), and the caller is not itself one of the pool's workers (which would then
/// compete with the pair for the cores).
///
/// Opt-in rather than the pool's default: on this project's 2-core machine under a load
/// average of 11–15 (other builds), a pair meeting every couple of microseconds waited for
/// whichever thread the scheduler had parked, and a 1024-step window took 0.7–1.3 s instead
/// of the one thread's 12 ms; a program on a busy machine must not meet that by default.
pub(crate) fn threads(b: usize, h: usize) -> usize {
    let pair = b == 1
        && h >= MIN_HIDDEN
        && asked()
        && rayon::current_thread_index().is_none()
        && rayon::current_num_threads() >= 2;
    if pair { 2 } else { 1 }
}

/// Whether `RAYON_NUM_THREADS` is set to 2 or more (read once per process, as rayon does).
fn asked() -> bool {
    static ASKED: OnceLock<bool> = OnceLock::new();
    *ASKED.get_or_init(|| {
        std::env::var("RAYON_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .is_some_and(|n| n >= 2)
    })
}

/// A counter alone on its cache line, so that one thread's writes do not slow the other's
/// spinning.
#[repr(align(128))]
struct Line(AtomicUsize);

/// The two threads' progress: `done[i]` is the number of steps thread `i` has finished, or
/// `usize::MAX` once it has panicked (so that the other stops waiting for it).
struct Meet {
    done: [Line; 2],
}

impl Meet {
    /// Records that thread `me` finished step `n` (counting from 1) and waits until the other
    /// has too. Everything either thread wrote before its `n`-th arrival is visible to both
    /// after (release store, acquire load).
    fn arrive(&self, me: usize, n: usize) {
        self.done[me].0.store(n, Ordering::Release);
        let other = &self.done[1 - me].0;
        let mut spins = 0u32;
        while other.load(Ordering::Acquire) < n {
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                thread::yield_now();
            }
        }
    }
}

/// Marks its thread as finished for good if it unwinds, so that the other is released.
struct OnPanic<'a>(&'a Meet, usize);

impl Drop for OnPanic<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            self.0.done[self.1].0.store(usize::MAX, Ordering::Release);
        }
    }
}

/// Runs `work(me, s)` for `s` in `0..steps` on two threads (`me` = 0 on the caller's, 1 on a
/// spawned one), both finishing step `s` before either starts step `s + 1`. `state` makes each
/// thread's private work space (called once on each).
pub(crate) fn run<W: Send>(
    steps: usize,
    state: impl Fn() -> W + Sync,
    work: impl Fn(usize, usize, &mut W) + Sync,
) {
    let meet = Meet {
        done: [Line(AtomicUsize::new(0)), Line(AtomicUsize::new(0))],
    };
    let side = |me: usize| {
        let _guard = OnPanic(&meet, me);
        let mut w = state();
        for s in 0..steps {
            work(me, s, &mut w);
            meet.arrive(me, s + 1);
        }
    };
    thread::scope(|scope| {
        scope.spawn(|| side(1));
        side(0);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn no_thread_starts_a_step_before_both_finished_the_last() {
        // Each thread adds its step's tag to its own cell, then checks that the other's cell
        // already holds every earlier step's tags and no later one.
        let cells = [AtomicU64::new(0), AtomicU64::new(0)];
        run(
            500,
            || (),
            |me, s, _| {
                let other = cells[1 - me].load(Ordering::Relaxed);
                let before: u64 = (0..s as u64).sum();
                assert!(
                    other == before || other == before + s as u64,
                    "step {s}: {other}"
                );
                cells[me].fetch_add(s as u64, Ordering::Relaxed);
            },
        );
        let total: u64 = (0..500).sum();
        assert_eq!(cells.map(|c| c.into_inner()), [total, total]);
    }

    #[test]
    fn a_panic_on_either_side_reaches_the_caller_and_frees_the_other() {
        for bad in [0, 1] {
            let r = std::panic::catch_unwind(|| {
                run(
                    10,
                    || (),
                    |me, s, _| assert!(!(me == bad && s == 3), "boom"),
                );
            });
            assert!(r.is_err(), "thread {bad}'s panic was lost");
        }
    }
}
