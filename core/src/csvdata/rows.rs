//! A CSV file read as a stream of numeric rows: linear time, memory independent of the file's
//! length, and the file's own line number attached to every row and every error.

use crate::{Error, Result, Scalar};
use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Passes bytes through to the CSV parser and remembers where the line breaks are, so that a
/// record's byte offset becomes a line number without rescanning the file.
///
/// Only the breaks the parser has read but not yet turned into records are kept (at most its
/// buffer's worth), so memory stays bounded whatever the file's length.
struct LineBreaks<R> {
    inner: R,
    /// Bytes handed to the parser so far.
    offset: u64,
    /// `\n` and `\r` offsets not yet passed, each with whether it is a `\n`.
    pending: VecDeque<(u64, bool)>,
    /// `\n`s before every offset still in `pending`.
    newlines: usize,
}

impl<R: Read> Read for LineBreaks<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                self.pending.push_back((self.offset + i as u64, b == b'\n'));
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineBreaks<R> {
    /// The 1-based line of the record whose scan began at byte `start`. The parser reports a
    /// record's start before the blank lines it skipped, so those are stepped over first.
    /// Records must be asked for in file order.
    fn line_of(&mut self, start: u64) -> usize {
        let mut at = start;
        while let Some(&(off, lf)) = self.pending.front() {
            if off < at {
                self.newlines += usize::from(lf);
            } else if off == at {
                self.newlines += usize::from(lf);
                at += 1;
            } else {
                break;
            }
            self.pending.pop_front();
        }
        1 + self.newlines
    }
}

/// Where a row came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowInfo {
    /// Its 1-based line in the file.
    pub line: usize,
    /// Whether it starts a sequence: the first row, and every row whose sequence column
    /// differs from the row before.
    pub new_sequence: bool,
}

/// Named numeric columns of a CSV file with a header row, read one row at a time.
///
/// Every value must parse as a number that is finite in `S`; every error names the file, and
/// the line and column where it was found.
pub struct CsvRows<S, R = File> {
    path: PathBuf,
    reader: csv::Reader<LineBreaks<R>>,
    record: csv::ByteRecord,
    columns: Vec<(usize, String)>,
    sequence: Option<usize>,
    last_id: Vec<u8>,
    rows: usize,
    missing_as_nan: bool,
    _scalar: PhantomData<S>,
}

/// Whether a cell is a missing value: empty, or one of the usual markers (`NA`, `N/A`,
/// `NaN`, `null`, `?`), in any case.
pub fn is_missing(cell: &[u8]) -> bool {
    cell.is_empty()
        || [&b"na"[..], b"n/a", b"nan", b"null", b"?"]
            .iter()
            .any(|m| cell.eq_ignore_ascii_case(m))
}

impl<S: Scalar> CsvRows<S> {
    /// Opens `path` and finds `columns` (and the `sequence` column, if any) in its header.
    pub fn open(path: &Path, columns: &[String], sequence: Option<&str>) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Self::from_reader(path, file, columns, sequence)
    }
}

