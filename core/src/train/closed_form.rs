//! Least squares for linear models ([`Cell::linear_features`]): the coefficients in closed
//! form, the model order chosen on validation.

use super::config::TrainConfig;
use super::plan::{Split, Track};
use crate::Scalar;
use crate::cell::{Cell, LinearFeatures};
use crate::data::{Dataset, Inputs, OutputKind};
use crate::model::Model;
use ndarray::{Array1, Array2, Axis};

/// Feature and target rows (normalised units), row-major.
#[derive(Default)]
struct Rows {
    f: Vec<f64>,
    y: Vec<f64>,
}

impl Rows {
    fn n(&self, width: usize) -> usize {
        self.f.len().checked_div(width).unwrap_or(0)
    }
}

/// Solves the symmetric positive definite system `a x = b` (`a` is `k × k`, `b` is `k × o`)
/// by Cholesky; `None` when `a` is not positive definite.
fn cholesky_solve(a: &Array2<f64>, b: &Array2<f64>) -> Option<Array2<f64>> {
    let k = a.nrows();
    let mut l = Array2::<f64>::zeros((k, k));
    for i in 0..k {
        for j in 0..=i {
            let s: f64 = (0..j).map(|m| l[[i, m]] * l[[j, m]]).sum();
            if i == j {
                let d = a[[i, i]] - s;
                if d.is_nan() || d <= 0.0 {
                    return None;
                }
                l[[i, i]] = d.sqrt();
            } else {
                l[[i, j]] = (a[[i, j]] - s) / l[[j, j]];
            }
        }
    }
    let mut x = b.clone();
    for mut col in x.axis_iter_mut(Axis(1)) {
        for i in 0..k {
            let s: f64 = (0..i).map(|m| l[[i, m]] * col[m]).sum();
            col[i] = (col[i] - s) / l[[i, i]];
        }
        for i in (0..k).rev() {
            let s: f64 = (i + 1..k).map(|m| l[[m, i]] * col[m]).sum();
            col[i] = (col[i] - s) / l[[i, i]];
        }
    }
    Some(x)
}

/// Least squares of `rows`' targets on their first `k` features and an intercept, with a
/// ridge just large enough to keep collinear features (a constant input, repeated lags)
/// solvable: `(k + 1) × o` coefficients, the intercept last.
fn fit_order(rows: &Rows, width: usize, k: usize, o: usize) -> Array2<f64> {
    let n = rows.n(width);
    let mut g = Array2::<f64>::zeros((k + 1, k + 1));
    let mut r = Array2::<f64>::zeros((k + 1, o));
    let mut x = Array1::<f64>::zeros(k + 1);
    for t in 0..n {
        x.as_slice_mut().expect("contiguous")[..k]
            .copy_from_slice(&rows.f[t * width..t * width + k]);
        x[k] = 1.0;
        for i in 0..=k {
            for j in 0..=i {
                g[[i, j]] += x[i] * x[j];
            }
            for c in 0..o {
                r[[i, c]] += x[i] * rows.y[t * o + c];
            }
        }
    }
    for i in 0..=k {
        for j in 0..i {
            g[[j, i]] = g[[i, j]];
        }
    }
    let scale = (0..k).map(|i| g[[i, i]]).sum::<f64>() / k.max(1) as f64;
    let mut ridge = 1e-10 * scale.max(1e-300);
    loop {
        let mut a = g.clone();
        for i in 0..k {
            a[[i, i]] += ridge;
        }
        if let Some(c) = cholesky_solve(&a, &r) {
            return c;
        }
        ridge = (ridge * 100.0).max(1e-12);
    }
}

/// Mean squared error of `coef` (from [`fit_order`] with `k` features) on `rows`.
fn mse(coef: &Array2<f64>, rows: &Rows, width: usize, k: usize, o: usize) -> f64 {
    let n = rows.n(width);
    let mut sum = 0.0;
    for t in 0..n {
        let f = &rows.f[t * width..t * width + k];
        for c in 0..o {
            let p = coef[[k, c]]
                + f.iter()
                    .enumerate()
                    .map(|(i, v)| v * coef[[i, c]])
                    .sum::<f64>();
            let d = p - rows.y[t * o + c];
            sum += d * d;
        }
    }
    sum / (n * o).max(1) as f64
}

