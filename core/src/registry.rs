//! The registry: every architecture linked into the program registers an [`Entry`] with
//! [`register!`](crate::register), and models are created by name or loaded from files.

use crate::cell::{Cell, Dims};
use crate::data::IoSpec;
use crate::model::{DynModel, Model, ModelMeta, Wrapper};
use crate::{Error, Result, Scalar, Tensors, persist};
use ndarray::{Array2, ArrayView2};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::any::Any;
use std::fmt::Debug;
use std::path::Path;

/// Where an entry stands in the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Family {
    /// A memory-native network of the founding family (AMRC, PMRC, AMN, MNEMOSYNE).
    Member,
    /// A close relative built on the same ideas (DTPN, Hyper-AMN, SGW-AMN, NDM).
    Cousin,
    /// A classic architecture kept for comparison.
    Baseline,
    /// A deliberately simple or broken model that calibrates comparisons and tests.
    Control,
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::Member => "member",
            Family::Cousin => "cousin",
            Family::Baseline => "baseline",
            Family::Control => "control",
        })
    }
}

/// Things an entry can do beyond the contract's minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Capability {
    /// Trained by backpropagation through time (it has a backward pass).
    Trainable,
    /// Its chunked form equals the step loop up to floating-point reassociation.
    ExactChunked,
}

/// The valid values of one hyper-parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RangeKind {
    /// An integer in `[min, max]`; the conformance suite draws from `[draw_min, draw_max]`,
    /// small sizes that keep its cases fast (and, where the smallest valid sizes make a model
    /// too ill-conditioned for finite differences, above them).
    Int {
        /// Smallest valid value.
        min: u64,
        /// Largest valid value.
        max: u64,
        /// Smallest value the conformance suite draws.
        draw_min: u64,
        /// Largest value the conformance suite draws.
        draw_max: u64,
    },
    /// A finite float in `[min, max]`.
    Float {
        /// Smallest valid value.
        min: f64,
        /// Largest valid value.
        max: f64,
    },
    /// One of these strings.
    Choice(&'static [&'static str]),
    /// `true` or `false`.
    Bool,
}

/// One hyper-parameter of an entry and its valid values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamRange {
    /// Field name in the params RON.
    pub name: &'static str,
    /// Valid values.
    pub kind: RangeKind,
}

impl ParamRange {
    /// An integer in `[min, max]` the conformance suite draws from `[min, small]`.
    pub const fn int(name: &'static str, min: u64, max: u64, small: u64) -> Self {
        Self::int_drawn(name, min, max, min, small)
    }

    /// An integer in `[min, max]` the conformance suite draws from `[draw_min, draw_max]`.
    pub const fn int_drawn(
        name: &'static str,
        min: u64,
        max: u64,
        draw_min: u64,
        draw_max: u64,
    ) -> Self {
        ParamRange {
            name,
            kind: RangeKind::Int {
                min,
                max,
                draw_min,
                draw_max,
            },
        }
    }

    /// A finite float in `[min, max]`.
    pub const fn float(name: &'static str, min: f64, max: f64) -> Self {
        ParamRange {
            name,
            kind: RangeKind::Float { min, max },
        }
    }

    /// One of `choices`.
    pub const fn choice(name: &'static str, choices: &'static [&'static str]) -> Self {
        ParamRange {
            name,
            kind: RangeKind::Choice(choices),
        }
    }

    /// `true` or `false`.
    pub const fn flag(name: &'static str) -> Self {
        ParamRange {
            name,
            kind: RangeKind::Bool,
        }
    }

    /// Values of the field's type that the entry must refuse, as RON text.
    pub fn invalid_values(&self) -> Vec<String> {
        match self.kind {
            RangeKind::Int { min, max, .. } => {
                let mut v = Vec::new();
                if min > 0 {
                    v.push((min - 1).to_string());
                }
                if max < u64::MAX {
                    v.push((max + 1).to_string());
                }
                v
            }
            RangeKind::Float { min, max } => {
                let span = (max - min).abs().max(1.0);
                vec![
                    format!("{:?}", min - 0.5 * span),
                    format!("{:?}", max + 0.5 * span),
                    "NaN".into(),
                ]
            }
            RangeKind::Choice(_) => vec!["\"no-such-choice\"".into()],
            RangeKind::Bool => vec![],
        }
    }
}

/// Refuses `value` outside `[min, max]` (NaN included) with an [`Error::InvalidParam`] that
/// names the field and says `must be in [min, max]`: the range checks of
/// [`Architecture::validate`].
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    name: &str,
    value: T,
    min: T,
    max: T,
) -> Result<()> {
    if min <= value && value <= max {
        Ok(())
    } else {
        let expected = format!("must be in [{min}, {max}]");
        Err(Error::invalid_param(name, value, expected))
    }
}

