//! The LSTM's steps at batch 1, where a step is one row times `W_hh` (`H × 4H`) and its time
//! is the time to stream that matrix from L2 (256 KiB at `H` = 128).
//!
//! Forward, `W_hh` is packed by blocks of [`UNITS`] hidden units ([`pack_units`]): a block's
//! panel holds its units' columns of the four gates side by side, so one product per block
//! gives every gate of those units, and their gate arithmetic runs at once while the gates
//! are in registers' reach, with no second pass over the `4H` gates. Each step walks the
//! blocks in the opposite order to the last, so it starts on the panels the last step left in
//! L1. Backward, `∂L/∂h_{t−1} = ∂L/∂a_t · W_hhᵀ` streams the transposed copy the tape packs.
//!
//! With two threads ([`pair`]), the blocks are split in two halves of the hidden units, each
//! thread computing its units' gates, states and (backward) gradients, and the threads meet
//! once per step. Every output element is computed by the same operations in the same order
//! whichever thread runs it and whatever the block order, so the results are bit for bit the
//! one-thread results, which are the batched path's (`lstm::forward`) at `B` = 1.

use crate::mat::PANEL;
use crate::pair;
use crate::tape::LayerTape;
use mnnn_core::Scalar;
use mnnn_core::kernels::{Path, row_panels};
use std::ops::Range;
use std::slice;

/// Hidden units per block of the forward layout: one AVX-512 vector of f32 per gate.
pub(crate) const UNITS: usize = 16;

/// `wp ← W_hh` (`H × 4H`, gate blocks `i f g o` along the columns) packed by blocks of
/// [`UNITS`] hidden units: for the units `j0..j0 + u`, an `H × 4u` panel whose row `k` is
/// `W[k, g·H + j0 .. g·H + j0 + u]` for `g` = 0..4, at offset `4·H·j0`.
pub(crate) fn pack_units<S: Scalar>(wp: &mut Vec<S>, w_hh: &[S], h: usize) {
    wp.clear();
    wp.reserve(4 * h * h);
    for j0 in (0..h).step_by(UNITS) {
        let u = UNITS.min(h - j0);
        for row in w_hh.chunks_exact(4 * h) {
            for g in 0..4 {
                wp.extend_from_slice(&row[g * h + j0..g * h + j0 + u]);
            }
        }
    }
}

/// Where the units are split between two threads: a multiple of [`PANEL`] (the backward
/// pass's blocks) and of [`UNITS`], as near the middle as that allows.
fn split(h: usize) -> usize {
    PANEL * (h.div_ceil(PANEL) / 2)
}

/// The units thread `me` of `threads` handles.
fn units(me: usize, threads: usize, h: usize) -> Range<usize> {
    match (threads, me) {
        (1, _) => 0..h,
        (_, 0) => 0..split(h),
        _ => split(h)..h,
    }
}

/// A window's buffers as raw pointers, so that two threads can write disjoint parts of the
/// same rows. Every access goes through a slice of one row's units that only one thread
/// touches during a step (or reads after the threads met).
struct Rows<S> {
    acts: *mut S,
    hs: *mut S,
    cs: *mut S,
    aux: *mut S,
    h: usize,
}

// SAFETY: the pointers are only dereferenced through the disjoint per-step slices described
// above, and the buffers outlive the threads (they are scoped).
unsafe impl<S: Send> Send for Rows<S> {}
// SAFETY: as above.
unsafe impl<S: Sync> Sync for Rows<S> {}

/// `len` elements from `p + at`, shared.
///
/// # Safety
/// The range is inside the buffer and no thread writes it while the slice lives.
unsafe fn part<'a, S>(p: *const S, at: usize, len: usize) -> &'a [S] {
    // SAFETY: by the contract.
    unsafe { slice::from_raw_parts(p.add(at), len) }
}

/// `len` elements from `p + at`, exclusive.
///
/// # Safety
/// The range is inside the buffer and no other slice of it lives meanwhile.
unsafe fn part_mut<'a, S>(p: *mut S, at: usize, len: usize) -> &'a mut [S] {
    // SAFETY: by the contract.
    unsafe { slice::from_raw_parts_mut(p.add(at), len) }
}

