//! The soak: every zoo entry (control excluded) at its default size streams `--steps` steps
//! (default 10 000 000) through `predict` in chunks of 4096, from one model whose memory is
//! carried throughout, as `mnnn predict` does over a long file. It checks that every output is
//! finite and that memory stays flat, and prints one line per entry: steps, seconds, steps/s,
//! resident MiB after the first chunk and at the end, and the growth of live heap bytes
//! between those two moments (counted by this program's allocator: exact, where resident
//! memory is blurred by the allocator's own caching and pages).
//!
//! `cargo bench -p mnnn-zoo --bench soak -- [NAME...] [--steps N] [--seconds S]`:
//! `--seconds` stops an entry early (its line then says how many steps ran), for entries too
//! slow to finish the full count in the time there is. Exits 1 if an output is not finite,
//! if live heap grows by more than 64 KiB (a leak of even 32 bytes a chunk shows over
//! 10 000 000 steps) or resident memory by more than 16 MiB.

use mnnn_core::{Family, Inputs, IoSpec, Rng};
use ndarray::Array2;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

/// The system allocator, counting the bytes live at each moment.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap growth allowed between the first chunk and the end.
const HEAP_SLACK: isize = 64 << 10;

/// Resident memory of this process in MiB (Linux; 0 elsewhere).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let mut names = Vec::new();
    let mut steps: usize = 10_000_000;
    let mut seconds = f64::INFINITY;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--steps" => steps = args.next().and_then(|v| v.parse().ok()).expect("--steps N"),
            "--seconds" => {
                seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--seconds S")
            }
            "--bench" => {} // passed by `cargo bench`
            other => names.push(other.to_string()),
        }
    }
    let entries: Vec<_> = mnnn_zoo::entries()
        .into_iter()
        .filter(|e| e.family != Family::Control)
        .filter(|e| names.is_empty() || names.iter().any(|n| n == e.name))
        .collect();
    const CHUNK: usize = 4096;
    const INPUT: usize = 4;
    let mut rng = Rng::new(7);
    // A few distinct chunks, reused, so the input itself takes no growing memory.
    let pieces: Vec<Inputs<f32>> = (0..4)
        .map(|_| {
            Inputs::Real(Array2::from_shape_fn((CHUNK, INPUT), |_| {
                rng.normal() as f32
            }))
        })
        .collect();
    let mut failed = false;
    println!(
        "{:<16} {:>11} {:>9} {:>11} {:>10} {:>10} {:>12}",
        "entry", "steps", "seconds", "steps/s", "RSS0 MiB", "RSS MiB", "heap +bytes"
    );
    for e in entries {
        let io = IoSpec::regression(INPUT, 1);
        let mut m = e.create::<f32>(None, &io, 0).expect("default model");
        let start = Instant::now();
        let (mut done, mut rss0, mut heap0) = (0, 0.0, 0);
        while done < steps && start.elapsed().as_secs_f64() < seconds {
            let n = CHUNK.min(steps - done);
            let x = &pieces[(done / CHUNK) % pieces.len()];
            let x = if n == CHUNK { x.clone() } else { x.slice(0, n) };
            let y = m.predict(&x).expect("predicts");
            if let Some(v) = y.iter().find(|v| !v.is_finite()) {
                eprintln!("{}: output {v} after {done} steps", e.name);
                failed = true;
                break;
            }
            done += n;
            // Input and output are dropped first: what is live then is what the model keeps.
            drop((x, y));
            if done == n {
                rss0 = rss_mib();
                heap0 = LIVE.load(Ordering::Relaxed);
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let rss = rss_mib();
        let heap = LIVE.load(Ordering::Relaxed) - heap0;
        if heap > HEAP_SLACK {
            eprintln!("{}: live heap grew by {heap} bytes", e.name);
            failed = true;
        }
        if rss - rss0 > 16.0 {
            eprintln!(
                "{}: resident memory grew from {rss0:.1} to {rss:.1} MiB",
                e.name
            );
            failed = true;
        }
        println!(
            "{:<16} {:>11} {:>9.1} {:>11.0} {:>10.1} {:>10.1} {:>12}",
            e.name,
            done,
            secs,
            done as f64 / secs,
            rss0,
            rss,
            heap
        );
    }
    if failed {
        std::process::exit(1);
    }
}
