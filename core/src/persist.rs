//! Model files: one safetensors file holding `param.*`, `state.*` and `norm.*` tensors and a
//! single metadata key, `mnnn`, whose value is a RON blob (format version, element type,
//! entry name, hyper-parameters, input/output kinds, seed).
//!
//! Identical models give identical bytes; a round trip is bit-exact; writes go to a temporary
//! file in the same directory and are renamed into place, so a failed write leaves no partial
//! file behind.

use crate::model::{DynModel, ModelMeta};
use crate::{Error, Layout, Result, Scalar, Tensors};
use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// The version of the file layout this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The metadata key.
pub const META_KEY: &str = "mnnn";

/// The metadata blob.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// `"f32"` or `"f64"`.
    pub dtype: String,
    /// The model's identity.
    pub model: ModelMeta,
}

fn dtype_of<S: Scalar>() -> Dtype {
    if S::BYTES == 4 {
        Dtype::F32
    } else {
        Dtype::F64
    }
}

/// Serialises a model's tensors and metadata into model-file bytes.
pub fn to_bytes<S: Scalar>(
    meta: &ModelMeta,
    params: &Tensors<S>,
    state: &Tensors<S>,
    norm: &Tensors<S>,
) -> Result<Vec<u8>> {
    let mut named: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (prefix, set) in [("param.", params), ("state.", state), ("norm.", norm)] {
        for (i, e) in set.layout().entries().iter().enumerate() {
            if e.is_empty() {
                continue; // safetensors refuses empty tensors; their absence means empty
            }
            let mut bytes = Vec::new();
            S::extend_le_bytes(set.slice(i), &mut bytes);
            named.push((format!("{prefix}{}", e.name), e.shape.clone(), bytes));
        }
    }
    let views: Vec<(String, TensorView<'_>)> = named
        .iter()
        .map(|(n, shape, bytes)| {
            let v = TensorView::new(dtype_of::<S>(), shape.clone(), bytes)
                .expect("shape and byte count agree by construction");
            (n.clone(), v)
        })
        .collect();
    let file_meta = FileMeta {
        format: FORMAT_VERSION,
        dtype: S::NAME.to_string(),
        model: meta.clone(),
    };
    let blob = ron::to_string(&file_meta)
        .map_err(|e| Error::Data(format!("cannot encode metadata: {e}")))?;
    let info = HashMap::from([(META_KEY.to_string(), blob)]);
    safetensors::tensor::serialize(views, Some(info))
        .map_err(|e| Error::Data(format!("cannot encode model file: {e}")))
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path"),
        )
    })?;
    let name = name.to_string_lossy();
    let ends_in_separator = path
        .as_os_str()
        .to_string_lossy()
        .ends_with(std::path::is_separator);
    if ends_in_separator || path.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "names a folder; give the name of a file to write",
            ),
        ));
    }
    if !dir.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("the folder {} does not exist", dir.display()),
            ),
        ));
    }
    crate::tempfiles::remove_stale(&dir, &name);
    let result = (|| {
        let mut tmp = crate::tempfiles::TempFile::create(&dir, &name)?;
        tmp.file.write_all(bytes)?;
        tmp.file.sync_all()?;
        tmp.pause_if_asked();
        std::fs::rename(&tmp.path, path)?;
        // Make the rename itself durable where the platform allows syncing a directory.
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| Error::io(path, e))?;
    Ok(())
}

/// A model file read back: metadata and tensors by full name.
pub struct Loaded<S> {
    /// The metadata blob.
    pub meta: FileMeta,
    tensors: HashMap<String, (Vec<usize>, Vec<S>)>,
}