/// Runs the window's `t` steps on `threads` threads (1 or 2). On entry `lt.acts` (`T × 4H`)
/// holds the input projections and both biases, `lt.hs[..H]` and `lt.cs[..H]` the initial
/// state; on return, as `lstm::forward` leaves them.
pub(crate) fn forward<S: Scalar>(
    t: usize,
    h: usize,
    wu: &[S],
    lt: &mut LayerTape<S>,
    threads: usize,
) {
    debug_assert_eq!(wu.len(), 4 * h * h);
    debug_assert!(lt.acts.len() == t * 4 * h && lt.hs.len() == (t + 1) * h);
    debug_assert!(lt.cs.len() == (t + 1) * h && lt.aux.len() == t * h);
    let v = Rows {
        acts: lt.acts.as_mut_ptr(),
        hs: lt.hs.as_mut_ptr(),
        cs: lt.cs.as_mut_ptr(),
        aux: lt.aux.as_mut_ptr(),
        h,
    };
    let scratch = || vec![S::zero(); 4 * h];
    let work = |me: usize, s: usize, z: &mut Vec<S>| {
        // The whole struct, not its fields (raw pointers, not shareable by themselves).
        let v = &v;
        // SAFETY: this thread's units of step `s` are its own; row `s` of `hs` is complete
        // (written before the threads last met) and nobody writes it during this step.
        unsafe { step(v, wu, s, units(me, threads, h), z) };
    };
    if threads == 2 {
        pair::run(t, scratch, work);
    } else {
        let mut z = scratch();
        (0..t).for_each(|s| work(0, s, &mut z));
    }
}

/// One forward step for the units `r` (whole blocks but perhaps the last): their gates' share
/// of `h_{s−1} W_hh` in one product (into `z`, in the unit layout), then their gate
/// arithmetic, reading the input projections from `acts` and leaving the activated gates
/// there.
///
/// `pre = acts + z` is the batched path's `y ← y + h W_hh` with `β = 1`: the same single
/// rounding of the same two numbers.
///
/// # Safety
/// `v` holds a window of more than `s` steps; no other thread touches the units `r` of step
/// `s`, nor writes row `s` of `hs`.
unsafe fn step<S: Scalar>(v: &Rows<S>, wu: &[S], s: usize, r: Range<usize>, z: &mut [S]) {
    let (h, half) = (v.h, S::from_f64(0.5));
    let (j0, n) = (r.start, r.len());
    // SAFETY (the whole body): the slices are step `s`'s rows restricted to the units `r`,
    // which the contract reserves to this thread; `h_prev` is only read.
    unsafe {
        let h_prev = part(v.hs, s * h, h);
        let z = &mut z[..4 * n];
        let ran = row_panels(
            Path::selected(),
            S::zero(),
            z,
            h_prev,
            &wu[4 * h * j0..4 * h * r.end],
            4 * UNITS,
        );
        debug_assert!(ran, "the selected path is one the CPU has");
        let a = s * 4 * h;
        let gate = |g: usize| part_mut(v.acts, a + g * h + j0, n);
        let (i, f, gg, o) = (gate(0), gate(1), gate(2), gate(3));
        // The pre-activations, halved for the sigmoids: σ(v) = ½ + ½·tanh(v/2), as the
        // batched path computes it.
        for b0 in (0..n).step_by(UNITS) {
            let u = UNITS.min(n - b0);
            let zb = &z[4 * b0..4 * (b0 + u)];
            for (g, (out, halve)) in [
                (&mut *i, true),
                (&mut *f, true),
                (&mut *gg, false),
                (&mut *o, true),
            ]
            .into_iter()
            .enumerate()
            {
                for (y, &p) in out[b0..b0 + u].iter_mut().zip(&zb[g * u..(g + 1) * u]) {
                    *y += p;
                    if halve {
                        *y *= half;
                    }
                }
            }
        }
        for g in [&mut *i, &mut *f, &mut *gg, &mut *o] {
            S::tanh_inplace(g);
        }
        for g in [&mut *i, &mut *f, &mut *o] {
            g.iter_mut().for_each(|v| *v = half + half * *v);
        }
        let c_prev = part(v.cs, s * h + j0, n);
        let c_new = part_mut(v.cs, (s + 1) * h + j0, n);
        let tc = part_mut(v.aux, s * h + j0, n);
        for j in 0..n {
            c_new[j] = f[j] * c_prev[j] + i[j] * gg[j];
        }
        tc.copy_from_slice(c_new);
        S::tanh_inplace(tc);
        let h_new = part_mut(v.hs, (s + 1) * h + j0, n);
        for j in 0..n {
            h_new[j] = o[j] * tc[j];
        }
    }
}

/// The buffers of the backward pass, as [`Rows`].
struct BackRows<S> {
    acts: *const S,
    aux: *const S,
    cs: *const S,
    dh_out: *const S,
    dg: *mut S,
    dh: *mut S,
    dc: *mut S,
    h: usize,
}

// SAFETY: as for `Rows`: disjoint per-step slices, buffers outliving the scoped threads.
unsafe impl<S: Send> Send for BackRows<S> {}
// SAFETY: as above.
unsafe impl<S: Sync> Sync for BackRows<S> {}

