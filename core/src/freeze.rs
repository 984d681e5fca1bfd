//! Freezing: choosing parameter entries that training must leave unchanged.

use crate::{Error, Result, Rng, Scalar, TensorInfo, Tensors};
use serde::{Deserialize, Serialize};

/// Which parameter entries a freeze (or unfreeze) applies to.
///
/// Names match tensor names (`w_h`, `head.w`, ...); a pattern may use `*` for any run of
/// characters (`w_*`, `*`). Fractions are exact: `fraction · n` rounded to nearest entries,
/// drawn without replacement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FreezeSpec {
    /// Every entry of every tensor whose name matches the pattern.
    Tensors(String),
    /// A seeded random `fraction` of the entries of the matching tensors.
    Percentage {
        /// Tensor name pattern.
        pattern: String,
        /// Fraction in `[0, 1]`.
        fraction: f64,
        /// Seed of the draw.
        seed: u64,
    },
    /// The `fraction` of entries of the matching tensors with the largest (or smallest) |value|.
    Magnitude {
        /// Tensor name pattern.
        pattern: String,
        /// Fraction in `[0, 1]`.
        fraction: f64,
        /// `true`: the largest magnitudes; `false`: the smallest.
        largest: bool,
    },
    /// Whole neurons of one tensor: for a matrix stored input-major (`in × out`) the column of
    /// each listed output unit (its incoming weights); for a vector, the listed elements.
    Neurons {
        /// Exact tensor name.
        tensor: String,
        /// Output-unit indices.
        neurons: Vec<usize>,
    },
    /// The outgoing weights of input units: for a matrix stored input-major (`in × out`), row
    /// `i` of each listed unit (what the unit feeds onward, e.g. a hidden neuron's row of the
    /// output matrix).
    Rows {
        /// Exact tensor name (a matrix).
        tensor: String,
        /// Row (input-unit) indices.
        rows: Vec<usize>,
    },
}

/// Whether `name` matches `pattern`, where `*` matches any run of characters.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    // Linear-time wildcard matching: remember the last `*` and retry from one character
    // further on a mismatch (user patterns must not cost exponential time).
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && p[i] == b'*' {
            star = Some((i, j));
            i += 1;
        } else if i < p.len() && p[i] == n[j] {
            i += 1;
            j += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == b'*')
}

fn exact_count(fraction: f64, n: usize) -> Result<usize> {
    if !(0.0..=1.0).contains(&fraction) {
        return Err(Error::Freeze(format!(
            "fraction {fraction} is outside [0, 1]"
        )));
    }
    Ok((fraction * n as f64).round() as usize)
}

/// The tensor called exactly `name`.
fn named<'a, S: Scalar>(params: &'a Tensors<S>, name: &str) -> Result<&'a TensorInfo> {
    let i = params
        .layout()
        .index_of(name)
        .ok_or_else(|| Error::Freeze(format!("no parameter named '{name}'")))?;
    Ok(&params.layout().entries()[i])
}

