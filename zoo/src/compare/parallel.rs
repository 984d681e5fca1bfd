//! A comparison's runs are independent once their learning rate is known: each trains a fresh
//! model from its own seed, so they run side by side on every core and give the same numbers
//! as one after another.
//!
//! The runs differ a hundredfold in cost (an entry's longest sweep point against another's
//! shortest), so the order matters as much as the parallelism: a pool that always takes the
//! most expensive run it can start ends with the cheap ones, and the cores finish together
//! instead of one waiting on a long run started last. New runs join the pool as earlier ones
//! finish (an entry's seeds once its learning-rate search is done), so no entry waits for the
//! slowest run of another.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// What a worker tells the coordinating thread.
enum Note<J, R> {
    /// The job started.
    Started(Arc<J>),
    /// The job finished with this result.
    Finished(Arc<J>, R),
    /// The job panicked: the panic is resumed on the calling thread once the workers stop.
    Panicked(Box<dyn std::any::Any + Send>),
}

/// The jobs ready to start, each with its priority (higher starts first) and its place in
/// the order they were added (the earlier of two equal priorities starts first, so a row's
/// runs start in the order the driver lists them).
struct Ready<J> {
    jobs: Vec<(f64, usize, Arc<J>)>,
    /// Jobs added so far.
    added: usize,
    /// No job will be added: a worker that finds the list empty stops.
    closed: bool,
}

/// Jobs, each with its priority (higher starts first).
pub(crate) type Prioritised<J> = Vec<(f64, J)>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only this module's short critical sections hold the lock and none can panic, but a
    // poisoned list is still a consistent one.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `initial` and every job the callbacks add on `threads` workers, always starting the