/// What a plugin implements to become an entry: its metadata, its hyper-parameters and how
/// to build its cell. [`register!`](crate::register) turns it into a registry [`Entry`].
pub trait Architecture: 'static {
    /// Registry name (lower-case, unique).
    const NAME: &'static str;
    /// Family membership.
    const FAMILY: Family;
    /// One line saying what it is.
    const SUMMARY: &'static str;
    /// Where it comes from.
    const CITATION: &'static str;
    /// The state size as a formula of the hyper-parameters, e.g. `"2·hidden"`.
    const STATE_FORMULA: &'static str;
    /// What it can do.
    const CAPABILITIES: &'static [Capability];
    /// Names of the diagnostics it reports.
    const DIAGNOSTICS: &'static [&'static str];
    /// Every hyper-parameter with its valid range and the small sizes the conformance suite
    /// draws from; the suite also derives invalid values from it.
    const PARAM_RANGES: &'static [ParamRange];
    /// Largest relative distance (f64) the chunked form may have from the step loop: `1e-10`
    /// for an exact reformulation; a chunked form that computes a different function by
    /// design declares what it guarantees against its own step loop.
    const CHUNKED_TOLERANCE: f64 = 1e-10;

    /// Hyper-parameters; deserialised from RON with unknown fields refused and missing ones
    /// defaulted (`#[serde(deny_unknown_fields, default)]`).
    type Params: Serialize + DeserializeOwned + Default + Clone + Debug + PartialEq;
    /// The cell, for each scalar type.
    type Cell<S: Scalar>: Cell<S>;

    /// Refuses out-of-range hyper-parameters with [`Error::InvalidParam`].
    fn validate(params: &Self::Params) -> Result<()>;

    /// Builds the cell for these (validated) hyper-parameters and widths.
    fn build<S: Scalar>(params: &Self::Params, dims: Dims) -> Self::Cell<S>;

    /// The declared state size, from the formula (the conformance suite compares it with
    /// what the cell actually holds).
    fn state_size(params: &Self::Params, dims: Dims) -> usize;

    /// Reads a model file of the reference implementation, if the entry has a reference
    /// counterpart (`None`: it has not).
    const IMPORT_REFERENCE: Option<ImportFn> = None;

    /// The entry's equations as a naive f64 token loop, written straight from them and
    /// sharing no code with the cell (as flash-linear-attention keeps a `naive` beside each
    /// kernel): from the cell's parameter tensors in `weights` (read by name; the wrapper's
    /// `head.*` and `embed.*` are there too and are not the cell's business), one sequence's
    /// start `state` (the layout [`Cell::state_layout`](crate::Cell::state_layout) batched by
    /// one) and a `T × input` input, the `T × output` rows the cell writes. The conformance
    /// suite's `reference` property checks the step, windowed, chunked and batched forms
    /// against it within 1e-10. `None` (the default): the entry has none, and the property
    /// says so.
    fn naive(
        _params: &Self::Params,
        _dims: Dims,
        _weights: &Tensors<f64>,
        _state: &Tensors<f64>,
        _xs: ArrayView2<f64>,
    ) -> Option<Array2<f64>> {
        None
    }
}

/// An entry's [`Architecture::naive`] behind canonical RON params: `Ok(None)` when the entry
/// has no naive loop.
pub type NaiveFn =
    fn(&str, Dims, &Tensors<f64>, &Tensors<f64>, ArrayView2<f64>) -> Result<Option<Array2<f64>>>;

/// Reads a reference file's bytes for the given sizes into an entry's terms.
pub type ImportFn = fn(&[u8], &crate::reference::RefDims) -> Result<crate::reference::Imported>;

