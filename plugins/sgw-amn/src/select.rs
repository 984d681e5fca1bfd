//! The competition's hard selection: the indices of the W largest of P scores, largest
//! first, ties to the lower index — the order of the reference's repeated arg-max, which the
//! routing weights follow. Once every index is taken, index 0 repeats.
//!
//! [`select`] gives exactly the winners and order of the definition ([`select_by_argmax`],
//! O(P·W)) in three branch-light passes, so that the per-token step does not pay a
//! mispredicted branch for each score that enters the running top W:
//!
//! 1. **A bound.** Split the scores into W interleaved groups (`i mod W`, full rows of W
//!    only); the smallest group maximum `lo` is reached by at least W scores (the W maxima), so
//!    the W-th largest score is at least `lo`. Bisection of `[lo, max]` by vectorised counts
//!    raises `lo` while at least W scores still reach it, until a few more than W do.
//! 2. **The candidates**, the scores `≥ lo`, are gathered in index order without a branch.
//! 3. **Their ranks.** Every score that precedes a candidate in the arg-max order (greater, or
//!    equal at a lower index) is itself a candidate, so a candidate's rank among the
//!    candidates is its rank among all scores: the count of earlier candidates `≥` it plus
//!    later ones `>` it. Ranks below W place the winners.
//!
//! When too many candidates remain (many equal scores: all of them are zero for a zero
//! input), the pairwise ranks would cost more than a pass that keeps the best W so far in
//! order ([`select_by_insertion`]), which then runs on the candidates. NaN scores, which
//! break the orderings all of this relies on, and more winners than scores go through the
//! definition.

use mnnn_core::Scalar;

/// Bisection stops once at most `W + SLACK` scores reach the bound.
const SLACK: usize = 8;
/// Bisection steps at most (each halves the interval of the bound).
const MAX_HALVINGS: usize = 16;
/// Width of the blocks the ranks are counted in (16 f32 lanes of AVX-512).
const LANES: usize = 16;

/// Work space of [`select`], sized by [`Pick::size`], so that a step allocates nothing.
#[derive(Default, Debug)]
pub(crate) struct Pick<S> {
    /// The candidates' scores (P; the first W slots hold the group maxima before).
    vals: Vec<S>,
    /// The candidates' indices (P).
    idx: Vec<u32>,
    /// The winners by rank, and one slot that every non-winner writes to (W + 1).
    out: Vec<u32>,
    /// P flags for [`select_by_argmax`].
    taken: Vec<bool>,
}

impl<S: Scalar> Pick<S> {
    /// Work space for `p` scores and `w` winners.
    pub(crate) fn new(p: usize, w: usize) -> Self {
        let mut pick = Pick {
            vals: Vec::new(),
            idx: Vec::new(),
            out: Vec::new(),
            taken: Vec::new(),
        };
        pick.size(p, w);
        pick
    }

    /// Sizes the work space for `p` scores and `w` winners.
    pub(crate) fn size(&mut self, p: usize, w: usize) {
        let padded = p.max(w).div_ceil(LANES) * LANES;
        self.vals.resize(padded, S::zero());
        self.idx.resize(p, 0);
        self.out.resize(w + 1, 0);
        self.taken.resize(p, false);
    }
}

/// The indices of the `win.len()` largest scores into `win`, in the arg-max order (see the
/// module docs). `pick` must be sized for `sc.len()` scores and `win.len()` winners.
#[inline(always)]
pub(crate) fn select<S: Scalar>(sc: &[S], pick: &mut Pick<S>, win: &mut [u32]) {
    let w = win.len();
    #[allow(clippy::eq_op)]
    let nan = sc.iter().fold(false, |any, &v| any | (v != v));
    if w > sc.len() || nan {
        select_by_argmax(sc, &mut pick.taken, win);
        return;
    }
    if w == 0 {
        return;
    }
    let (lo, n) = bound(sc, w, &mut pick.vals[..w]);
    let (vals, idx) = (&mut pick.vals[..], &mut pick.idx[..sc.len()]);
    let mut k = 0;
    for (i, &v) in sc.iter().enumerate() {
        vals[k] = v;
        idx[k] = i as u32;
        k += usize::from(v >= lo);
    }
    debug_assert_eq!(k, n);
    if n > 2 * w + 16 {
        select_by_insertion(&vals[..n], &idx[..n], win);
    } else {
        select_by_rank(vals, n, &idx[..n], &mut pick.out[..=w], win);
    }
}