/// Parses model-file bytes; `path` only names the file in errors.
pub fn from_bytes<S: Scalar>(bytes: &[u8], path: &Path) -> Result<Loaded<S>> {
    let bad = |message: String| Error::ModelFile {
        path: path.to_path_buf(),
        message,
    };
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
        bad(format!(
            "not a readable safetensors file ({e}); it may be truncated or corrupted"
        ))
    })?;
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("unreadable header ({e})")))?;
    let blob = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .ok_or_else(|| bad(format!("no '{META_KEY}' metadata: not an mnnn model file")))?;
    let meta: FileMeta =
        ron::from_str(blob).map_err(|e| bad(format!("unreadable metadata ({e})")))?;
    if meta.format != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {} is not supported (this build reads version {FORMAT_VERSION})",
            meta.format
        )));
    }
    if meta.dtype != S::NAME {
        return Err(bad(format!(
            "holds {} weights; load it as {}",
            meta.dtype, meta.dtype
        )));
    }
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != dtype_of::<S>() {
            return Err(bad(format!(
                "tensor '{name}' is {:?}, expected {}",
                view.dtype(),
                S::NAME
            )));
        }
        tensors.insert(name, (view.shape().to_vec(), S::from_le_bytes(view.data())));
    }
    Ok(Loaded { meta, tensors })
}

impl<S: Scalar> Loaded<S> {
    /// Builds the tensor set of `layout` from the tensors named `prefix + name`, checking
    /// every name and shape, and refusing tensors the layout does not have. Stored shapes
    /// other than `layout`'s are kept only when `accept` takes the layout they make (a state
    /// that grows with the stream; see [`Cell::accepts_grown_state`](crate::Cell)).
    fn take(
        &mut self,
        prefix: &str,
        layout: &Layout,
        path: &Path,
        accept: &dyn Fn(&Layout) -> bool,
    ) -> Result<Tensors<S>> {
        let mut data = Vec::with_capacity(layout.total());
        let mut stored = Layout::new();
        let mut mismatch = None;
        for e in layout.entries() {
            let key = format!("{prefix}{}", e.name);
            match self.tensors.remove(&key) {
                Some((shape, values)) => {
                    if shape != e.shape && mismatch.is_none() {
                        mismatch = Some(format!(
                            "tensor '{key}' has shape {shape:?}, the model needs {:?}",
                            e.shape
                        ));
                    }
                    stored.push(e.name.clone(), &shape);
                    data.extend(values);
                }
                None if e.is_empty() => {
                    stored.push(e.name.clone(), &e.shape);
                }
                None => {
                    return Err(Error::ModelFile {
                        path: path.to_path_buf(),
                        message: format!("tensor '{key}' is missing"),
                    });
                }
            }
        }
        if let Some(message) = mismatch
            && !accept(&stored)
        {
            return Err(Error::ModelFile {
                path: path.to_path_buf(),
                message,
            });
        }
        Tensors::from_vec(stored, data)
    }

    /// Copies parameters, state and normalisation into `model` (built from this file's
    /// metadata); any missing, extra or mis-shaped tensor is an error and `model` is then
    /// not to be used.
    pub fn fill(mut self, model: &mut dyn DynModel<S>, path: &Path) -> Result<()> {
        let fixed = |_: &Layout| false;
        let params = self.take("param.", &model.params().layout().clone(), path, &fixed)?;
        let state_layout = model.state().layout().clone();
        let state = self.take("state.", &state_layout, path, &|l| model.accepts_state(l))?;
        let norm = self.take("norm.", &model.normalizer().layout().clone(), path, &fixed)?;
        if let Some(extra) = self.tensors.keys().min() {
            return Err(Error::ModelFile {
                path: path.to_path_buf(),
                message: format!(
                    "unexpected tensor '{extra}' for model '{}'",
                    self.meta.model.entry
                ),
            });
        }
        let bad = |what: &str| Error::ModelFile {
            path: path.to_path_buf(),
            message: format!("{what} hold non-finite values"),
        };
        if !params.all_finite() {
            return Err(bad("the parameters"));
        }
        if !state.all_finite() {
            return Err(bad("the memory state tensors"));
        }
        if !norm.all_finite() {
            return Err(bad("the normalisation statistics"));
        }
        let layout = norm.layout().clone();
        for e in layout.entries().iter().filter(|e| e.name.ends_with("_std")) {
            if norm.data()[e.range()].iter().any(|v| *v <= S::zero()) {
                return Err(Error::ModelFile {
                    path: path.to_path_buf(),
                    message: format!("norm.{} must be positive", e.name),
                });
            }
        }
        model.set_params(&params)?;
        model.set_state(&state)?;
        model.set_normalizer(&norm)?;
        Ok(())
    }
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}