/// The flat indices of the listed units of one tensor, sorted and without repeats: unit `u`
/// (below `count`, else refused with the message `out_of_range(u)`) covers `indices(u)`.
fn units_of<I: Iterator<Item = usize>>(
    listed: &[usize],
    count: usize,
    out_of_range: impl Fn(usize) -> String,
    indices: impl Fn(usize) -> I,
) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for &u in listed {
        if u >= count {
            return Err(Error::Freeze(out_of_range(u)));
        }
        out.extend(indices(u));
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The flat indices (into `params.data()`) that `spec` selects.
pub fn select<S: Scalar>(params: &Tensors<S>, spec: &FreezeSpec) -> Result<Vec<usize>> {
    let matching = |pattern: &str| -> Result<Vec<usize>> {
        let idx: Vec<usize> = params
            .layout()
            .entries()
            .iter()
            .filter(|e| glob_match(pattern, &e.name))
            .flat_map(|e| e.range())
            .collect();
        if params
            .layout()
            .entries()
            .iter()
            .all(|e| !glob_match(pattern, &e.name))
        {
            let names: Vec<&str> = params
                .layout()
                .entries()
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            return Err(Error::Freeze(format!(
                "no parameter matches '{pattern}'; parameters are: {}",
                names.join(", ")
            )));
        }
        Ok(idx)
    };
    match spec {
        FreezeSpec::Tensors(p) => matching(p),
        FreezeSpec::Percentage {
            pattern,
            fraction,
            seed,
        } => {
            let mut idx = matching(pattern)?;
            let k = exact_count(*fraction, idx.len())?;
            Rng::derive(*seed, "freeze").shuffle(&mut idx);
            idx.truncate(k);
            idx.sort_unstable();
            Ok(idx)
        }
        FreezeSpec::Magnitude {
            pattern,
            fraction,
            largest,
        } => {
            let mut idx = matching(pattern)?;
            let k = exact_count(*fraction, idx.len())?;
            let data = params.data();
            // Stable sort by magnitude: ties keep index order, so the choice is reproducible.
            idx.sort_by(|&a, &b| {
                let (ma, mb) = (data[a].abs(), data[b].abs());
                let ord = ma.partial_cmp(&mb).unwrap_or(std::cmp::Ordering::Equal);
                if *largest { ord.reverse() } else { ord }
            });
            idx.truncate(k);
            idx.sort_unstable();
            Ok(idx)
        }
        FreezeSpec::Neurons { tensor, neurons } => {
            let e = named(params, tensor)?;
            let units = (*e.shape.last().unwrap_or(&1)).max(1);
            let rows = if e.shape.len() >= 2 {
                e.len() / units
            } else {
                1
            };
            units_of(
                neurons,
                units,
                |j| format!("neuron {j} is out of range: '{tensor}' has {units} output units"),
                |j| (0..rows).map(move |r| e.offset + r * units + j),
            )
        }
        FreezeSpec::Rows { tensor, rows } => {
            let e = named(params, tensor)?;
            if e.shape.len() != 2 {
                return Err(Error::Freeze(format!(
                    "'{tensor}' is not a matrix; rows need one"
                )));
            }
            let (n_rows, cols) = (e.shape[0], e.shape[1]);
            units_of(
                rows,
                n_rows,
                |r| format!("row {r} is out of range: '{tensor}' has {n_rows} rows"),
                |r| (0..cols).map(move |c| e.offset + r * cols + c),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layout;

    fn params() -> Tensors<f64> {
        let l = Layout::new()
            .with("w_h", &[2, 3])
            .with("b_h", &[3])
            .with("head.w", &[2, 2]);
        let data = (0..13).map(|i| (i as f64 - 6.0) * 0.5).collect();
        Tensors::from_vec(l, data).unwrap()
    }

    fn percentage(fraction: f64, seed: u64) -> FreezeSpec {
        FreezeSpec::Percentage {
            pattern: "*".into(),
            fraction,
            seed,
        }
    }

    fn magnitude(fraction: f64, largest: bool) -> FreezeSpec {
        FreezeSpec::Magnitude {
            pattern: "*".into(),
            fraction,
            largest,
        }
    }

    fn neurons(tensor: &str, neurons: Vec<usize>) -> FreezeSpec {
        FreezeSpec::Neurons {
            tensor: tensor.into(),
            neurons,
        }
    }

    fn rows(tensor: &str, rows: Vec<usize>) -> FreezeSpec {
        FreezeSpec::Rows {
            tensor: tensor.into(),
            rows,
        }
    }

    #[test]
    fn patterns_and_exact_counts() {
        let p = params();
        assert_eq!(
            select(&p, &FreezeSpec::Tensors("b_h".into())).unwrap(),
            vec![6, 7, 8]
        );
        assert_eq!(
            select(&p, &FreezeSpec::Tensors("*_h".into()))
                .unwrap()
                .len(),
            9
        );
        let pct = select(&p, &percentage(0.5, 1)).unwrap();
        assert_eq!(pct.len(), 7, "round(0.5 * 13)");
        let again = select(&p, &percentage(0.5, 1)).unwrap();
        assert_eq!(pct, again);
        let other = select(&p, &percentage(0.5, 2)).unwrap();
        assert_ne!(pct, other);
    }

    #[test]
    fn magnitude_freezes_exactly_what_it_names() {
        let p = params(); // values -3.0 ..= 3.0 in steps of 0.5
        let large = select(&p, &magnitude(2.0 / 13.0, true)).unwrap();
        assert_eq!(large, vec![0, 12], "|-3| and |3|");
        let small = select(&p, &magnitude(1.0 / 13.0, false)).unwrap();
        assert_eq!(small, vec![6], "the zero");
    }

    #[test]
    fn neurons_are_columns_of_input_major_matrices() {
        let p = params();
        assert_eq!(select(&p, &neurons("w_h", vec![1])).unwrap(), vec![1, 4]);
        assert_eq!(select(&p, &neurons("b_h", vec![2])).unwrap(), vec![8]);
        assert!(select(&p, &neurons("w_h", vec![3])).is_err());
    }

    #[test]
    fn rows_are_outgoing_weights() {
        let p = params();
        assert_eq!(select(&p, &rows("w_h", vec![1])).unwrap(), vec![3, 4, 5]);
        assert!(select(&p, &rows("w_h", vec![2])).is_err());
        assert!(select(&p, &rows("b_h", vec![0])).is_err());
    }

    #[test]
    fn bad_requests_are_refused() {
        let p = params();
        let e = select(&p, &FreezeSpec::Tensors("w_x".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no parameter matches 'w_x'; parameters are: w_h, b_h, head.w"),
            "{e}"
        );
        assert!(select(&p, &percentage(1.5, 0)).is_err());
    }

    #[test]
    fn glob() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("w_*", "w_h"));
        assert!(!glob_match("w_*", "b_h"));
        assert!(glob_match("*.w", "head.w"));
        assert!(glob_match("w*h*", "w_h"));
        assert!(!glob_match("w*x", "w_h"));
        assert!(glob_match("**", ""));
        let stars = format!("{}x", "*".repeat(200));
        assert!(!glob_match(&stars, "embed.table"), "and quickly");
    }
}
