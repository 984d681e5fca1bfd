//! A CSV file read as a stream of row chunks, for the commands that run a model over data of
//! any length (`predict`, `eval`) in constant memory.

use crate::Failure;
use mnnn_core::csvdata::{CsvRows, RowInfo};
use mnnn_core::metrics::RegressionStream;
use mnnn_core::{Error, Result};
use ndarray::{Array2, ArrayView2};
use std::path::Path;

/// Rows read and run at a time: the only data held in memory, whatever the file's length.
/// The model carries its memory from chunk to chunk, so the outputs are exactly those of one
/// pass over the whole file.
pub const CHUNK: usize = 4096;

/// Chunks of up to [`CHUNK`] rows of named columns; a chunk never spans two sequences.
pub struct Chunks<'p> {
    path: &'p Path,
    rows: CsvRows<f32>,
    buf: Array2<f32>,
    lines: Vec<usize>,
    /// A row already read into `buf` that starts the next chunk (it began a new sequence),
    /// and where in `buf` it is.
    held: Option<(RowInfo, usize)>,
}

/// One chunk of rows.
pub struct Chunk<'a> {
    /// The rows, `n × columns`, in the order the columns were named.
    pub rows: ArrayView2<'a, f32>,
    /// The file line of each row.
    pub lines: &'a [usize],
    /// Whether the first row starts a sequence.
    pub new_sequence: bool,
    path: &'a Path,
}

impl<'p> Chunks<'p> {
    /// Opens `path` for `columns`; `sequence` names a column whose changes of value start a
    /// new sequence.
    pub fn open(path: &'p Path, columns: &[String], sequence: Option<&str>) -> Result<Self> {
        let rows = CsvRows::open(path, columns, sequence)?;
        let buf = Array2::zeros((CHUNK, rows.width()));
        Ok(Chunks {
            path,
            rows,
            buf,
            lines: Vec::with_capacity(CHUNK),
            held: None,
        })
    }

    /// The next chunk, `None` at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk<'_>>> {
        self.lines.clear();
        let mut new_sequence = false;
        if let Some((info, at)) = self.held.take() {
            if at != 0 {
                let (mut first, rest) = self.buf.view_mut().split_at(ndarray::Axis(0), 1);
                first.row_mut(0).assign(&rest.row(at - 1));
            }
            self.lines.push(info.line);
            new_sequence = info.new_sequence;
        }
        while self.lines.len() < CHUNK {
            let n = self.lines.len();
            let row = self.buf.row_mut(n).into_slice().expect("row-major");
            let Some(info) = self.rows.next_into(row)? else {
                break;
            };
            if n == 0 {
                new_sequence = info.new_sequence;
            } else if info.new_sequence {
                self.held = Some((info, n));
                break;
            }
            self.lines.push(info.line);
        }
        let n = self.lines.len();
        Ok((n > 0).then(|| Chunk {
            rows: self.buf.slice(ndarray::s![..n, ..]),
            lines: &self.lines,
            new_sequence,
            path: self.path,
        }))
    }
}

impl Chunk<'_> {
    /// A model's error on this chunk, with the file and the lines it came from.
    pub fn error(&self, e: Error) -> Failure {
        let (first, last) = (self.lines[0], self.lines[self.lines.len() - 1]);
        let mut f = Failure::from(e);
        f.message = format!(
            "{}: lines {first}–{last}: {}",
            self.path.display(),
            f.message
        );
        f
    }
}

/// Scores predictions against the targets `horizon` rows later in the same sequence, as a
/// model trained `horizon` steps ahead forecasts them: each prediction waits for its
/// target's row, and the last `horizon` predictions of a sequence have none.
pub struct AheadScores {
    horizon: usize,
    pending: std::collections::VecDeque<Vec<f64>>,
    /// The scores so far.
    pub score: RegressionStream,
}

impl AheadScores {
    /// Scores of `width` outputs, `horizon` rows ahead.
    pub fn new(width: usize, horizon: usize) -> Self {
        AheadScores {
            horizon,
            pending: Default::default(),
            score: RegressionStream::new(width),
        }
    }

    /// A new sequence starts: the predictions still waiting have no target.
    pub fn new_sequence(&mut self) {
        self.pending.clear();
    }

    /// Adds the predictions `ys` of consecutive rows whose targets are `truth`.
    pub fn add(&mut self, ys: ArrayView2<f32>, truth: ArrayView2<f32>) {
        let mut t = Vec::new();
        for (y, row) in ys.rows().into_iter().zip(truth.rows()) {
            self.pending
                .push_back(y.iter().map(|v| f64::from(*v)).collect());
            if self.pending.len() > self.horizon {
                let p = self.pending.pop_front().expect("non-empty");
                t.clear();
                t.extend(row.iter().map(|v| f64::from(*v)));
                self.score.push(&p, &t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ahead_scores_pair_each_prediction_with_the_row_horizon_later() {
        let ys = ndarray::array![[1.0f32], [2.0], [3.0], [4.0]];
        let truth = ndarray::array![[9.0f32], [9.0], [1.0], [2.0]];
        let mut s = AheadScores::new(1, 2);
        s.add(
            ys.slice(ndarray::s![..3, ..]),
            truth.slice(ndarray::s![..3, ..]),
        );
        s.add(
            ys.slice(ndarray::s![3.., ..]),
            truth.slice(ndarray::s![3.., ..]),
        );
        let m = s.score.finish();
        assert_eq!((m.count, m.rmse), (2, Some(0.0)));
        s.new_sequence();
        s.add(ys.view(), ys.view());
        assert_eq!(
            s.score.finish().count,
            4,
            "two more pairs, none across the boundary"
        );
        let mut same = AheadScores::new(1, 0);
        same.add(ys.view(), ys.view());
        assert_eq!(same.score.finish().rmse, Some(0.0));
    }

    #[test]
    fn chunks_cover_every_row_once_and_never_span_two_sequences() {
        // Two sequences: the first longer than a chunk, so its tail and the next sequence's
        // start meet inside one read.
        let (first, second) = (CHUNK + 904, 3);
        let mut csv = String::from("id,x\n");
        for r in 0..first + second {
            csv += &format!("{},{r}\n", usize::from(r >= first));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.csv");
        std::fs::write(&path, csv).unwrap();
        let mut chunks = Chunks::open(&path, &["x".to_string()], Some("id")).unwrap();
        let mut seen = Vec::new();
        let mut shape = Vec::new();
        while let Some(c) = chunks.next_chunk().unwrap() {
            shape.push((c.rows.nrows(), c.new_sequence));
            for (row, &line) in c.rows.rows().into_iter().zip(c.lines) {
                // Row r of the data is on line r + 2 (after the header).
                assert_eq!(row[0] as usize + 2, line);
                seen.push(row[0] as usize);
            }
        }
        assert_eq!(shape, [(CHUNK, true), (904, false), (second, true)]);
        assert_eq!(seen, (0..first + second).collect::<Vec<_>>());
    }
}
