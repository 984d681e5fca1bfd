//! A comparison's runs are independent: each trains a fresh model from its own seed, so they
//! run side by side on every core and give the same numbers as one after another.

use rayon::prelude::*;
use std::sync::mpsc;

/// What a worker tells the calling thread.
enum Note<R> {
    /// Job `i` started.
    Started(usize),
    /// Job `i` finished with this result.
    Finished(usize, R),
}

/// Runs `run` on every job over the machine's cores and returns the results in the jobs'
/// order. `started` and `finished` are called on the calling thread as each job starts and
/// ends (with its result), so callbacks need not be thread-safe and a finished run can be
/// written down before the others end.
pub(crate) fn run_all<J: Sync, R: Send>(
    jobs: &[J],
    run: impl Fn(&J) -> R + Sync,
    started: &mut dyn FnMut(&J),
    finished: &mut dyn FnMut(&J, &R),
) -> Vec<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let run = &run;
            jobs.par_iter()
                .enumerate()
                .for_each_with(tx, |tx, (i, job)| {
                    // The receiver lives until every sender is gone, so a send cannot fail.
                    let _ = tx.send(Note::Started(i));
                    let _ = tx.send(Note::Finished(i, run(job)));
                });
        });
        let mut out: Vec<Option<R>> = jobs.iter().map(|_| None).collect();
        // Ends when the last sender is dropped, that is when every job has run.
        for note in rx {
            match note {
                Note::Started(i) => started(&jobs[i]),
                Note::Finished(i, r) => {
                    finished(&jobs[i], &r);
                    out[i] = Some(r);
                }
            }
        }
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        out.into_iter()
            .map(|r| r.expect("every job sent its result"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_and_every_start_and_end_is_heard() {
        let jobs: Vec<u64> = (0..37).collect();
        let (mut started, mut finished) = (Vec::new(), Vec::new());
        let out = run_all(
            &jobs,
            |&j| j * j,
            &mut |&j| started.push(j),
            &mut |&j, &r| finished.push((j, r)),
        );
        assert_eq!(out, jobs.iter().map(|j| j * j).collect::<Vec<_>>());
        started.sort();
        finished.sort();
        assert_eq!(started, jobs);
        assert_eq!(
            finished,
            jobs.iter().map(|&j| (j, j * j)).collect::<Vec<_>>()
        );
    }
}