/// A function that builds a boxed model from canonical RON params, widths and a seed.
pub type BuildFn<S> = fn(&str, &IoSpec, u64, &Wrapper) -> Result<Box<dyn DynModel<S>>>;

/// A registered architecture.
pub struct Entry {
    /// Registry name.
    pub name: &'static str,
    /// Family membership.
    pub family: Family,
    /// One-line summary.
    pub summary: &'static str,
    /// Citation.
    pub citation: &'static str,
    /// State size formula, as text.
    pub state_formula: &'static str,
    /// Capabilities.
    pub capabilities: &'static [Capability],
    /// Diagnostic names.
    pub diagnostics: &'static [&'static str],
    /// Hyper-parameter ranges.
    pub param_ranges: &'static [ParamRange],
    /// Chunked-vs-step tolerance (relative, f64).
    pub chunked_tolerance: f64,
    /// Reader of the reference implementation's files, if there is a counterpart.
    pub import_reference: Option<ImportFn>,
    /// Default hyper-parameters as RON.
    pub default_params: fn() -> String,
    /// Parses and validates RON hyper-parameters, returning them in canonical RON. Errors
    /// carry `line:column` relative to the text given.
    pub parse_params: fn(&str) -> Result<String>,
    /// The declared state size for canonical params and widths.
    pub state_size: fn(&str, Dims) -> Result<usize>,
    /// Trainable scalars of the cell itself for params and widths (the model wrapper adds
    /// its head, and an embedding for token inputs).
    pub param_count: fn(&str, Dims) -> Result<usize>,
    /// The entry's naive f64 token loop ([`Architecture::naive`]).
    pub naive: NaiveFn,
    build_f32: BuildFn<f32>,
    build_f64: BuildFn<f64>,
}

impl Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The RON options every config and param text is read with: `Some(..)` may be left out.
pub fn ron_options() -> ron::Options {
    ron::Options::default()
        .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
        .with_recursion_limit(RON_DEPTH)
}

/// A RON error's text for a user, who cannot change the parser's options: a recursion-limit
/// error says how deep the text may nest instead of naming `ron::Options`.
pub fn ron_message(code: &ron::Error) -> String {
    match code {
        ron::Error::ExceededRecursionLimit => {
            format!("the text nests too deeply (at most {RON_DEPTH} levels of brackets)")
        }
        other => other.to_string(),
    }
}

/// How deep RON text may nest before it is refused (RON's own default).
const RON_DEPTH: usize = 128;

fn parse_typed<A: Architecture>(text: &str) -> Result<A::Params> {
    let p: A::Params = ron_options().from_str(text).map_err(|e| Error::Config {
        location: format!("{}:{}", e.span.start.line, e.span.start.col),
        message: format!("in the params of '{}': {}", A::NAME, ron_message(&e.code)),
    })?;
    A::validate(&p)?;
    Ok(p)
}

fn canonical<T: Serialize>(p: &T) -> String {
    ron::to_string(p).expect("params serialise")
}

fn default_params<A: Architecture>() -> String {
    canonical(&A::Params::default())
}

fn parse_params<A: Architecture>(text: &str) -> Result<String> {
    parse_typed::<A>(text).map(|p| canonical(&p))
}

fn state_size<A: Architecture>(text: &str, dims: Dims) -> Result<usize> {
    Ok(A::state_size(&parse_typed::<A>(text)?, dims))
}

fn param_count<A: Architecture>(text: &str, dims: Dims) -> Result<usize> {
    let p = parse_typed::<A>(text)?;
    Ok(A::build::<f32>(&p, dims).param_layout().total())
}

fn naive<A: Architecture>(
    text: &str,
    dims: Dims,
    weights: &Tensors<f64>,
    state: &Tensors<f64>,
    xs: ArrayView2<f64>,
) -> Result<Option<Array2<f64>>> {
    Ok(A::naive(&parse_typed::<A>(text)?, dims, weights, state, xs))
}