/// The backward pass of [`forward`] through the window's steps (the weight gradients are left
/// to the caller, one product each over `dg`): `dh` and `dc` (`H`) hold `∂L/∂(h, c)` after the
/// window on entry and before it on return, `dg` (`T × 4H`) receives the gates'
/// pre-activation gradients, `wt` is `W_hhᵀ` packed by [`pack`](crate::mat::pack).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward<S: Scalar>(
    t: usize,
    h: usize,
    lt: &LayerTape<S>,
    wt: &[S],
    dh_out: &[S],
    dh: &mut [S],
    dc: &mut [S],
    dg: &mut [S],
    threads: usize,
) {
    debug_assert!(wt.len() == 4 * h * h && dh_out.len() == t * h && dg.len() == t * 4 * h);
    debug_assert!(dh.len() == h && dc.len() == h);
    let v = BackRows {
        acts: lt.acts.as_ptr(),
        aux: lt.aux.as_ptr(),
        cs: lt.cs.as_ptr(),
        dh_out: dh_out.as_ptr(),
        dg: dg.as_mut_ptr(),
        dh: dh.as_mut_ptr(),
        dc: dc.as_mut_ptr(),
        h,
    };
    let path = Path::selected();
    // Half-steps: the gate gradients of step `s` (each thread its units), then, once every
    // unit's are written, this thread's units of `∂L/∂h_{s−1}`, which read all of them.
    let gates = |me: usize, s: usize| {
        // The whole struct, not its fields (raw pointers, not shareable by themselves).
        let v = &v;
        // SAFETY: the units are this thread's; `dg`'s row `s` is written only here.
        unsafe { gate_grads(v, t - 1 - s, units(me, threads, h)) }
    };
    let product = |me: usize, s: usize| {
        // The whole struct, not its fields (raw pointers, not shareable by themselves).
        let v = &v;
        let r = t - 1 - s;
        let mine = units(me, threads, h);
        // SAFETY: row `r` of `dg` is complete and no longer written; `dh`'s units are this
        // thread's.
        unsafe {
            let dgs = part(v.dg, r * 4 * h, 4 * h);
            let y = part_mut(v.dh, mine.start, mine.len());
            let w = &wt[4 * h * mine.start..4 * h * mine.end];
            let ran = row_panels(path, S::zero(), y, dgs, w, PANEL);
            debug_assert!(ran, "the selected path is one the CPU has");
        }
    };
    if threads == 2 {
        // The threads meet once per step, after the gate gradients: the product of step `s`
        // then runs at the start of the pair's next step, and the last one after both are
        // done (the next gates read only this thread's units of `dh`, which its own product
        // wrote).
        pair::run(
            t,
            || (),
            |me, s, _| {
                if s > 0 {
                    product(me, s - 1);
                }
                gates(me, s);
            },
        );
        if t > 0 {
            product(0, t - 1);
            product(1, t - 1);
        }
    } else {
        for s in 0..t {
            gates(0, s);
            product(0, s);
        }
    }
}

