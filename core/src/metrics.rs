//! Scores of predictions against targets, in the data's own units.

use serde::{Deserialize, Serialize};

/// Regression and classification scores. Fields that do not apply are `None`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Number of predictions scored (rows).
    pub count: usize,
    /// Mean squared error over all values.
    pub mse: Option<f64>,
    /// √MSE.
    pub rmse: Option<f64>,
    /// Mean absolute error.
    pub mae: Option<f64>,
    /// Coefficient of determination per output column (against that column's mean),
    /// averaged over columns. A constant column's R² is 1 if predicted exactly, else 0.
    pub r2: Option<f64>,
    /// Fraction of rows whose arg-max class is right.
    pub accuracy: Option<f64>,
    /// Mean cross-entropy (classification).
    pub cross_entropy: Option<f64>,
}

/// Regression metrics of `pred` against `target`, both `rows × width` flat, row-major.
pub fn regression(pred: &[f64], target: &[f64], width: usize) -> Metrics {
    assert_eq!(pred.len(), target.len(), "metrics: lengths differ");
    let rows = target.len().checked_div(width).unwrap_or(0);
    if rows == 0 {
        return Metrics::default();
    }
    let n = pred.len() as f64;
    let mse = pred
        .iter()
        .zip(target)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / n;
    let mae = pred
        .iter()
        .zip(target)
        .map(|(p, t)| (p - t).abs())
        .sum::<f64>()
        / n;
    let mut r2 = 0.0;
    for c in 0..width {
        let col = |v: &[f64]| (0..rows).map(|r| v[r * width + c]).collect::<Vec<_>>();
        let (p, t) = (col(pred), col(target));
        let mean = t.iter().sum::<f64>() / rows as f64;
        let ss_res: f64 = p.iter().zip(&t).map(|(a, b)| (a - b) * (a - b)).sum();
        let ss_tot: f64 = t.iter().map(|b| (b - mean) * (b - mean)).sum();
        r2 += if ss_tot > 0.0 {
            1.0 - ss_res / ss_tot
        } else if ss_res == 0.0 {
            1.0
        } else {
            0.0
        };
    }
    Metrics {
        count: rows,
        mse: Some(mse),
        rmse: Some(mse.sqrt()),
        mae: Some(mae),
        r2: Some(r2 / width as f64),
        ..Metrics::default()
    }
}

/// [`regression`] accumulated row by row, in memory that does not grow with the rows: for
/// scoring a stream of any length.
///
/// Each column's target mean and spread are kept by Welford's update, so R² stays accurate
/// without a second pass over the data.
#[derive(Clone, Debug)]
pub struct RegressionStream {
    width: usize,
    rows: usize,
    sq: f64,
    abs: f64,
    /// Per column: running target mean, sum of squared deviations from it, squared error.
    cols: Vec<(f64, f64, f64)>,
}

impl RegressionStream {
    /// An empty accumulator for rows of `width` values.
    pub fn new(width: usize) -> Self {
        RegressionStream {
            width,
            rows: 0,
            sq: 0.0,
            abs: 0.0,
            cols: vec![(0.0, 0.0, 0.0); width],
        }
    }

    /// Adds one row of predictions and its targets (each `width` long).
    pub fn push(&mut self, pred: &[f64], target: &[f64]) {
        assert!(
            pred.len() == self.width && target.len() == self.width,
            "RegressionStream::push: row width"
        );
        self.rows += 1;
        let n = self.rows as f64;
        for ((p, t), (mean, m2, res)) in pred.iter().zip(target).zip(&mut self.cols) {
            let e = p - t;
            self.sq += e * e;
            self.abs += e.abs();
            *res += e * e;
            let d = t - *mean;
            *mean += d / n;
            *m2 += d * (t - *mean);
        }
    }

    /// The scores so far; the same as [`regression`] over the same rows, up to rounding.
    pub fn finish(&self) -> Metrics {
        if self.rows == 0 || self.width == 0 {
            return Metrics::default();
        }
        let n = (self.rows * self.width) as f64;
        let mse = self.sq / n;
        let r2: f64 = self
            .cols
            .iter()
            .map(|&(_, ss_tot, ss_res)| {
                if ss_tot > 0.0 {
                    1.0 - ss_res / ss_tot
                } else if ss_res == 0.0 {
                    1.0
                } else {
                    0.0
                }
            })
            .sum();
        Metrics {
            count: self.rows,
            mse: Some(mse),
            rmse: Some(mse.sqrt()),
            mae: Some(self.abs / n),
            r2: Some(r2 / self.width as f64),
            ..Metrics::default()
        }
    }
}

/// Classification metrics from summed cross-entropy and correct counts over `count` rows.
pub fn classification(ce_sum: f64, correct: usize, count: usize) -> Metrics {
    if count == 0 {
        return Metrics::default();
    }
    Metrics {
        count,
        accuracy: Some(correct as f64 / count as f64),
        cross_entropy: Some(ce_sum / count as f64),
        ..Metrics::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let t = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0];
        let m = regression(&t, &t, 2);
        assert_eq!(m.r2, Some(1.0));
        assert_eq!(m.mse, Some(0.0));
        // predicting each column's mean gives R² = 0
        let p = [2.0, 20.0, 2.0, 20.0, 2.0, 20.0];
        let m = regression(&p, &t, 2);
        assert!(m.r2.unwrap().abs() < 1e-12);
        let expected_mse = (1.0 + 100.0 + 0.0 + 0.0 + 1.0 + 100.0) / 6.0;
        assert!((m.mse.unwrap() - expected_mse).abs() < 1e-12);
        assert!((m.mae.unwrap() - 22.0 / 6.0).abs() < 1e-12);
        let mut stream = RegressionStream::new(2);
        for (pr, tr) in p.chunks(2).zip(t.chunks(2)) {
            stream.push(pr, tr);
        }
        let s = stream.finish();
        assert_eq!(s.count, m.count);
        for (a, b) in [(s.mse, m.mse), (s.mae, m.mae), (s.r2, m.r2)] {
            assert!((a.unwrap() - b.unwrap()).abs() < 1e-12, "{a:?} vs {b:?}");
        }
        let c = classification(3.0, 2, 4);
        assert_eq!(c.accuracy, Some(0.5));
    }
}
