//! The benchmark's work (`benches/rnn.rs`: LSTM and GRU, input 16, hidden 128, read-out to 4,
//! batch 1 and 32, one window of 1024 steps, forward without a tape and forward + backward)
//! timed by the thread's on-CPU time rather than the wall clock, so that a machine loaded by
//! other work can still compare us with PyTorch (`benches/torch_rnn.py --cpu-time`, which
//! reads the same clock). Prints the fastest and the median of the repeats.
//!
//! The thread's clock cannot see a second thread, so this times the one-thread path: rayon's
//! pool is set to one thread, which keeps the LSTM's batch-1 steps on the calling thread even
//! under `RAYON_NUM_THREADS=2` (see `cargo bench -p mnnn-rnn` for the two-thread figures, by
//! the wall clock).
//!
//! ```sh
//! cargo run --release -p mnnn-rnn --example cpu_time -- 5    # repeats (default 5)
//! ```

use mnnn_core::cell::{Cell, Dims};
use mnnn_core::{Rng, Tensors, init};
use mnnn_rnn::{Kind, RnnCell, RnnParams, Tape};
use ndarray::Array3;

const STEPS: usize = 1024;

/// `CLOCK_THREAD_CPUTIME_ID`'s reading, as libc's `struct timespec`.
#[repr(C)]
struct Timespec {
    secs: i64,
    nanos: i64,
}

unsafe extern "C" {
    fn clock_gettime(clock: i32, ts: *mut Timespec) -> i32;
}

/// Nanoseconds this thread has spent on a CPU (Linux's clock id).
fn cpu_ns() -> u64 {
    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
    let mut t = Timespec { secs: 0, nanos: 0 };
    // SAFETY: `t` is a valid, writable timespec; the call only writes it.
    let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    t.secs as u64 * 1_000_000_000 + t.nanos as u64
}

fn main() {
    let reps: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().expect("the argument is a number of repeats"),
        None => 5,
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build_global()
        .expect("rayon's pool is not built before main");
    println!("model  batch      pass  cpu ms (min)  cpu ms (median)     tokens/s");
    for (name, kind) in [("lstm", Kind::Lstm), ("gru", Kind::Gru)] {
        for b in [1, 32] {
            for backward in [false, true] {
                let ms = time(kind, b, backward, reps.max(1));
                let med = ms[ms.len() / 2];
                let pass = if backward { "fwd+bwd" } else { "fwd" };
                println!(
                    "{name:6} {b:5} {pass:>9} {:13.2} {med:16.2} {:12.0}",
                    ms[0],
                    (STEPS * b) as f64 / med * 1e3
                );
            }
        }
    }
}

/// Sorted CPU milliseconds of `reps` windows, after one untimed warm-up.
fn time(kind: Kind, b: usize, backward: bool, reps: usize) -> Vec<f64> {
    let dims = Dims {
        input: 16,
        output: 4,
    };
    let p = RnnParams {
        hidden: 128,
        layers: 1,
    };
    let cell = RnnCell::new(kind, &p, dims);
    let mut params = Tensors::<f32>::zeros(Cell::<f32>::param_layout(&cell));
    let mut rng = Rng::new(1);
    cell.init_params(&mut rng, &mut params);
    let mut state = Tensors::zeros(Cell::<f32>::state_layout(&cell).batched(b));
    let mut xs = Array3::zeros((STEPS, b, 16));
    init::normal(&mut rng, xs.as_slice_mut().expect("fresh"), 1.0);
    let mut ys = Array3::zeros((STEPS, b, 4));
    let dys = Array3::from_elem((STEPS, b, 4), 1.0f32);
    let mut dxs = Array3::zeros((STEPS, b, 16));
    let mut grads = Tensors::zeros_like(&params);
    let mut dstate = Tensors::zeros_like(&state);
    let mut tape = Tape::default();
    let mut ms = Vec::with_capacity(reps);
    for r in 0..=reps {
        let t0 = cpu_ns();
        state.fill(0.0);
        if backward {
            let record = Some(&mut tape);
            cell.forward_window(&params, &mut state, xs.view(), ys.view_mut(), record);
            grads.fill(0.0);
            dstate.fill(0.0);
            let dx = Some(dxs.view_mut());
            cell.backward_window(&params, &tape, dys.view(), &mut dstate, &mut grads, dx);
        } else {
            cell.forward_window(&params, &mut state, xs.view(), ys.view_mut(), None);
        }
        if r > 0 {
            ms.push((cpu_ns() - t0) as f64 * 1e-6);
        }
    }
    ms.sort_by(f64::total_cmp);
    ms
}
