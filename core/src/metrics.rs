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
        let c = classification(3.0, 2, 4);
        assert_eq!(c.accuracy, Some(0.5));
    }
}
