//! Elementwise operations with broadcasting over axes of length one, on flat slices: a row
//! at a time with a tight inner loop (ndarray's general broadcasting zip costs more than
//! the arithmetic at these sizes).

use super::Bin;
use mnnn_core::Scalar;
use ndarray::Array3;

/// The slice of row `i` of group `g` of a standard-layout stack, broadcast where it has one
/// group or one row.
fn row<S>(a: &[S], (ga, ma, na): (usize, usize, usize), g: usize, i: usize) -> &[S] {
    let at = ((if ga == 1 { 0 } else { g }) * ma + if ma == 1 { 0 } else { i }) * na;
    &a[at..at + na]
}

fn apply<S: Scalar>(x: &Array3<S>, y: &Array3<S>, f: impl Fn(S, S) -> S) -> Array3<S> {
    let (dx, dy) = (x.dim(), y.dim());
    let (xs, ys) = (
        x.as_slice().expect("standard layout"),
        y.as_slice().expect("standard layout"),
    );
    if dx == dy {
        let v: Vec<S> = xs.iter().zip(ys).map(|(&a, &b)| f(a, b)).collect();
        return Array3::from_shape_vec(dx, v).expect("sized");
    }
    let shape = (dx.0.max(dy.0), dx.1.max(dy.1), dx.2.max(dy.2));
    let mut v = Vec::with_capacity(shape.0 * shape.1 * shape.2);
    for g in 0..shape.0 {
        for i in 0..shape.1 {
            let (a, b) = (row(xs, dx, g, i), row(ys, dy, g, i));
            match (a.len() == shape.2, b.len() == shape.2) {
                (true, true) => v.extend(a.iter().zip(b).map(|(&a, &b)| f(a, b))),
                (true, false) => v.extend(a.iter().map(|&a| f(a, b[0]))),
                (false, true) => v.extend(b.iter().map(|&b| f(a[0], b))),
                (false, false) => v.push(f(a[0], b[0])),
            }
        }
    }
    Array3::from_shape_vec(shape, v).expect("sized")
}

/// `x ∘ y` with broadcasting.
pub(super) fn forward<S: Scalar>(x: &Array3<S>, y: &Array3<S>, op: Bin) -> Array3<S> {
    match op {
        Bin::Add => apply(x, y, |a, b| a + b),
        Bin::Sub => apply(x, y, |a, b| a - b),
        Bin::Mul => apply(x, y, |a, b| a * b),
    }
}

/// Adds `sign · d ⊙ y` (`y` broadcast to `d`'s shape, or ones without it) to `dst`, summed
/// over every axis along which `dst`'s operand was broadcast.
pub(super) fn accumulate<S: Scalar>(
    dst: &mut Array3<S>,
    d: &Array3<S>,
    y: Option<&Array3<S>>,
    sign: S,
) {
    let (g, m, n) = d.dim();
    let dx = dst.dim();
    let ds = d.as_slice().expect("standard layout");
    let ys = y.map(|y| (y.dim(), y.as_slice().expect("standard layout")));
    let out = dst.as_slice_mut().expect("standard layout");
    for gi in 0..g {
        for i in 0..m {
            let dr = &ds[(gi * m + i) * n..(gi * m + i + 1) * n];
            let at =
                ((if dx.0 == 1 { 0 } else { gi }) * dx.1 + if dx.1 == 1 { 0 } else { i }) * dx.2;
            let o = &mut out[at..at + dx.2];
            let yr = ys.map(|(dy, y)| row(y, dy, gi, i));
            match (dx.2 == n, yr) {
                (true, None) => o.iter_mut().zip(dr).for_each(|(o, &d)| *o += sign * d),
                (true, Some(yr)) if yr.len() == n => o
                    .iter_mut()
                    .zip(dr)
                    .zip(yr)
                    .for_each(|((o, &d), &y)| *o += sign * d * y),
                (true, Some(yr)) => {
                    let k = sign * yr[0];
                    o.iter_mut().zip(dr).for_each(|(o, &d)| *o += k * d);
                }
                (false, None) => o[0] += sign * dr.iter().fold(S::zero(), |s, &d| s + d),
                (false, Some(yr)) if yr.len() == n => {
                    o[0] += sign * dr.iter().zip(yr).fold(S::zero(), |s, (&d, &y)| s + d * y);
                }
                (false, Some(yr)) => {
                    o[0] += sign * yr[0] * dr.iter().fold(S::zero(), |s, &d| s + d);
                }
            }
        }
    }
}
