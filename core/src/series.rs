//! Forecasting transforms on parsed CSV columns: a policy for missing values, and targets
//! taken `horizon` steps ahead.
//!
//! They work on whole columns after the streaming reader ([`crate::csvdata::CsvRows`]) has
//! parsed them, since both look across rows (an interpolation needs the next known value, a
//! horizon the row `n` steps on); the reader itself stays one row at a time.

use crate::csvdata::CsvRows;
use crate::data::{Dataset, Inputs, IoSpec, Sequence, Targets};
use crate::{Error, Result};
use ndarray::Array2;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What to do with a missing value: an empty cell, or `NA`, `N/A`, `NaN`, `null`, `?`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Missing {
    /// Refuse the file, naming the line and column of the first gap.
    #[default]
    Error,
    /// Fill each gap on a straight line between the known values either side of it in the
    /// same column and sequence; a gap at a sequence's start or end takes the nearest known
    /// value.
    Interpolate,
    /// Leave out every row with a gap in any column read; the rows either side become
    /// neighbours (a horizon counts the rows that remain).
    Drop,
}

/// How a CSV file becomes a forecasting data set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forecasting {
    /// Steps ahead: the target of row `t` is the target column at row `t + horizon` of the
    /// same sequence; the last `horizon` rows of a sequence have none and are not scored.
    pub horizon: usize,
    /// The missing-value policy.
    pub missing: Missing,
}

/// Named columns of a file as read, before any transform.
#[derive(Clone, Debug, PartialEq)]
pub struct Columns {
    /// The file, for messages.
    pub path: PathBuf,
    /// Column names, in the order of `values`' columns.
    pub names: Vec<String>,
    /// `rows × names` values; NaN where a cell is missing.
    pub values: Array2<f64>,
    /// Each row's line in the file.
    pub lines: Vec<usize>,
    /// Where each sequence's rows start (ascending, the first is 0).
    pub starts: Vec<usize>,
}

impl Columns {
    /// Reads `names` (each once) of `path`, missing cells as NaN; a `sequence` column's
    /// changes of value start a new sequence. Values are checked as finite in `f32`, the type
    /// models train in, so a value only `f64` can hold is refused with its line.
    pub fn read(path: &Path, names: &[String], sequence: Option<&str>) -> Result<Columns> {
        let mut rows = CsvRows::<f32>::open(path, names, sequence)?.missing_as_nan();
        let w = names.len();
        let mut row = vec![0.0f32; w];
        let (mut flat, mut lines, mut starts) = (Vec::new(), Vec::new(), Vec::new());
        while let Some(info) = rows.next_into(&mut row)? {
            if info.new_sequence {
                starts.push(lines.len());
            }
            lines.push(info.line);
            flat.extend(row.iter().map(|&v| f64::from(v)));
        }
        let values = Array2::from_shape_vec((lines.len(), w), flat).expect("whole rows");
        Ok(Columns {
            path: path.to_path_buf(),
            names: names.to_vec(),
            values,
            lines,
            starts,
        })
    }

    fn error(&self, message: String) -> Error {
        Error::Csv {
            path: self.path.clone(),
            message,
        }
    }

    /// The row ranges of the sequences.
    fn ranges(&self) -> Vec<(usize, usize)> {
        let n = self.values.nrows();
        self.starts
            .iter()
            .enumerate()
            .map(|(k, &a)| (a, self.starts.get(k + 1).copied().unwrap_or(n)))
            .collect()
    }

