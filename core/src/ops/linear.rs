//! The affine map `Y = X · W + b` and its VJP.

use crate::Scalar;
use ndarray::{
    ArrayView1, ArrayView2, ArrayView3, ArrayViewMut1, ArrayViewMut2, ArrayViewMut3, Axis,
};

/// `y = x · w + b` for a batch of rows: `x` is `B × I`, `w` is `I × O`, `y` is `B × O`,
/// ([`accumulate`]).
pub fn forward<S: Scalar>(
    x: ArrayView2<S>,
    w: ArrayView2<S>,
    b: Option<ArrayView1<S>>,
    y: ArrayViewMut2<S>,
) {
    let y = set_bias(b, y);
    accumulate(x, w, y);
}

fn set_bias<'a, S: Scalar>(
    b: Option<ArrayView1<S>>,
    mut y: ArrayViewMut2<'a, S>,
) -> ArrayViewMut2<'a, S> {
    match b {
        Some(b) => {
            for mut row in y.rows_mut() {
                row.assign(&b);
            }
        }
        None => y.fill(S::zero()),
    }
    y
}

/// `y += x · w`, row by row with the hand-written kernels. Each row's result is bit for bit
/// what that row gives alone (and what a per-token step gives it), whatever the number of
/// rows: a batch computes exactly what each of its sequences computes alone, and a windowed
/// form exactly what the step loop computes. Operands that are not contiguous row-major
/// views fall back to a general matrix product, without that guarantee.
pub fn accumulate<S: Scalar>(x: ArrayView2<S>, w: ArrayView2<S>, mut y: ArrayViewMut2<S>) {
    let rows = x.nrows();
    if let (Some(xs), Some(ws), Some(ys)) = (x.as_slice(), w.as_slice(), y.as_slice_mut()) {
        S::gemm_rows_acc(ys, xs, ws, rows);
        return;
    }
    ndarray::linalg::general_mat_mul(S::one(), &x, &w, S::one(), &mut y);
}

/// The VJP of [`forward`]: `dw += xᵀ · dy`, `db += Σ_rows dy`, and `dx = dy · wᵀ` (assigned,
/// or added when `accumulate_dx`).
pub fn backward<S: Scalar>(
    x: ArrayView2<S>,
    w: ArrayView2<S>,
    dy: ArrayView2<S>,
    mut dw: ArrayViewMut2<S>,
    db: Option<ArrayViewMut1<S>>,
    dx: Option<(ArrayViewMut2<S>, bool)>,
) {
    ndarray::linalg::general_mat_mul(S::one(), &x.t(), &dy, S::one(), &mut dw);
    if let Some(mut db) = db {
        db += &dy.sum_axis(Axis(0));
    }
    if let Some((mut dx, acc)) = dx {
        let beta = if acc { S::one() } else { S::zero() };
        ndarray::linalg::general_mat_mul(S::one(), &dy, &w.t(), beta, &mut dx);
    }
}

/// The input gradient of a window whose input feeds several linear maps: `dx = Σₖ dyₖ · wₖᵀ`
/// (assigned). Each `dyₖ` is `(T·B) × outₖ` with rows `t·B + b`, each `wₖ` is `I × outₖ`,
/// and `dx` is `T × B × I`; the terms are added in the order given.
pub fn backward_inputs<S: Scalar>(
    terms: &[(ArrayView2<S>, ArrayView2<S>)],
    mut dx: ArrayViewMut3<S>,
) {
    let (t, b, i) = dx.dim();
    if let Some(d) = dx.as_slice_mut() {
        sum_products(terms, crate::buf::mat_mut(d, t * b, i));
        return;
    }
    // Only a contiguous window can be seen as one `(T·B) × I` matrix; any other goes through
    // a buffer.
    let mut buf = vec![S::zero(); t * b * i];
    sum_products(terms, crate::buf::mat_mut(&mut buf, t * b, i));
    dx.assign(&ArrayView3::from_shape((t, b, i), &buf).expect("sized above"));
}