fn build<A: Architecture, S: Scalar>(
    text: &str,
    io: &IoSpec,
    seed: u64,
    wrapper: &Wrapper,
) -> Result<Box<dyn DynModel<S>>> {
    let p = parse_typed::<A>(text)?;
    io.validate()?;
    let dims = Dims {
        input: io.cell_input(),
        output: io.cell_output(),
    };
    let cell = A::build::<S>(&p, dims);
    let meta = ModelMeta {
        entry: A::NAME.to_string(),
        params: canonical(&p),
        io: io.clone(),
        seed,
        skip: wrapper.skip,
        difference: wrapper.difference.clone(),
        horizon: wrapper.horizon,
    };
    Ok(Box::new(Model::new(meta, cell)?))
}

impl Entry {
    /// The entry of architecture `A` (what [`register!`](crate::register) stores).
    pub const fn of<A: Architecture>() -> Entry {
        Entry {
            name: A::NAME,
            family: A::FAMILY,
            summary: A::SUMMARY,
            citation: A::CITATION,
            state_formula: A::STATE_FORMULA,
            capabilities: A::CAPABILITIES,
            diagnostics: A::DIAGNOSTICS,
            param_ranges: A::PARAM_RANGES,
            chunked_tolerance: A::CHUNKED_TOLERANCE,
            import_reference: A::IMPORT_REFERENCE,
            default_params: default_params::<A>,
            parse_params: parse_params::<A>,
            state_size: state_size::<A>,
            param_count: param_count::<A>,
            naive: naive::<A>,
            build_f32: build::<A, f32>,
            build_f64: build::<A, f64>,
        }
    }

    /// Builds a model with these RON params (`None`: the defaults) for `io`, seeded.
    pub fn create<S: Scalar>(
        &self,
        params: Option<&str>,
        io: &IoSpec,
        seed: u64,
    ) -> Result<Box<dyn DynModel<S>>> {
        self.create_with(params, io, seed, &Wrapper::default())
    }

    /// [`Entry::create`] with the wrapper's options (a skip, outputs learned as changes).
    pub fn create_with<S: Scalar>(
        &self,
        params: Option<&str>,
        io: &IoSpec,
        seed: u64,
        wrapper: &Wrapper,
    ) -> Result<Box<dyn DynModel<S>>> {
        let text = match params {
            Some(t) => (self.parse_params)(t)?,
            None => (self.default_params)(),
        };
        let f32_fn: &dyn Any = &self.build_f32;
        let f64_fn: &dyn Any = &self.build_f64;
        let f = f32_fn
            .downcast_ref::<BuildFn<S>>()
            .or_else(|| f64_fn.downcast_ref::<BuildFn<S>>())
            .expect("Scalar is sealed to f32 and f64");
        f(&text, io, seed, wrapper)
    }

    /// Whether the entry has `cap`.
    pub fn has(&self, cap: Capability) -> bool {
        self.capabilities.contains(&cap)
    }
}

/// Every entry linked into this program registers itself here.
#[linkme::distributed_slice]
pub static ENTRIES: [Entry];

/// Registers an [`Architecture`] so it can be found by name.
///
/// ```ignore
/// mnnn_core::register!(MyArch);
/// ```
#[macro_export]
macro_rules! register {
    ($arch:ty) => {
        const _: () = {
            #[$crate::__private::linkme::distributed_slice($crate::registry::ENTRIES)]
            #[linkme(crate = $crate::__private::linkme)]
            static ENTRY: $crate::registry::Entry = $crate::registry::Entry::of::<$arch>();
        };
    };
}

/// Every registered entry, sorted by name.
pub fn entries() -> Vec<&'static Entry> {
    let mut v: Vec<&Entry> = ENTRIES.iter().collect();
    v.sort_by_key(|e| e.name);
    v
}

/// Edit distance (insertions, deletions, substitutions, adjacent swaps).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, v) in d[0].iter_mut().enumerate() {
        *v = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// Known names close to `name`, nearest first.