/// A bound `lo` that at least `w` scores reach while the W-th largest score reaches it, and
/// how many reach it (step 1 of the module docs). `gm` is `w` slots of work space; `w` must
/// be in `1..=sc.len()` and the scores free of NaN.
#[inline(always)]
fn bound<S: Scalar>(sc: &[S], w: usize, gm: &mut [S]) -> (S, usize) {
    // `max` rather than a comparison: a conditional store of the greater value would be
    // reloaded by the next row before it is written, which stalls.
    let max = |a: S, b: S| a.max(b);
    gm.copy_from_slice(&sc[..w]);
    let mut rows = sc[w..].chunks_exact(w);
    for row in &mut rows {
        for (g, &v) in gm.iter_mut().zip(row) {
            *g = max(*g, v);
        }
    }
    let mut lo = gm
        .iter()
        .fold(S::infinity(), |a, &v| if v < a { v } else { a });
    let mut hi = rows
        .remainder()
        .iter()
        .chain(&*gm)
        .fold(lo, |a, &v| max(a, v));
    let reach = |t: S| sc.iter().fold(0u32, |c, &v| c + u32::from(v >= t)) as usize;
    let mut n = reach(lo);
    let half = S::from_f64(0.5);
    for _ in 0..MAX_HALVINGS {
        if n <= w + SLACK {
            break;
        }
        // Stops when the interval no longer splits (also for infinite ends: the midpoint is
        // then infinite or NaN).
        let mid = lo + (hi - lo) * half;
        if !(mid > lo && mid < hi) {
            break;
        }
        let c = reach(mid);
        if c >= w {
            (lo, n) = (mid, c);
        } else {
            hi = mid;
        }
    }
    (lo, n)
}

/// Step 3 of the module docs: the candidates' ranks, each placed into `out` (`w + 1` slots,
/// the last one for every rank from `w` on), then the winners copied to `win`. `vals[..n]`
/// and `idx` are the candidates in index order, which must include every winner; `vals` has
/// room for `n` rounded up to whole blocks of [`LANES`].
#[inline(always)]
pub(crate) fn select_by_rank<S: Scalar>(
    vals: &mut [S],
    n: usize,
    idx: &[u32],
    out: &mut [u32],
    win: &mut [u32],
) {
    let w = win.len();
    // Padded to whole blocks with −∞, which precedes no candidate: it is not greater than
    // any, and the equal ones (−∞ candidates) come before it in index order. Blocks of fixed
    // width vectorise without the remainder loops of a loop of length n.
    let padded = n.div_ceil(LANES) * LANES;
    vals[n..padded].fill(S::neg_infinity());
    let vals = &vals[..padded];
    for (c, &i) in idx[..n].iter().enumerate() {
        // Candidate d precedes candidate c if greater, or equal and earlier.
        let (v, c) = (vals[c], c as u32);
        let mut rank = [0u32; LANES];
        for (b, blk) in vals.chunks_exact(LANES).enumerate() {
            let blk: &[S; LANES] = blk.try_into().expect("a block");
            let base = (b * LANES) as u32;
            for l in 0..LANES {
                let u = blk[l];
                rank[l] += u32::from((u > v) | ((u == v) & (base + (l as u32) < c)));
            }
        }
        let rank = rank.iter().sum::<u32>() as usize;
        out[rank.min(w)] = i;
    }
    win.copy_from_slice(&out[..w]);
}

/// One pass that keeps the best W so far in order: a candidate goes after every kept score it
/// does not exceed, which is the arg-max order. `vals` and `idx` are the candidates in index
/// order, at least `win.len()` of them, free of NaN.
#[inline(always)]
pub(crate) fn select_by_insertion<S: Scalar>(vals: &[S], idx: &[u32], win: &mut [u32]) {
    let w = win.len();
    // `win[..len]` holds the kept candidates' positions, best first; once full, `last` is
    // the score of the last one.
    let mut last = S::neg_infinity();
    let mut len = 0;
    for (c, &v) in vals.iter().enumerate() {
        if len == w && v <= last {
            continue;
        }
        let mut pos = len.min(w - 1);
        while pos > 0 && v > vals[win[pos - 1] as usize] {
            win[pos] = win[pos - 1];
            pos -= 1;
        }
        win[pos] = c as u32;
        len = (len + 1).min(w);
        if len == w {
            last = vals[win[w - 1] as usize];
        }
    }
    for slot in win.iter_mut() {
        *slot = idx[*slot as usize];
    }
}

