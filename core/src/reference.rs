//! Reading model files of the reference C implementation, and the fidelity switch that
//! reproduces its forward pass.
//!
//! Reference files are raw native-endian (little-endian on every supported machine) `int32`,
//! `f32` and 1-byte `bool` values with no magic number or version; each architecture's import
//! function knows its layout and uses [`Reader`] to walk it.

use crate::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Which function an entry computes: the design it intends, or the reference implementation's
/// forward pass with its quirks (lag-2 echoes, in-place update orders, fixed constants and
/// clips), for running imported reference models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Compat {
    /// The architecture as designed (default).
    #[default]
    Design,
    /// The reference implementation's forward pass.
    Reference,
}

impl Compat {
    /// The RON spelling: `"design"` or `"reference"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compat::Design => "design",
            Compat::Reference => "reference",
        }
    }

    /// Every spelling, for parameter ranges.
    pub const NAMES: &'static [&'static str] = &["design", "reference"];
}

impl Serialize for Compat {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Compat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "design" => Ok(Compat::Design),
            "reference" => Ok(Compat::Reference),
            other => Err(serde::de::Error::custom(format!(
                "compat must be \"design\" or \"reference\", not \"{other}\""
            ))),
        }
    }
}

/// The sizes a reference file was written for (its header repeats some of them and they
/// must agree).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefDims {
    /// Input width I.
    pub input: usize,
    /// Hidden width H.
    pub hidden: usize,
    /// Output width O.
    pub output: usize,
    /// Manifold or memory-matrix rows M (AMN, DTPN).
    pub manifold: Option<usize>,
}

impl RefDims {
    /// Refuses widths of 0 and widths beyond 2^24 (the limit every model's widths have), so
    /// that the byte counts computed from them cannot overflow.
    pub fn validate(&self) -> Result<()> {
        const MAX: usize = 1 << 24;
        let sizes = [
            ("input", Some(self.input)),
            ("hidden", Some(self.hidden)),
            ("output", Some(self.output)),
            ("manifold", self.manifold),
        ];
        for (what, v) in sizes {
            if let Some(v) = v
                && !(1..=MAX).contains(&v)
            {
                return Err(Error::invalid_param(
                    what,
                    v,
                    format!("must be in [1, {MAX}]"),
                ));
            }
        }
        Ok(())
    }
}

/// The length of a reference file of `header` bytes followed by blocks of f32 values, each
/// block the product of its factors: checked, so sizes too large to address are an error
/// rather than a count that wraps around.
pub fn file_bytes(header: usize, blocks: &[&[usize]]) -> Result<usize> {
    blocks
        .iter()
        .try_fold(header, |acc, block| {
            let n = block.iter().try_fold(4usize, |p, &f| p.checked_mul(f))?;
            acc.checked_add(n)
        })
        .ok_or_else(|| {
            Error::Data(format!(
                "a reference file for these sizes would have more than {} bytes; the sizes are \
                 wrong",
                usize::MAX
            ))
        })
}

/// A reference model turned into an mnnn entry's terms.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The entry's hyper-parameters as RON (with `compat: "reference"`).
    pub params: String,
    /// Tensors by their model-file names (`param.*`, `state.*`), f32, row-major in the
    /// entry's layout.
    pub tensors: Vec<(String, Vec<f32>)>,
}