    /// Applies `policy` to the missing values, so that none is left.
    pub fn fill_missing(&mut self, policy: Missing) -> Result<()> {
        match policy {
            Missing::Error => {
                if let Some(i) = self.values.iter().position(|v| v.is_nan()) {
                    let w = self.names.len();
                    return Err(self.error(format!(
                        "line {}, column '{}': the value is missing (to accept gaps, set \
                         missing: Interpolate or missing: Drop in data)",
                        self.lines[i / w],
                        self.names[i % w]
                    )));
                }
                Ok(())
            }
            Missing::Drop => {
                let keep: Vec<usize> = (0..self.values.nrows())
                    .filter(|&r| self.values.row(r).iter().all(|v| !v.is_nan()))
                    .collect();
                let mut starts = Vec::new();
                for (a, b) in self.ranges() {
                    let first = keep.partition_point(|&r| r < a);
                    if keep.get(first).is_some_and(|&r| r < b) {
                        starts.push(first);
                    }
                }
                if keep.is_empty() {
                    return Err(self.error(
                        "every row has a missing value; missing: Drop leaves nothing".into(),
                    ));
                }
                self.values = self.values.select(ndarray::Axis(0), &keep);
                self.lines = keep.iter().map(|&r| self.lines[r]).collect();
                self.starts = starts;
                Ok(())
            }
            Missing::Interpolate => {
                for (a, b) in self.ranges() {
                    for c in 0..self.names.len() {
                        self.interpolate(a, b, c)?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Fills the gaps of column `c` in rows `a..b`.
    fn interpolate(&mut self, a: usize, b: usize, c: usize) -> Result<()> {
        let known: Vec<usize> = (a..b).filter(|&r| !self.values[[r, c]].is_nan()).collect();
        let (Some(&first), Some(&last)) = (known.first(), known.last()) else {
            return Err(self.error(format!(
                "column '{}' has no value in the sequence starting at line {}; there is \
                 nothing to interpolate from",
                self.names[c], self.lines[a]
            )));
        };
        for r in a..first {
            self.values[[r, c]] = self.values[[first, c]];
        }
        for r in last + 1..b {
            self.values[[r, c]] = self.values[[last, c]];
        }
        for pair in known.windows(2) {
            let (i, j) = (pair[0], pair[1]);
            let (vi, vj) = (self.values[[i, c]], self.values[[j, c]]);
            for r in i + 1..j {
                let f = (r - i) as f64 / (j - i) as f64;
                self.values[[r, c]] = vi + f * (vj - vi);
            }
        }
        Ok(())
    }

    fn index(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .expect("every named column was read")
    }

    /// The data set mapping `inputs` to `targets` taken `horizon` rows ahead. Missing values
    /// must have been filled ([`Columns::fill_missing`]).
    pub fn dataset(
        &self,
        inputs: &[String],
        targets: &[String],
        horizon: usize,
    ) -> Result<Dataset<f64>> {
        let (xi, yi): (Vec<usize>, Vec<usize>) = (
            inputs.iter().map(|n| self.index(n)).collect(),
            targets.iter().map(|n| self.index(n)).collect(),
        );
        let mut sequences = Vec::new();
        for (a, b) in self.ranges() {
            let len = b - a;
            if len <= horizon {
                return Err(self.error(format!(
                    "the sequence starting at line {} has {len} row(s); with horizon {horizon} \
                     none of them has a target {horizon} rows ahead",
                    self.lines[a]
                )));
            }
            let x = Array2::from_shape_fn((len, xi.len()), |(t, j)| self.values[[a + t, xi[j]]]);
            // The last `horizon` rows have no target: they hold the last one there is (so
            // the normalisation statistics barely move) and are masked out of every loss
            // and score, but still run through the memory.
            let y = Array2::from_shape_fn((len, yi.len()), |(t, j)| {
                self.values[[a + (t + horizon).min(len - 1), yi[j]]]
            });
            sequences.push(Sequence {
                inputs: Inputs::Real(x),
                targets: Targets::Real(y),
                mask: (horizon > 0).then(|| (0..len).map(|t| t + horizon < len).collect()),
            });
        }
        let mut io = IoSpec::regression(inputs.len(), targets.len());
        io.input_names = inputs.to_vec();
        io.target_names = targets.to_vec();
        Ok(Dataset { io, sequences })
    }
}

/// Reads a forecasting data set from `path`: `inputs` and `targets` may share columns (a
/// series forecast from its own past), each column is read once, gaps are handled by
/// `how.missing` and targets are taken `how.horizon` rows ahead.
pub fn load(
    path: &Path,
    inputs: &[String],
    targets: &[String],
    sequence: Option<&str>,
    how: &Forecasting,
) -> Result<Dataset<f64>> {
    if inputs.is_empty() || targets.is_empty() {
        return Err(Error::Csv {
            path: path.to_path_buf(),
            message: "name at least one input column and one target column".into(),
        });
    }
    // A column may be both an input and a target (a forecast of itself), but not twice in
    // one list: that would silently widen the model with a copy.
    // What was asked for is wrong, not the file: a usage error, as in a config.
    for (name, cols) in [("inputs", inputs), ("targets", targets)] {
        if let Some(c) = repeated(cols) {
            return Err(Error::invalid_param(
                name,
                cols.join(","),
                format!("each column once (column '{c}' is asked for twice)"),
            ));
        }
    }
    let mut names: Vec<String> = Vec::new();
    for n in inputs.iter().chain(targets) {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let mut cols = Columns::read(path, &names, sequence)?;
    cols.fill_missing(how.missing)?;
    cols.dataset(inputs, targets, how.horizon)
}

/// The first column named a second time in `cols`, if any.
pub fn repeated(cols: &[String]) -> Option<&str> {
    (1..cols.len())
        .find(|&i| cols[..i].contains(&cols[i]))
        .map(|i| cols[i].as_str())
}

/// Why a data set is a copy task, if it is one: targets that are also inputs, at horizon 0,
/// ask the model to copy what it reads, which scores R² = 1 and forecasts nothing.
pub fn copy_task(inputs: &[String], targets: &[String], horizon: usize) -> Option<String> {
    let shared: Vec<&str> = targets
        .iter()
        .filter(|t| inputs.contains(t))
        .map(String::as_str)
        .collect();
    (horizon == 0 && !shared.is_empty()).then(|| {
        format!(
            "column '{}' is named twice, as an input and as a target, with horizon 0: the \
             model would copy its input (a perfect score that forecasts nothing); set \
             horizon: 1 (or more) in data to forecast it ahead",
            shared.join("', '")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.csv");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    fn column(d: &Dataset<f64>, k: usize, targets: bool) -> Vec<f64> {
        let s = &d.sequences[k];
        let a = match (targets, &s.inputs, &s.targets) {
            (false, Inputs::Real(x), _) => x,
            (true, _, Targets::Real(y)) => y,
            _ => panic!("real columns"),
        };
        a.column(0).to_vec()
    }

    #[test]
    fn horizon_targets_lie_ahead_within_each_sequence_and_the_tail_is_not_scored() {
        let (_d, p) = file("id,y\na,1\na,2\na,3\na,4\nb,10\nb,20\nb,30\n");
        let how = Forecasting {
            horizon: 2,
            ..Forecasting::default()
        };
        let d = load(&p, &names(&["y"]), &names(&["y"]), Some("id"), &how).unwrap();
        assert_eq!(column(&d, 0, false), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(&column(&d, 0, true)[..2], [3.0, 4.0]);
        assert_eq!(d.sequences[0].mask, Some(vec![true, true, false, false]));
        assert_eq!(&column(&d, 1, true)[..1], [30.0]);
        assert_eq!(d.sequences[1].mask, Some(vec![true, false, false]));
        d.validate().unwrap();
        let flat = load(
            &p,
            &names(&["y"]),
            &names(&["y"]),
            Some("id"),
            &Forecasting::default(),
        );
        assert_eq!(flat.unwrap().sequences[0].mask, None);
        let how = Forecasting {
            horizon: 3,
            ..Forecasting::default()
        };
        let e = load(&p, &names(&["y"]), &names(&["y"]), Some("id"), &how).unwrap_err();
        assert!(e.to_string().contains("line 6 has 3 row(s)"), "{e}");
    }

    #[test]
    fn gaps_are_refused_with_their_line_or_filled_or_dropped() {
        let (_d, p) = file("x,y\n1,10\n,20\nNA,30\n7,\n9,50\n");
        let xy = (names(&["x"]), names(&["y"]));
        let e = load(&p, &xy.0, &xy.1, None, &Forecasting::default()).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 3, column 'x': the value is missing"),
            "{e}"
        );
        let how = |missing| Forecasting {
            horizon: 0,
            missing,
        };
        let d = load(&p, &xy.0, &xy.1, None, &how(Missing::Interpolate)).unwrap();
        assert_eq!(column(&d, 0, false), [1.0, 3.0, 5.0, 7.0, 9.0]);
        assert_eq!(column(&d, 0, true), [10.0, 20.0, 30.0, 40.0, 50.0]);
        let d = load(&p, &xy.0, &xy.1, None, &how(Missing::Drop)).unwrap();
        assert_eq!(column(&d, 0, false), [1.0, 9.0]);
        assert_eq!(column(&d, 0, true), [10.0, 50.0]);
        // Ends take the nearest value; a column with nothing known is refused.
        let (_d, p) = file("id,x,y\na,,1\na,4,2\na,,3\nb,,4\n");
        let d = load(&p, &xy.0, &xy.1, Some("id"), &how(Missing::Drop)).unwrap();
        assert_eq!(d.sequences.len(), 1, "sequence b lost its only row");
        let e = load(&p, &xy.0, &xy.1, Some("id"), &how(Missing::Interpolate)).unwrap_err();
        assert!(
            e.to_string()
                .contains("column 'x' has no value in the sequence starting at line 5"),
            "{e}"
        );
        let (_d, p) = file("x,y\n,1\n4,2\n,3\n");
        let d = load(&p, &xy.0, &xy.1, None, &how(Missing::Interpolate)).unwrap();
        assert_eq!(column(&d, 0, false), [4.0, 4.0, 4.0]);
        // A value that is present but wrong is still refused under every policy.
        let (_d, p) = file("x,y\n1,2\noops,3\n");
        let e = load(&p, &xy.0, &xy.1, None, &how(Missing::Drop)).unwrap_err();
        assert!(e.to_string().contains("'oops' is not a number"), "{e}");
    }

    #[test]
    fn a_copy_task_is_named() {
        let (x, y) = (names(&["a", "y"]), names(&["y"]));
        let w = copy_task(&x, &y, 0).unwrap();
        assert!(w.contains("column 'y' is named twice, as an input"), "{w}");
        assert!(copy_task(&x, &y, 1).is_none());
        assert!(copy_task(&names(&["a"]), &y, 0).is_none());
    }
}