/// ready job of highest priority. `started` and `finished` are called on the calling thread
/// as each job starts and ends, so they need not be thread-safe; `finished` returns the jobs
/// that become ready with this result (with their priorities), or an error, after which no
/// job starts and the error is returned once the running ones end.
pub(crate) fn run_pool<J: Send + Sync, R: Send, E, F>(
    threads: usize,
    initial: Prioritised<J>,
    run: impl Fn(&J) -> R + Sync,
    mut started: impl FnMut(&J),
    mut finished: F,
) -> Result<(), E>
where
    F: FnMut(&J, R) -> Result<Prioritised<J>, E>,
{
    let ready = Mutex::new(Ready {
        jobs: Vec::new(),
        added: 0,
        closed: false,
    });
    let wake = Condvar::new();
    let push = |jobs: Vec<(f64, J)>| -> usize {
        let n = jobs.len();
        let mut r = lock(&ready);
        for (p, j) in jobs {
            let order = r.added;
            r.jobs.push((p, order, Arc::new(j)));
            r.added += 1;
        }
        drop(r);
        wake.notify_all();
        n
    };
    let mut outstanding = push(initial);
    let (tx, rx) = mpsc::channel::<Note<J, R>>();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            let tx = tx.clone();
            let (ready, wake, run) = (&ready, &wake, &run);
            s.spawn(move || {
                loop {
                    let job = {
                        let mut r = lock(ready);
                        loop {
                            let best = (0..r.jobs.len()).max_by(|&a, &b| {
                                let (a, b) = (&r.jobs[a], &r.jobs[b]);
                                a.0.total_cmp(&b.0).then(b.1.cmp(&a.1))
                            });
                            if let Some(i) = best {
                                break r.jobs.swap_remove(i).2;
                            }
                            if r.closed {
                                return;
                            }
                            r = wake.wait(r).unwrap_or_else(PoisonError::into_inner);
                        }
                    };
                    // The receiver lives until the workers are joined, so a send cannot fail.
                    let _ = tx.send(Note::Started(job.clone()));
                    match catch_unwind(AssertUnwindSafe(|| run(&job))) {
                        Ok(r) => {
                            let _ = tx.send(Note::Finished(job, r));
                        }
                        Err(p) => {
                            let _ = tx.send(Note::Panicked(p));
                        }
                    }
                }
            });
        }
        drop(tx);
        let mut failure = None;
        let mut panic = None;
        while outstanding > 0 {
            let Ok(note) = rx.recv() else { break };
            match note {
                Note::Started(j) => started(&j),
                Note::Finished(j, r) => {
                    outstanding -= 1;
                    if failure.is_some() {
                        continue;
                    }
                    match finished(&j, r) {
                        Ok(more) => outstanding += push(more),
                        Err(e) => {
                            failure = Some(e);
                            let mut r = lock(&ready);
                            outstanding -= r.jobs.len();
                            r.jobs.clear();
                        }
                    }
                }
                Note::Panicked(p) => {
                    outstanding -= 1;
                    panic.get_or_insert(p);
                    let mut r = lock(&ready);
                    outstanding -= r.jobs.len();
                    r.jobs.clear();
                }
            }
        }
        lock(&ready).closed = true;
        wake.notify_all();
        if let Some(p) = panic {
            resume_unwind(p);
        }
        failure.map_or(Ok(()), Err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_job_and_every_job_it_adds_runs_once_and_is_heard() {
        // Job n > 1 adds job n - 1 when it finishes: 37 jobs in all from the ten initial ones.
        let initial: Vec<(f64, u64)> = (1..=10).map(|j| (j as f64, j)).collect();
        let (mut started, mut finished) = (Vec::new(), Vec::new());
        let r: Result<(), ()> = run_pool(
            2,
            initial,
            |&j| j * j,
            |&j| started.push(j),
            |&j, r| {
                finished.push((j, r));
                Ok(if j % 3 == 0 {
                    vec![(0.0, j - 1), (0.0, j - 2)]
                } else {
                    vec![]
                })
            },
        );
        r.unwrap();
        started.sort();
        finished.sort();
        let mut want: Vec<u64> = (1..=10).collect();
        want.extend([2, 1, 5, 4, 8, 7]);
        want.sort();
        assert_eq!(started, want);
        assert_eq!(
            finished,
            want.iter().map(|&j| (j, j * j)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn one_worker_takes_the_highest_priority_first() {
        let initial: Vec<(f64, usize)> = [3.0, 9.0, 1.0, 7.0, 3.0, 3.0]
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, i))
            .collect();
        let mut order = Vec::new();
        let r: Result<(), ()> = run_pool(1, initial, |&j| j, |&j| order.push(j), |_, _| Ok(vec![]));
        r.unwrap();
        // Equal priorities start in the order they were given.
        assert_eq!(order, [1, 3, 0, 4, 5, 2]);
    }

    #[test]
    fn an_error_stops_new_starts_and_is_returned() {
        use std::sync::atomic::AtomicBool;
        let (ran, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
        let initial: Vec<(f64, usize)> = (0..50).map(|j| (-(j as f64), j)).collect();
        let r = run_pool(
            2,
            initial,
            |&j| {
                ran.fetch_add(1, Ordering::SeqCst);
                // The jobs after the failing one wait for its error to be seen, so the
                // workers cannot run through the whole list before the pool hears of it.
                let t = std::time::Instant::now();
                while j > 3 && !failed.load(Ordering::SeqCst) && t.elapsed().as_secs() < 5 {
                    std::thread::yield_now();
                }
                j
            },
            |_| {},
            |&j, _| {
                if j == 3 {
                    failed.store(true, Ordering::SeqCst);
                    Err(j)
                } else {
                    Ok(vec![])
                }
            },
        );
        assert_eq!(r, Err(3));
        // Jobs 0–3, the two waiting on the workers, and at most one more each between the
        // error and the clearing of the list.
        assert!(ran.load(Ordering::SeqCst) <= 8, "{ran:?}");
    }

    #[test]
    #[should_panic(expected = "job 4")]
    fn a_panicking_job_panics_the_caller() {
        let initial: Vec<(f64, usize)> = (0..8).map(|j| (0.0, j)).collect();
        let _: Result<(), ()> = run_pool(
            2,
            initial,
            |&j| assert!(j != 4, "job 4"),
            |_| {},
            |_, _| Ok(vec![]),
        );
    }
}
