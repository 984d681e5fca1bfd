//! Reading sequences from CSV files with a header row.

use crate::data::{Dataset, Inputs, IoSpec, Sequence, Targets};
use crate::{Error, Result, Scalar};
use ndarray::Array2;
use std::path::Path;

/// A CSV table read as numbers: named columns and their values, plus an optional sequence id
/// per row.
struct Table {
    rows: Vec<Vec<f64>>,
    groups: Option<Vec<String>>,
}

fn column_index(path: &Path, header: &csv::StringRecord, name: &str) -> Result<usize> {
    header
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| Error::Csv {
            path: path.to_path_buf(),
            message: format!(
                "no column named '{name}'; the header has: {}",
                header
                    .iter()
                    .map(|h| h.trim())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

fn read_table<S: Scalar>(path: &Path, columns: &[String], sequence: Option<&str>) -> Result<Table> {
    let err = |message: String| Error::Csv {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // Line numbers from byte offsets: the reader's own count skips blank lines.
    let line_at = |byte: u64| {
        // The reader reports where a record's scan began, before any blank lines it skipped.
        let mut b = (byte as usize).min(bytes.len());
        while b < bytes.len() && (bytes[b] == b'\n' || bytes[b] == b'\r') {
            b += 1;
        }
        1 + bytes[..b].iter().filter(|c| **c == b'\n').count()
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes.as_slice());
    let header = reader
        .headers()
        .map_err(|e| err(format!("cannot read the header: {e}")))?
        .clone();
    let idx: Vec<usize> = columns
        .iter()
        .map(|c| column_index(path, &header, c))
        .collect::<Result<_>>()?;
    let seq_idx = sequence
        .map(|s| column_index(path, &header, s))
        .transpose()?;
    let mut rows = Vec::new();
    let mut groups = seq_idx.map(|_| Vec::new());
    for record in reader.records() {
        let record = record.map_err(|e| err(e.to_string()))?;
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        let mut row = Vec::with_capacity(idx.len());
        for (&i, name) in idx.iter().zip(columns) {
            let cell = record.get(i).unwrap_or("").trim();
            let v: f64 = cell.parse().map_err(|_| {
                err(format!(
                    "line {line}, column '{name}': '{cell}' is not a number"
                ))
            })?;
            if !S::from_f64(v).is_finite() {
                return Err(err(format!(
                    "line {line}, column '{name}': {cell} is not a finite {} number",
                    S::NAME
                )));
            }
            row.push(v);
        }
        if let (Some(g), Some(si)) = (groups.as_mut(), seq_idx) {
            g.push(record.get(si).unwrap_or("").trim().to_string());
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(err("the file has a header but no data rows".into()));
    }
    Ok(Table { rows, groups })
}

/// Splits row indices into runs of equal sequence id (consecutive rows; a new id, or a return
/// to an earlier one, starts a new sequence).
fn runs(n: usize, groups: &Option<Vec<String>>) -> Vec<(usize, usize)> {
    match groups {
        None => vec![(0, n)],
        Some(g) => {
            let mut out = Vec::new();
            let mut start = 0;
            for i in 1..=n {
                if i == n || g[i] != g[start] {
                    out.push((start, i));
                    start = i;
                }
            }
            out
        }
    }
}

fn matrix<S: Scalar>(rows: &[Vec<f64>], cols: std::ops::Range<usize>) -> Array2<S> {
    let w = cols.len();
    Array2::from_shape_fn((rows.len(), w), |(r, c)| {
        S::from_f64(rows[r][cols.start + c])
    })
}

/// Reads a regression data set: `inputs` and `targets` name header columns; one file is one
/// sequence unless `sequence` names a column whose changes of value start a new one.
pub fn load_csv<S: Scalar>(
    path: &Path,
    inputs: &[String],
    targets: &[String],
    sequence: Option<&str>,
) -> Result<Dataset<S>> {
    if inputs.is_empty() || targets.is_empty() {
        return Err(Error::Csv {
            path: path.to_path_buf(),
            message: "name at least one input column and one target column".into(),
        });
    }
    let cols: Vec<String> = inputs.iter().chain(targets).cloned().collect();
    let table = read_table::<S>(path, &cols, sequence)?;
    let ni = inputs.len();
    let sequences = runs(table.rows.len(), &table.groups)
        .into_iter()
        .map(|(a, b)| Sequence {
            inputs: Inputs::Real(matrix(&table.rows[a..b], 0..ni)),
            targets: Targets::Real(matrix(&table.rows[a..b], ni..cols.len())),
            mask: None,
        })
        .collect();
    let mut io = IoSpec::regression(ni, targets.len());
    io.input_names = inputs.to_vec();
    io.target_names = targets.to_vec();
    Ok(Dataset { io, sequences })
}

/// Reads only input columns (for prediction), as one `T × inputs` matrix per sequence.
pub fn load_csv_inputs<S: Scalar>(
    path: &Path,
    inputs: &[String],
    sequence: Option<&str>,
) -> Result<Vec<Array2<S>>> {
    if inputs.is_empty() {
        return Err(Error::Csv {
            path: path.to_path_buf(),
            message: "name at least one input column".into(),
        });
    }
    let table = read_table::<S>(path, inputs, sequence)?;
    Ok(runs(table.rows.len(), &table.groups)
        .into_iter()
        .map(|(a, b)| matrix(&table.rows[a..b], 0..inputs.len()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
        let p = dir.path().join("d.csv");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn names(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_columns_by_name_and_splits_sequences() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "id,y,x\na,1,10\na,2,20\nb,3,30\n");
        let d = load_csv::<f64>(&p, &names(&["x"]), &names(&["y"]), Some("id")).unwrap();
        assert_eq!(d.sequences.len(), 2);
        assert_eq!(
            d.sequences[0].inputs,
            Inputs::Real(ndarray::array![[10.0], [20.0]])
        );
        assert_eq!(
            d.sequences[1].targets,
            Targets::Real(ndarray::array![[3.0]])
        );
        let one = load_csv::<f64>(&p, &names(&["x"]), &names(&["y"]), None).unwrap();
        assert_eq!(one.sequences.len(), 1);
    }

    /// The error reading `path` as f32 with input column `input` and target `y`.
    fn refusal(path: &std::path::Path, input: &str) -> String {
        load_csv::<f32>(path, &names(&[input]), &names(&["y"]), None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bad_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(&dir, "x,y\n1,2\n\n\n3,oops\n");
        let e = refusal(&p, "x");
        assert!(
            e.contains("line 5, column 'y': 'oops' is not a number"),
            "{e}"
        );
        let big = write(&dir, "x,y\n1,1e39\n");
        let e = refusal(&big, "x");
        assert!(
            e.contains("line 2, column 'y': 1e39 is not a finite f32 number"),
            "{e}"
        );
        assert!(load_csv::<f64>(&big, &names(&["x"]), &names(&["y"]), None).is_ok());
        let e = refusal(&p, "z");
        assert!(
            e.contains("no column named 'z'; the header has: x, y"),
            "{e}"
        );
        let missing = dir.path().join("nope.csv");
        assert!(matches!(
            load_csv::<f32>(&missing, &names(&["x"]), &names(&["y"]), None),
            Err(Error::Io { .. })
        ));
        let p = write(&dir, "x,y\n");
        assert!(refusal(&p, "x").contains("no data rows"));
    }
}