/// [`select`] by repeated arg-max with strict comparison: the definition, kept for the cases
/// the other forms do not cover (NaN scores, more winners than scores). `taken` is P flags of
/// work space.
#[inline(never)]
pub(crate) fn select_by_argmax<S: Scalar>(sc: &[S], taken: &mut [bool], win: &mut [u32]) {
    taken.iter_mut().for_each(|t| *t = false);
    for slot in win.iter_mut() {
        let mut best: Option<(usize, S)> = None;
        for (i, (&v, &t)) in sc.iter().zip(taken.iter()).enumerate() {
            if !t && best.is_none_or(|(_, b)| v > b) {
                best = Some((i, v));
            }
        }
        let i = best.map_or(0, |(i, _)| i);
        taken[i] = true;
        *slot = i as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scores for the selection tests: few distinct levels (ties common), continuous values,
    /// or continuous values with a shared top level; now and then a NaN.
    fn cases(n: usize, mut f: impl FnMut(Vec<f32>, usize)) {
        let mut seed = 7u64;
        let mut next = |levels: u64| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 33) % levels
        };
        for case in 0..n {
            let p = 1 + next(if case % 3 == 0 { 300 } else { 40 }) as usize;
            let w = 1 + next(if case % 5 == 0 { 40 } else { 12 }) as usize;
            let mut sc: Vec<f32> = match case % 3 {
                0 => (0..p).map(|_| next(6) as f32 * 0.5).collect(),
                1 => (0..p).map(|_| next(1 << 20) as f32 / 1024.0).collect(),
                _ => (0..p)
                    .map(|_| (next(1 << 20) as f32 / 1024.0).min(900.0))
                    .collect(),
            };
            if case % 7 == 0 {
                sc[next(p as u64) as usize] = f32::NAN;
            }
            f(sc, w);
        }
    }

    /// The selection gives the arg-max definition's winners in its order: ties, zeros, fewer
    /// scores than winners and NaN scores included.
    #[test]
    fn selection_is_the_argmax_order() {
        cases(600, |sc, w| {
            let p = sc.len();
            let (mut a, mut b) = (vec![0u32; w], vec![0u32; w]);
            select(&sc, &mut Pick::new(p, w), &mut a);
            select_by_argmax(&sc, &mut vec![false; p], &mut b);
            assert_eq!(a, b, "scores {sc:?}, w = {w}");
        });
    }

    /// Each way of finishing, on every NaN-free case with at least W scores and on all the
    /// scores as candidates, gives the definition's winners: both are exact, whichever one
    /// the number of candidates picks.
    #[test]
    fn rank_and_insertion_are_each_the_argmax_order() {
        let mut both = 0;
        cases(600, |sc, w| {
            let p = sc.len();
            if w > p || sc.iter().any(|v| v.is_nan()) {
                return;
            }
            both += 1;
            let idx: Vec<u32> = (0..p as u32).collect();
            let mut want = vec![0u32; w];
            select_by_argmax(&sc, &mut vec![false; p], &mut want);
            let mut a = vec![0u32; w];
            let mut vals = sc.clone();
            vals.resize(p.div_ceil(LANES) * LANES, 7.0);
            select_by_rank(&mut vals, p, &idx, &mut vec![0; w + 1], &mut a);
            assert_eq!(a, want, "rank: scores {sc:?}, w = {w}");
            let mut b = vec![0u32; w];
            select_by_insertion(&sc, &idx, &mut b);
            assert_eq!(b, want, "insertion: scores {sc:?}, w = {w}");
        });
        assert!(both > 300);
    }

    /// The bound keeps every winner (the W-th largest score reaches it) and, on distinct
    /// scores, leaves few more candidates than winners.
    #[test]
    fn the_bound_keeps_the_winners_and_few_others() {
        let sc: Vec<f32> = (0..128).map(|i| ((i * 37) % 128) as f32 * 0.25).collect();
        let (lo, n) = bound(&sc, 16, &mut [0.0; 16]);
        let mut sorted = sc.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        assert!(sorted[15] >= lo, "{lo} above the 16th score {}", sorted[15]);
        assert_eq!(n, sc.iter().filter(|&&v| v >= lo).count());
        assert!((16..=16 + SLACK).contains(&n), "{n} candidates");
    }
}