/// The gate gradients of step `s` for the units `r`, and `dc` carried to step `s − 1`
/// (`dh` gets the step's `∂L/∂h_s` from above first).
///
/// # Safety
/// `v` holds a window of more than `s` steps; no other thread touches these units of `dh`,
/// `dc` or of row `s` of `dg` meanwhile.
unsafe fn gate_grads<S: Scalar>(v: &BackRows<S>, s: usize, r: Range<usize>) {
    let (h, one) = (v.h, S::one());
    let (j0, n) = (r.start, r.len());
    // Row `s` of `acts` and of `dg` start at the same offset.
    let a = s * 4 * h;
    // SAFETY: the ranges are inside the window and reserved to this thread by the contract;
    // the tape's buffers are only read.
    unsafe {
        let rd = |p: *const S, at: usize| part(p, at, n);
        let (i, f, gg, o) = (
            rd(v.acts, a + j0),
            rd(v.acts, a + h + j0),
            rd(v.acts, a + 2 * h + j0),
            rd(v.acts, a + 3 * h + j0),
        );
        let (tc, c_prev, above) = (
            rd(v.aux, s * h + j0),
            rd(v.cs, s * h + j0),
            rd(v.dh_out, s * h + j0),
        );
        let (dh, dc) = (part_mut(v.dh, j0, n), part_mut(v.dc, j0, n));
        let di = part_mut(v.dg, a + j0, n);
        let df = part_mut(v.dg, a + h + j0, n);
        let dgg = part_mut(v.dg, a + 2 * h + j0, n);
        let dout = part_mut(v.dg, a + 3 * h + j0, n);
        for j in 0..n {
            let dhv = dh[j] + above[j];
            let (i, f, gg, o, tcv) = (i[j], f[j], gg[j], o[j], tc[j]);
            let dcv = dc[j] + dhv * o * (one - tcv * tcv);
            di[j] = dcv * gg * i * (one - i);
            df[j] = dcv * c_prev[j] * f * (one - f);
            dgg[j] = dcv * i * (one - gg * gg);
            dout[j] = dhv * tcv * o * (one - o);
            dc[j] = dcv * f;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lstm::{self, Shape, Weights};
    use crate::mat;
    use crate::tape::sized;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u64 * 7919 + seed * 104_729) % 2003) as f32 / 1001.0 - 1.0)
            .collect()
    }

    /// One layer's window at batch 1 (input 3), through the batch-1 steps on `threads`
    /// threads, or with `None` through the batched path.
    fn forward(h: usize, t: usize, threads: Option<usize>) -> LayerTape<f32> {
        let n_in = 3;
        let (x, w_ih, w_hh) = (
            values(t * n_in, 1),
            values(n_in * 4 * h, 2),
            values(h * 4 * h, 3),
        );
        let w_hh: Vec<f32> = w_hh.iter().map(|v| v * 0.3).collect();
        let (b_ih, b_hh) = (values(4 * h, 4), values(4 * h, 5));
        let mut packed = Vec::new();
        match threads {
            Some(_) => pack_units(&mut packed, &w_hh, h),
            None => mat::pack(&mut packed, h, 4 * h, |i, j| w_hh[i * 4 * h + j]),
        }
        let w = Weights {
            w_ih: &w_ih,
            w_hh: &w_hh,
            b_ih: &b_ih,
            b_hh: &b_hh,
            w_hh_packed: threads.is_none().then_some(&packed[..]),
            units: threads.map(|n| (&packed[..], n)),
        };
        let mut lt = LayerTape::default();
        sized(&mut lt.hs, (t + 1) * h);
        sized(&mut lt.cs, (t + 1) * h);
        lt.hs[..h].copy_from_slice(&values(h, 6));
        lt.cs[..h].copy_from_slice(&values(h, 7));
        lstm::forward(&x, Shape { t, b: 1, n_in, h }, &w, &mut lt);
        lt.w_hh_t.clear();
        mat::pack(&mut lt.w_hh_t, 4 * h, h, |i, j| w_hh[j * 4 * h + i]);
        lt
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Widths below a block, across blocks and the two threads' split, at the split's size.
    const WIDTHS: [usize; 4] = [5, 40, 128, 130];

    #[test]
    fn batch_1_steps_on_one_or_two_threads_are_the_batched_path_bit_for_bit() {
        for h in WIDTHS {
            let t = 6;
            let want = forward(h, t, None);
            assert!(
                want.hs[t * h..].iter().all(|v| v.abs() > 0.0),
                "h = {h}: a dead state"
            );
            for threads in [1, 2] {
                let got = forward(h, t, Some(threads));
                let what = format!("h = {h}, {threads} thread(s)");
                assert_eq!(bits(&got.hs), bits(&want.hs), "{what}: h");
                assert_eq!(bits(&got.cs), bits(&want.cs), "{what}: c");
                assert_eq!(bits(&got.acts), bits(&want.acts), "{what}: gates");
                assert_eq!(bits(&got.aux), bits(&want.aux), "{what}: tanh(c)");
            }
        }
    }

    #[test]
    fn the_backward_steps_on_two_threads_are_the_one_thread_steps_bit_for_bit() {
        for h in WIDTHS {
            let t = 5;
            let lt = forward(h, t, Some(1));
            let dh_out = values(t * h, 8);
            let run = |threads: usize| {
                let (mut dh, mut dc, mut dg) = (values(h, 9), values(h, 10), vec![0.0; t * 4 * h]);
                backward(
                    t, h, &lt, &lt.w_hh_t, &dh_out, &mut dh, &mut dc, &mut dg, threads,
                );
                (bits(&dh), bits(&dc), bits(&dg))
            };
            let one = run(1);
            assert_ne!(one.0, bits(&values(h, 9)), "h = {h}: dh unchanged");
            assert!(
                one.2.iter().all(|&b| b != 0),
                "h = {h}: a gate gradient not written"
            );
            assert_eq!(run(2), one, "h = {h}");
        }
    }

    #[test]
    fn the_split_is_on_block_boundaries_and_covers_every_unit() {
        for h in [1, 16, 64, 65, 128, 130, 200, 256] {
            let (a, b) = (units(0, 2, h), units(1, 2, h));
            assert_eq!((a.start, a.end, b.end), (0, b.start, h), "h = {h}");
            assert_eq!(a.end % PANEL, 0, "h = {h}");
            assert_eq!(a.end % UNITS, 0, "h = {h}");
            assert!(
                h < 2 * PANEL || a.len() * 3 >= h,
                "h = {h}: {a:?} is lopsided"
            );
        }
    }
}