impl<S: Scalar, C: Cell<S>> Model<S, C> {
    /// The cell's linear features, when this model can be fitted in closed form: a linear
    /// cell, real inputs, regression outputs, and nothing frozen (a frozen coefficient has
    /// no closed form).
    pub(super) fn closed_form(&self, data: &Dataset<S>) -> Option<LinearFeatures> {
        let real = data
            .sequences
            .iter()
            .all(|s| matches!(s.inputs, Inputs::Real(_)));
        let regression = matches!(self.meta.io.output, OutputKind::Regression(_));
        (real && regression && self.frozen.is_none())
            .then(|| self.cell.linear_features())
            .flatten()
    }

    /// Fits the coefficients by least squares for each order of `lf` on the training part,
    /// keeps the order with the lowest validation error, and (with `refit`) fits that order
    /// again on training and validation data. Returns the order kept.
    pub(super) fn fit_least_squares(
        &mut self,
        data: &Dataset<S>,
        split: &Split,
        cfg: &TrainConfig,
        lf: &LinearFeatures,
    ) -> usize {
        let (w, o, i) = (lf.width, self.cell.dims().output, self.cell.dims().input);
        // Each sequence's features once, from a fresh state, as the cell would see it.
        let feats: Vec<Array2<f64>> = data
            .sequences
            .iter()
            .map(|s| {
                let t = s.len();
                let mut xs = Array2::<S>::zeros((t, i));
                for k in 0..t {
                    self.input_row(&s.inputs, k, xs.row_mut(k));
                }
                let mut f = Array2::<f64>::zeros((t, w));
                self.cell.features(xs.view(), f.view_mut());
                f
            })
            .collect();
        let gather = |tracks: &[Track]| {
            let mut rows = Rows::default();
            let mut y = vec![S::zero(); o];
            for tr in tracks {
                let s = &data.sequences[tr.seq];
                for t in tr.start.max(tr.score_from)..tr.end {
                    if !s.counts(t) {
                        continue;
                    }
                    rows.f.extend(feats[tr.seq].row(t).iter());
                    self.target_row(&s.inputs, &s.targets, t, &mut y);
                    rows.y.extend(y.iter().map(|v| v.as_f64()));
                }
            }
            rows
        };
        let train = gather(&split.train);
        let val = gather(&split.validation);
        let orders: Vec<usize> = lf.orders.iter().copied().filter(|&k| k <= w).collect();
        let mut best = (f64::INFINITY, *orders.last().unwrap_or(&w));
        if val.n(w) > 0 {
            for &k in &orders {
                let e = mse(&fit_order(&train, w, k, o), &val, w, k, o);
                if e < best.0 {
                    best = (e, k);
                }
            }
        }
        let k = best.1;
        let rows = if cfg.refit && val.n(w) > 0 {
            let mut all = train;
            all.f.extend(val.f);
            all.y.extend(val.y);
            all
        } else {
            train
        };
        let coef = fit_order(&rows, w, k, o);
        self.cell.set_coefficients(coef.view(), &mut self.params);
        // The head passes the cell's output through unchanged.
        for r in 0..o {
            self.params
                .mat_mut(self.idx.head_w)
                .row_mut(r)
                .fill(S::zero());
            self.params.mat_mut(self.idx.head_w)[[r, r]] = S::one();
        }
        self.params.slice_mut(self.idx.head_b).fill(S::zero());
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_an_affine_map_and_survives_a_repeated_column() {
        let mut rng = crate::Rng::new(3);
        let mut rows = Rows::default();
        for _ in 0..200 {
            let a = rng.normal();
            let b = rng.normal();
            // The third feature repeats the first: the ridge keeps the system solvable.
            rows.f.extend([a, b, a]);
            rows.y.push(2.0 * a - 0.5 * b + 0.25);
        }
        let c = fit_order(&rows, 3, 2, 1);
        assert!((c[[0, 0]] - 2.0).abs() < 1e-6, "{c}");
        assert!((c[[1, 0]] + 0.5).abs() < 1e-6, "{c}");
        assert!((c[[2, 0]] - 0.25).abs() < 1e-6, "{c}");
        let c3 = fit_order(&rows, 3, 3, 1);
        assert!(mse(&c3, &rows, 3, 3, 1) < 1e-10);
        assert!((c3[[0, 0]] + c3[[2, 0]] - 2.0).abs() < 1e-5, "{c3}");
    }
}