pub fn suggestions(name: &str, known: &[&str]) -> Vec<String> {
    let lower = name.to_lowercase();
    let mut scored: Vec<(usize, &str)> = known
        .iter()
        .map(|k| (edit_distance(&lower, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3) || k.contains(&lower) || lower.contains(k))
        .collect();
    scored.sort();
    scored.into_iter().map(|(_, k)| k.to_string()).collect()
}

/// The entry called `name` (case-insensitive), or an error listing the known names with the
/// nearest first.
pub fn find(name: &str) -> Result<&'static Entry> {
    let all = entries();
    if let Some(e) = all.iter().find(|e| e.name.eq_ignore_ascii_case(name)) {
        return Ok(e);
    }
    let known: Vec<&str> = all.iter().map(|e| e.name).collect();
    Err(Error::UnknownModel {
        name: name.to_string(),
        suggestions: suggestions(name, &known),
        known: known.iter().map(|s| s.to_string()).collect(),
    })
}

/// Creates a model by entry or preset name: `params` is RON (`None` for the defaults, or
/// the preset's params; a preset refuses params of its own).
pub fn create<S: Scalar>(
    name: &str,
    params: Option<&str>,
    io: &IoSpec,
    seed: u64,
) -> Result<Box<dyn DynModel<S>>> {
    create_with(name, params, io, seed, &Wrapper::default())
}

/// [`create`] with the wrapper's options (a skip, outputs learned as changes).
pub fn create_with<S: Scalar>(
    name: &str,
    params: Option<&str>,
    io: &IoSpec,
    seed: u64,
    wrapper: &Wrapper,
) -> Result<Box<dyn DynModel<S>>> {
    let r = crate::preset::resolve(name)?;
    match (params, r.params.as_deref()) {
        (Some(_), Some(_)) => Err(Error::invalid_param(
            "params",
            name,
            format!(
                "'{name}' is a preset of '{}' with its own params; create '{}' to give params of your own",
                r.entry.name, r.entry.name
            ),
        )),
        (given, preset) => r.entry.create_with(given.or(preset), io, seed, wrapper),
    }
}

/// Loads a model file written by [`DynModel::save`].
pub fn load<S: Scalar>(path: &Path) -> Result<Box<dyn DynModel<S>>> {
    load_bytes(&persist::read_file(path)?, path)
}

/// Loads a model from model-file bytes; `path` only names the source in errors.
pub fn load_bytes<S: Scalar>(bytes: &[u8], path: &Path) -> Result<Box<dyn DynModel<S>>> {
    let loaded = persist::from_bytes::<S>(bytes, path)?;
    let m = &loaded.meta.model;
    let entry = find(&m.entry).map_err(|e| Error::ModelFile {
        path: path.to_path_buf(),
        message: format!("was written by an entry this program does not have: {e}"),
    })?;
    // The file holds every parameter and state value, so a model needing more memory than
    // the file's length is a corrupted size, refused before anything that large is allocated.
    let mut model = crate::budget::with_limit(bytes.len() as u64, || {
        let wrapper = Wrapper {
            skip: m.skip,
            difference: m.difference.clone(),
            horizon: m.horizon,
        };
        entry.create_with::<S>(Some(&m.params), &m.io, m.seed, &wrapper)
    })
    .map_err(|e| Error::ModelFile {
        path: path.to_path_buf(),
        message: match e {
            Error::TooLarge { bytes: need, .. } => format!(
                "its configuration needs {} for parameters and state but the file has only {}; \
                 it is corrupted",
                crate::budget::human(need),
                crate::budget::human(bytes.len() as u128)
            ),
            e => format!("its configuration is not valid here: {e}"),
        },
    })?;
    loaded.fill(model.as_mut(), path)?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_put_the_nearest_first() {
        let known = ["amn", "amrc", "pmrc", "mnemosyne"];
        assert_eq!(suggestions("amcr", &known)[0], "amrc");
        assert_eq!(suggestions("mnemosine", &known)[0], "mnemosyne");
        assert!(suggestions("zzzzzzzz", &known).is_empty());
    }

    #[test]
    fn check_range_names_the_field_and_the_range() {
        assert!(check_range("hidden", 1usize, 1, 1 << 24).is_ok());
        let e = check_range("hidden", 0usize, 1, 1 << 24).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid parameter 'hidden' = 0: must be in [1, 16777216]"
        );
        let e = check_range("dt", f64::NAN, 1e-3, 1.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid parameter 'dt' = NaN: must be in [0.001, 1]"
        );
        assert!(check_range("mix", 1.0, 0.0, 1.0).is_ok());
    }
}
