//! A memoryless linear regression: the floor any model with memory must clear.

use mnnn_core::{Dataset, Error, Inputs, Result, Targets};

/// Ordinary least squares `y ≈ x A + c` per step, fitted on some sequences and scored on
/// others. It sees only the current step's inputs, never the past.
#[derive(Clone, Debug)]
pub struct LinearRegression {
    /// `(inputs + 1) × outputs` coefficients, the last row the intercept.
    pub coef: Vec<Vec<f64>>,
}

/// Design rows (with a trailing 1) and target rows.
type Rows = (Vec<Vec<f64>>, Vec<Vec<f64>>);

fn rows(data: &Dataset<f64>, seqs: &[(usize, usize, usize)]) -> Result<Rows> {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for &(s, a, b) in seqs {
        let seq = &data.sequences[s];
        let (Inputs::Real(x), Targets::Real(y)) = (&seq.inputs, &seq.targets) else {
            return Err(Error::Data(
                "linear regression needs real inputs and targets".into(),
            ));
        };
        for t in a..b {
            let mut row: Vec<f64> = x.row(t).to_vec();
            row.push(1.0);
            xs.push(row);
            ys.push(y.row(t).to_vec());
        }
    }
    Ok((xs, ys))
}

impl LinearRegression {
    /// Fits on steps `a..b` of sequence `s` for every `(s, a, b)` in `train` (a tiny ridge
    /// term keeps collinear columns solvable).
    pub fn fit(data: &Dataset<f64>, train: &[(usize, usize, usize)]) -> Result<Self> {
        let (xs, ys) = rows(data, train)?;
        let p = xs.first().map_or(0, |r| r.len());
        let o = ys.first().map_or(0, |r| r.len());
        let mut a = vec![vec![0.0; p]; p];
        let mut b = vec![vec![0.0; o]; p];
        for (x, y) in xs.iter().zip(&ys) {
            for i in 0..p {
                for j in 0..p {
                    a[i][j] += x[i] * x[j];
                }
                for k in 0..o {
                    b[i][k] += x[i] * y[k];
                }
            }
        }
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += 1e-9 * (1.0 + row[i]);
        }
        // Gaussian elimination with partial pivoting on [a | b].
        for c in 0..p {
            let piv = (c..p)
                .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
                .unwrap_or(c);
            a.swap(c, piv);
            b.swap(c, piv);
            let d = a[c][c];
            if d.abs() < 1e-300 {
                return Err(Error::Data(
                    "linear regression: singular design matrix".into(),
                ));
            }
            let (pa, pb) = (a[c].clone(), b[c].clone());
            for r in (0..p).filter(|&r| r != c) {
                let f = a[r][c] / d;
                for (v, pv) in a[r][c..].iter_mut().zip(&pa[c..]) {
                    *v -= f * pv;
                }
                for (v, pv) in b[r].iter_mut().zip(&pb) {
                    *v -= f * pv;
                }
            }
        }
        let coef = (0..p)
            .map(|i| b[i].iter().map(|v| v / a[i][i]).collect())
            .collect();
        Ok(LinearRegression { coef })
    }

    /// Predictions for steps `a..b` of each `(s, a, b)`, with the matching targets.
    pub fn predict(
        &self,
        data: &Dataset<f64>,
        seqs: &[(usize, usize, usize)],
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let (xs, ys) = rows(data, seqs)?;
        let mut pred = Vec::new();
        for x in &xs {
            for k in 0..self.coef[0].len() {
                pred.push(x.iter().zip(&self.coef).map(|(xi, c)| xi * c[k]).sum());
            }
        }
        Ok((pred, ys.into_iter().flatten().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mnnn_core::{IoSpec, Sequence};
    use ndarray::Array2;

    #[test]
    fn recovers_a_linear_map() {
        let x = Array2::from_shape_fn((50, 2), |(t, j)| ((t * (j + 3)) % 7) as f64 - 3.0);
        let y = Array2::from_shape_fn((50, 1), |(t, _)| 2.0 * x[[t, 0]] - 0.5 * x[[t, 1]] + 1.0);
        let d = Dataset {
            io: IoSpec::regression(2, 1),
            sequences: vec![Sequence {
                inputs: Inputs::Real(x),
                targets: Targets::Real(y),
                mask: None,
            }],
        };
        let lr = LinearRegression::fit(&d, &[(0, 0, 40)]).unwrap();
        let (p, t) = lr.predict(&d, &[(0, 40, 50)]).unwrap();
        for (a, b) in p.iter().zip(&t) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
