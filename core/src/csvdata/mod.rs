//! Reading sequences from CSV files with a header row.

mod rows;

pub use rows::{CsvRows, RowInfo, is_missing};

use crate::data::{Dataset, Inputs, IoSpec, Sequence, Targets};
use crate::{Error, Result, Scalar};
use ndarray::Array2;
use std::path::Path;

/// Reads every row of `path`'s `columns` as `S`, one flat row-major matrix per sequence.
fn read_sequences<S: Scalar>(
    path: &Path,
    columns: &[String],
    sequence: Option<&str>,
) -> Result<Vec<Array2<S>>> {
    let mut rows = CsvRows::<S>::open(path, columns, sequence)?;
    let w = rows.width();
    let mut row = vec![S::zero(); w];
    let mut out = Vec::new();
    let mut current: Vec<S> = Vec::new();
    let finish = |v: Vec<S>| Array2::from_shape_vec((v.len() / w, w), v).expect("whole rows");
    while let Some(info) = rows.next_into(&mut row)? {
        if info.new_sequence && !current.is_empty() {
            out.push(finish(std::mem::take(&mut current)));
        }
        current.extend_from_slice(&row);
    }
    out.push(finish(current));
    Ok(out)
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
    let ni = inputs.len();
    let sequences = read_sequences::<S>(path, &cols, sequence)?
        .into_iter()
        .map(|m| Sequence {
            inputs: Inputs::Real(m.slice(ndarray::s![.., ..ni]).to_owned()),
            targets: Targets::Real(m.slice(ndarray::s![.., ni..]).to_owned()),
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
    read_sequences::<S>(path, inputs, sequence)
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
