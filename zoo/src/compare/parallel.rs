//! A comparison's runs are independent: each trains a fresh model from its own seed, so they
//! run side by side on every core and give the same numbers as one after another.

use rayon::prelude::*;
use std::sync::mpsc;

/// What a worker tells the calling thread.
enum Note {
    /// Job `i` started.
    Started(usize),
    /// A job finished.
    Finished,
}

/// Runs `run` on every job over the machine's cores and returns the results in the jobs'
/// order. `started` is called on the calling thread, as each job starts, with the job and the
/// number of jobs finished so far, so a progress callback need not be thread-safe.
pub(crate) fn run_all<J: Sync, R: Send>(
    jobs: &[J],
    run: impl Fn(&J) -> R + Sync,
    started: &mut dyn FnMut(&J, usize),
) -> Vec<R> {
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let run = &run;
            jobs.par_iter()
                .enumerate()
                .map_with(tx, |tx, (i, job)| {
                    // The receiver lives until every sender is gone, so a send cannot fail.
                    let _ = tx.send(Note::Started(i));
                    let r = run(job);
                    let _ = tx.send(Note::Finished);
                    r
                })
                .collect::<Vec<R>>()
        });
        let mut finished = 0;
        // Ends when the last sender is dropped, that is when every job has run.
        for note in rx {
            match note {
                Note::Started(i) => started(&jobs[i], finished),
                Note::Finished => finished += 1,
            }
        }
        worker
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_order_and_every_start_is_heard() {
        let jobs: Vec<u64> = (0..37).collect();
        let mut heard = Vec::new();
        let out = run_all(&jobs, |&j| j * j, &mut |&j, done| heard.push((j, done)));
        assert_eq!(out, jobs.iter().map(|j| j * j).collect::<Vec<_>>());
        heard.sort();
        assert_eq!(heard.iter().map(|h| h.0).collect::<Vec<_>>(), jobs);
        assert!(heard.iter().all(|&(_, done)| done < jobs.len()));
    }
}