/// `acc = Σₖ dyₖ · wₖᵀ` (assigned), the terms added in the order given. The first product
/// is taken with `β = 0`, which overwrites `acc` without reading it, so whatever `acc` held
/// before does not matter.
fn sum_products<S: Scalar>(terms: &[(ArrayView2<S>, ArrayView2<S>)], mut acc: ArrayViewMut2<S>) {
    if terms.is_empty() {
        acc.fill(S::zero());
    }
    for (k, (dy, w)) in terms.iter().enumerate() {
        let beta = if k == 0 { S::zero() } else { S::one() };
        ndarray::linalg::general_mat_mul(S::one(), dy, &w.t(), beta, &mut acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rng;
    use crate::gradcheck::{numeric_gradient, relative_error};
    use ndarray::{Array1, Array2};

    fn rand(r: &mut Rng, rows: usize, cols: usize) -> Array2<f64> {
        Array2::from_shape_fn((rows, cols), |_| r.normal())
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut r = Rng::new(5);
        for &(bsz, i, o) in &[(1, 3, 4), (3, 5, 2)] {
            let x = rand(&mut r, bsz, i);
            let w = rand(&mut r, i, o);
            let b = Array1::from_shape_fn(o, |_| r.normal());
            let c = rand(&mut r, bsz, o); // loss = <c, y>
            let loss = |x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>| {
                let mut y = Array2::zeros((bsz, o));
                forward(x.view(), w.view(), Some(b.view()), y.view_mut());
                (&y * &c).sum()
            };
            let mut dw = Array2::zeros((i, o));
            let mut db = Array1::zeros(o);
            let mut dx = Array2::zeros((bsz, i));
            backward(
                x.view(),
                w.view(),
                c.view(),
                dw.view_mut(),
                Some(db.view_mut()),
                Some((dx.view_mut(), false)),
            );
            let mut wf = w.clone().into_raw_vec_and_offset().0;
            let gw = numeric_gradient(&mut wf, 1e-6, &mut |v| {
                loss(&x, &Array2::from_shape_vec((i, o), v.to_vec()).unwrap(), &b)
            });
            assert!(relative_error(dw.as_slice().unwrap(), &gw, 1e-12) < 1e-8);
            let mut xf = x.clone().into_raw_vec_and_offset().0;
            let gx = numeric_gradient(&mut xf, 1e-6, &mut |v| {
                loss(
                    &Array2::from_shape_vec((bsz, i), v.to_vec()).unwrap(),
                    &w,
                    &b,
                )
            });
            assert!(relative_error(dx.as_slice().unwrap(), &gx, 1e-12) < 1e-8);
            let mut bf = b.to_vec();
            let gb = numeric_gradient(&mut bf, 1e-6, &mut |v| {
                loss(&x, &w, &Array1::from(v.to_vec()))
            });
            assert!(relative_error(db.as_slice().unwrap(), &gb, 1e-12) < 1e-8);
        }
    }

    #[test]
    fn backward_inputs_sums_the_terms_into_the_window() {
        let mut r = Rng::new(3);
        let (t, b, i) = (2, 3, 4);
        let (dy1, w1) = (rand(&mut r, t * b, 5), rand(&mut r, i, 5));
        let (dy2, w2) = (rand(&mut r, t * b, 2), rand(&mut r, i, 2));
        let mut dx = ndarray::Array3::from_elem((t, b, i), 7.0);
        backward_inputs(
            &[(dy1.view(), w1.view()), (dy2.view(), w2.view())],
            dx.view_mut(),
        );
        let want = dy1.dot(&w1.t()) + dy2.dot(&w2.t());
        for (a, b) in dx.iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn single_row_kernel_equals_matrix_product() {
        let mut r = Rng::new(9);
        let x = rand(&mut r, 1, 16);
        let w = rand(&mut r, 16, 4);
        let mut y = Array2::zeros((1, 4));
        forward(x.view(), w.view(), None, y.view_mut());
        let want = x.dot(&w);
        for (a, b) in y.iter().zip(want.iter()) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