impl<S: Scalar, R: Read> CsvRows<S, R> {
    /// As [`CsvRows::open`], reading from `reader`; `path` only names the data in errors.
    pub fn from_reader(
        path: &Path,
        reader: R,
        columns: &[String],
        sequence: Option<&str>,
    ) -> Result<Self> {
        let err = |message: String| Error::Csv {
            path: path.to_path_buf(),
            message,
        };
        if columns.is_empty() {
            return Err(err("name at least one column to read".into()));
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].contains(c) {
                return Err(err(format!("column '{c}' is asked for twice")));
            }
        }
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .buffer_capacity(1 << 16)
            .from_reader(LineBreaks {
                inner: reader,
                offset: 0,
                pending: VecDeque::new(),
                newlines: 0,
            });
        let header: Vec<String> = reader
            .byte_headers()
            .map_err(|e| err(format!("cannot read the header: {e}")))?
            .iter()
            .map(|h| String::from_utf8_lossy(h).trim().to_string())
            .collect();
        let find = |name: &str| -> Result<usize> {
            let mut at = header.iter().enumerate().filter(|(_, h)| *h == name);
            match (at.next(), at.next()) {
                (Some((i, _)), None) => Ok(i),
                (Some((i, _)), Some((j, _))) => Err(err(format!(
                    "the header names column '{name}' more than once (columns {} and {})",
                    i + 1,
                    j + 1
                ))),
                (None, _) => Err(err(format!(
                    "no column named '{name}'; the header has: {}",
                    header.join(", ")
                ))),
            }
        };
        let columns = columns
            .iter()
            .map(|c| Ok((find(c)?, c.clone())))
            .collect::<Result<_>>()?;
        let sequence = sequence.map(find).transpose()?;
        Ok(CsvRows {
            path: path.to_path_buf(),
            reader,
            record: csv::ByteRecord::new(),
            columns,
            sequence,
            last_id: Vec::new(),
            rows: 0,
            missing_as_nan: false,
            _scalar: PhantomData,
        })
    }

    /// Reads a missing cell (see [`is_missing`]) as NaN instead of refusing it, for a caller
    /// with a policy for gaps ([`crate::series`]). Every other value is checked as before.
    pub fn missing_as_nan(mut self) -> Self {
        self.missing_as_nan = true;
        self
    }

    /// How many values a row has (the number of columns asked for).
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Rows read so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The file (or the name given for the reader) the rows come from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, message: String) -> Error {
        Error::Csv {
            path: self.path.clone(),
            message,
        }
    }

    /// Reads the next row's values into `out` (of length [`CsvRows::width`]), in the order
    /// the columns were named. `None` at the end of the file; a file without any data row is
    /// an error.
    pub fn next_into(&mut self, out: &mut [S]) -> Result<Option<RowInfo>> {
        assert_eq!(out.len(), self.width(), "CsvRows::next_into: row width");
        let more = match self.reader.read_byte_record(&mut self.record) {
            Ok(more) => more,
            Err(e) => return Err(self.csv_error(e)),
        };
        if !more {
            if self.rows == 0 {
                return Err(self.err("the file has a header but no data rows".into()));
            }
            return Ok(None);
        }
        let start = self.record.position().map_or(0, |p| p.byte());
        let line = self.reader.get_mut().line_of(start);
        for (slot, (i, name)) in out.iter_mut().zip(&self.columns) {
            let cell = self.record.get(*i).unwrap_or(b"").trim_ascii();
            if self.missing_as_nan && is_missing(cell) {
                *slot = S::from_f64(f64::NAN);
                continue;
            }
            let text = std::str::from_utf8(cell).ok();
            let v: f64 = text.and_then(|t| t.parse().ok()).ok_or_else(|| {
                self.err(format!(
                    "line {line}, column '{name}': '{}' is not a number",
                    String::from_utf8_lossy(cell)
                ))
            })?;
            let s = S::from_f64(v);
            if !s.is_finite() {
                return Err(self.err(format!(
                    "line {line}, column '{name}': {} is not a finite {} number",
                    String::from_utf8_lossy(cell),
                    S::NAME
                )));
            }
            *slot = s;
        }
        let mut new_sequence = self.rows == 0;
        if let Some(si) = self.sequence {
            let id = self.record.get(si).unwrap_or(b"").trim_ascii();
            if id != self.last_id.as_slice() {
                new_sequence = true;
                self.last_id.clear();
                self.last_id.extend_from_slice(id);
            }
        }
        self.rows += 1;
        Ok(Some(RowInfo { line, new_sequence }))
    }

    /// The parser's error with the line it happened on, in the file's own numbering.
    fn csv_error(&mut self, e: csv::Error) -> Error {
        let line = e
            .position()
            .map(|p| p.byte())
            .map(|b| self.reader.get_mut().line_of(b));
        let at = line.map_or(String::new(), |l| format!("line {l}: "));
        let message = match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => format!("{at}{len} fields where the header has {expected_len}"),
            _ => format!("{at}{e}"),
        };
        match e.into_kind() {
            csv::ErrorKind::Io(io) => Error::io(&self.path, io),
            _ => self.err(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    fn rows<'a>(text: &'a str, cols: &[&str], seq: Option<&str>) -> Result<CsvRows<f32, &'a [u8]>> {
        CsvRows::from_reader(Path::new("d.csv"), text.as_bytes(), &names(cols), seq)
    }

    /// Every row with its line and sequence flag, or the first error's text.
    fn all(text: &str, cols: &[&str], seq: Option<&str>) -> Result<Vec<(Vec<f32>, RowInfo)>> {
        let mut r = rows(text, cols, seq)?;
        let mut row = vec![0.0; cols.len()];
        let mut out = Vec::new();
        while let Some(info) = r.next_into(&mut row)? {
            out.push((row.clone(), info));
        }
        Ok(out)
    }

    #[test]
    fn lines_count_blank_lines_crlf_and_quoted_breaks() {
        let got = all(
            "x,note\r\n1,a\r\n\r\n\r\n2,\"two\nlines\"\n3,c\n",
            &["x"],
            None,
        )
        .unwrap();
        let lines: Vec<usize> = got.iter().map(|(_, i)| i.line).collect();
        assert_eq!(lines, [2, 5, 7]);
        let e = all("x\n1\n\n2,3\n", &["x"], None).unwrap_err().to_string();
        assert!(e.contains("line 4: 2 fields where the header has 1"), "{e}");
    }

    #[test]
    fn sequences_start_where_the_id_changes() {
        let got = all("id,x\na,1\na,2\nb,3\na,4\n", &["x"], Some("id")).unwrap();
        let starts: Vec<bool> = got.iter().map(|(_, i)| i.new_sequence).collect();
        assert_eq!(starts, [true, false, true, true]);
        assert_eq!(got[3].0, [4.0]);
    }

    #[test]
    fn duplicate_columns_are_refused() {
        let e = rows("x,y\n1,2\n", &["x", "x"], None).err().unwrap();
        assert!(e.to_string().contains("'x' is asked for twice"), "{e}");
        let e = rows("x,y,x\n1,2,3\n", &["x"], None).err().unwrap();
        assert!(
            e.to_string()
                .contains("names column 'x' more than once (columns 1 and 3)"),
            "{e}"
        );
        // A repeated column that is not read is harmless.
        assert!(rows("x,y,y\n1,2,3\n", &["x"], None).is_ok());
    }

    #[test]
    fn a_long_file_keeps_line_numbers_and_bounded_memory() {
        // Far more than the parser's 64 KiB buffer, with an error on the last line.
        let n = 200_000;
        let mut text = String::from("x\n");
        for i in 0..n {
            text.push_str(&format!("{}\n", i % 7));
        }
        text.push_str("oops\n");
        let mut r = rows(&text, &["x"], None).unwrap();
        let mut row = [0.0];
        let mut most = 0;
        let mut last = 0;
        let e = loop {
            match r.next_into(&mut row) {
                Ok(Some(info)) => last = info.line,
                Ok(None) => panic!("the bad line was accepted"),
                Err(e) => break e,
            }
            most = most.max(r.reader.get_ref().pending.len());
        };
        assert_eq!(last, n + 1);
        assert!(
            e.to_string()
                .contains(&format!("line {}, column 'x': 'oops'", n + 2)),
            "{e}"
        );
        assert!(most <= 1 << 16, "{most} line breaks held at once");
    }
}