/// A cursor over a reference file's bytes that refuses short and long files with the
/// expected and actual byte counts.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    expected: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, which must be exactly `expected` bytes long.
    pub fn new(bytes: &'a [u8], expected: usize) -> Result<Self> {
        if bytes.len() != expected {
            return Err(Error::Data(format!(
                "a reference file for these sizes has {expected} bytes, this one has {} ({})",
                bytes.len(),
                if bytes.len() < expected {
                    "too short"
                } else {
                    "too long"
                }
            )));
        }
        Ok(Reader {
            bytes,
            pos: 0,
            expected,
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.saturating_add(n);
        if end > self.bytes.len() {
            return Err(Error::Data(format!(
                "reference file ends at byte {} of {}",
                self.bytes.len(),
                self.expected
            )));
        }
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// A 4-byte signed integer.
    pub fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A 4-byte integer that must equal `want` (a size in the header).
    pub fn expect_i32(&mut self, what: &str, want: usize) -> Result<()> {
        let got = self.i32()?;
        if got < 0 || got as usize != want {
            return Err(Error::Data(format!(
                "the file was written with {what} = {got}, expected {want}"
            )));
        }
        Ok(())
    }

    /// One f32.
    pub fn f32(&mut self) -> Result<f32> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// `n` f32 values.
    pub fn f32s(&mut self, n: usize) -> Result<Vec<f32>> {
        let b = self.take(n.saturating_mul(4))?;
        Ok(b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    /// A 1-byte bool.
    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.take(1)?[0] != 0)
    }
}

/// Builds an f32 model of `entry` from an imported reference model: its params, then every
/// imported tensor in place. Every parameter of the cell must be covered (the wrapper's
/// head stays the identity); sizes must match exactly.
pub fn build(
    entry: &crate::Entry,
    imported: &Imported,
    dims: &RefDims,
) -> Result<Box<dyn crate::DynModel<f32>>> {
    dims.validate()?;
    let io = crate::IoSpec::regression(dims.input, dims.output);
    let mut model = entry.create::<f32>(Some(&imported.params), &io, 0)?;
    let mut params = model.params().clone();
    let mut state = model.state().clone();
    let mut covered = std::collections::HashSet::new();
    for (name, values) in &imported.tensors {
        let (set, short) = match name.split_once('.') {
            Some(("param", n)) => (&mut params, n),
            Some(("state", n)) => (&mut state, n),
            _ => {
                return Err(Error::Data(format!(
                    "imported tensor '{name}' is neither param.* nor state.*"
                )));
            }
        };
        let i = set
            .layout()
            .index_of(short)
            .ok_or_else(|| Error::Data(format!("'{}' has no tensor '{name}'", entry.name)))?;
        let dst = set.slice_mut(i);
        if dst.len() != values.len() {
            return Err(Error::Data(format!(
                "'{name}' has {} values, the model needs {}",
                values.len(),
                dst.len()
            )));
        }
        if let Some(k) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "'{name}' holds {} at index {k}: a model with non-finite weights or memory \
                 cannot run, so it is not imported",
                values[k]
            )));
        }
        dst.copy_from_slice(values);
        covered.insert(name.clone());
    }
    for e in params.layout().entries() {
        if !e.name.starts_with("head.")
            && !e.name.starts_with("embed.")
            && !covered.contains(&format!("param.{}", e.name))
        {
            return Err(Error::Data(format!(
                "the import does not set parameter '{}'",
                e.name
            )));
        }
    }
    model.set_params(&params)?;
    model.set_state(&state)?;
    Ok(model)
}

/// Transposes a row-major `rows × cols` matrix.
pub fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = v[r * cols + c];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_files_name_both_counts() {
        let e = Reader::new(&[0; 10], 12).err().unwrap().to_string();
        assert!(
            e.contains("has 12 bytes, this one has 10 (too short)"),
            "{e}"
        );
        let e = Reader::new(&[0; 14], 12).err().unwrap().to_string();
        assert!(e.contains("too long"), "{e}");
        let mut r = Reader::new(&[2, 0, 0, 0, 0, 0, 128, 63, 1], 9).unwrap();
        assert!(r.expect_i32("I", 3).is_err());
        assert_eq!(r.f32().unwrap(), 1.0);
        assert!(r.bool().unwrap());
        assert!(r.f32s(usize::MAX / 2).is_err());
        assert_eq!(file_bytes(28, &[&[4, 16], &[3, 16]]).unwrap(), 28 + 4 * 112);
        assert!(file_bytes(28, &[&[usize::MAX, 1]]).is_err());
        assert!(file_bytes(usize::MAX - 3, &[&[1]]).is_err());
        assert_eq!(
            transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3),
            vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
    }

    #[test]
    fn compat_reads_and_writes_as_a_string() {
        #[derive(Serialize, Deserialize)]
        struct P {
            compat: Compat,
        }
        let p: P = ron::from_str("(compat: \"reference\")").unwrap();
        assert_eq!(p.compat, Compat::Reference);
        assert_eq!(
            ron::to_string(&P {
                compat: Compat::Design
            })
            .unwrap(),
            "(compat:\"design\")"
        );
        assert!(ron::from_str::<P>("(compat: \"x\")").is_err());
    }
}
