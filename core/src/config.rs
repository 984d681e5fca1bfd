//! Run configs in RON: `(model: "amrc", params: (...), data: Csv(...), train: (...))`.
//!
//! Read in two passes: the outline first (so a misspelt model name gets our own error with
//! the nearest known names), then each section for its own type, with unknown fields refused;
//! every error carries `file:line:column` of the text it is about.

use crate::preset;
use crate::registry::{self, ron_options};
use crate::series::{self, Forecasting, Missing};
use crate::train::TrainConfig;
use crate::{Error, Result};
use ron::value::RawValue;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the training data comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum DataSpec {
    /// A CSV file with a header row. `path` is relative to the config file's directory.
    Csv {
        /// The file.
        path: PathBuf,
        /// Input column names.
        inputs: Vec<String>,
        /// Target column names.
        targets: Vec<String>,
        /// A column whose changes of value start a new sequence (one sequence if absent).
        #[serde(default)]
        sequence: Option<String>,
        /// Steps ahead: the target of row `t` is the target column at row `t + horizon`; the
        /// last `horizon` rows of each sequence have no target and are not scored (default 0).
        #[serde(default)]
        horizon: usize,
        /// Learn the change of each target from its current value (the input column of the
        /// same name), and predict and score in levels (default false).
        #[serde(default)]
        difference: bool,
        /// Missing values: `Error` (default), `Interpolate` or `Drop`.
        #[serde(default)]
        missing: Missing,
    },
}

impl DataSpec {
    /// How the file becomes a forecasting data set.
    pub fn forecasting(&self) -> Forecasting {
        let DataSpec::Csv {
            horizon, missing, ..
        } = self;
        Forecasting {
            horizon: *horizon,
            missing: *missing,
        }
    }
}

/// A parsed and validated run config.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    /// Registry name of the model.
    pub model: String,
    /// Its hyper-parameters, validated, as canonical RON.
    pub params: String,
    /// The data, if the config names any.
    pub data: Option<DataSpec>,
    /// Training settings (defaults where omitted).
    pub train: TrainConfig,
    /// A learned linear skip from the input to the head, beside the cell (default false).
    pub skip: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Outline<'a> {
    model: String,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(borrow, default)]
    train: Option<&'a RawValue>,
    #[serde(default)]
    skip: bool,
}

/// Maps positions inside a section back to the whole text.
struct Origin<'a> {
    name: String,
    text: &'a str,
}

impl Origin<'_> {
    fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
            + 1;
        (line, col)
    }

    fn at(&self, offset: usize) -> String {
        let (l, c) = self.line_col(offset);
        format!("{}:{l}:{c}", self.name)
    }

    /// Offset of `snippet` (a slice of the text) in the text.
    fn offset_of(&self, snippet: &str) -> usize {
        (snippet.as_ptr() as usize)
            .saturating_sub(self.text.as_ptr() as usize)
            .min(self.text.len())
    }

    /// A location inside `snippet` (1-based line and column relative to it) in the text.
    fn within(&self, snippet: &str, line: usize, col: usize) -> String {
        let (l0, c0) = self.line_col(self.offset_of(snippet));
        if line <= 1 {
            format!("{}:{l0}:{}", self.name, c0 + col.saturating_sub(1))
        } else {
            format!("{}:{}:{col}", self.name, l0 + line - 1)
        }
    }

    /// Where `field:` first appears in `snippet`, or the snippet's start.
    fn field(&self, snippet: &str, field: &str) -> String {
        let base = self.offset_of(snippet);
        self.at(base + find_field(snippet, field).unwrap_or(0))
    }

    fn ron(&self, e: ron::error::SpannedError, snippet: Option<&str>, context: &str) -> Error {
        let (line, col) = (e.span.start.line, e.span.start.col);
        let location = match snippet {
            Some(s) => self.within(s, line, col),
            None => format!("{}:{line}:{col}", self.name),
        };
        let text = snippet.unwrap_or(self.text);
        let hint = syntax_hint(text, offset_at(text, line, col));
        Error::Config {
            location,
            message: format!("{context}{}{hint}", registry::ron_message(&e.code)),
        }
    }
}

/// Byte offset of 1-based `line` and character column `col` in `text` (clamped to its end).
fn offset_at(text: &str, line: usize, col: usize) -> usize {
    let start = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum::<usize>()
        .min(text.len());
    text[start..]
        .char_indices()
        .nth(col.saturating_sub(1))
        .map_or(text.len(), |(i, _)| start + i)
}

/// What the parser's own words leave out, for the mistakes that reach it as bad syntax: a
/// quoted enum variant (`optimizer: "Adam"`) and a fraction where a whole number is expected
/// (`epochs: 5.0`). Empty when the text at `at` is neither.
fn syntax_hint(text: &str, at: usize) -> String {
    let (before, rest) = text.split_at(at.min(text.len()));
    let field = field_before(before);
    if let Some(quoted) = rest.strip_prefix('"') {
        let word = quoted.split('"').next().unwrap_or("");
        let example = match field {
            Some(f) => format!("{f}: {word}"),
            None => word.to_string(),
        };
        return format!(
            " (hint: a choice among named variants is written bare, without quotes: {example})"
        );
    }
    if rest.starts_with('.') && before.ends_with(|c: char| c.is_ascii_digit()) {
        let digits = before.len() - before.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let whole = &before[before.len() - digits..];
        let name = field_before(&before[..before.len() - digits]).unwrap_or("this field");
        return format!(
            " (hint: {name} is a whole number: write {whole}, without a fractional part)"
        );
    }
    String::new()
}

/// The identifier of the `name:` that `text` ends with (spaces allowed after the colon).
fn field_before(text: &str) -> Option<&str> {
    let b = text.trim_end().strip_suffix(':')?.trim_end();
    let start = b
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    Some(&b[start..]).filter(|f| !f.is_empty())
}

/// Byte offset of the identifier `field` followed by `:` in RON text, outside comments and
/// strings.
fn find_field(text: &str, field: &str) -> Option<usize> {
    let b = text.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            c if ident(c) => {
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                if &text[start..i] == field && text[i..].trim_start().starts_with(':') {
                    return Some(start);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Parses a run config from text. `name` is how errors refer to the text (a file name).
/// `model:` may name an entry or a preset; a preset brings its params and its training
/// settings (a `train:` section given here replaces the latter).
pub fn parse(text: &str, name: &str) -> Result<RunConfig> {
    parse_with(text, name, true)
}

/// [`parse`] for a preset's own text: its `model:` must be an entry.
pub(crate) fn parse_entry_only(text: &str, name: &str) -> Result<RunConfig> {
    parse_with(text, name, false)
}

fn parse_with(text: &str, name: &str, presets: bool) -> Result<RunConfig> {
    let origin = Origin {
        name: name.to_string(),
        text,
    };
    let outline: Outline = ron_options()
        .from_str(text)
        .map_err(|e| origin.ron(e, None, ""))?;
    let resolved = if presets {
        preset::resolve(&outline.model)
    } else {
        registry::find(&outline.model).map(|entry| preset::Resolved {
            name: entry.name,
            entry,
            preset: None,
            params: None,
            train: None,
        })
    }
    .map_err(|e| Error::Config {
        location: origin.field(text, "model"),
        message: e.to_string(),
    })?;
    let entry = resolved.entry;
    let params = match (outline.params, resolved.params) {
        (None, None) => (entry.default_params)(),
        (None, Some(preset)) => preset,
        (Some(_), Some(_)) => {
            return Err(Error::Config {
                location: origin.field(text, "params"),
                message: format!(
                    "'{}' is a preset of '{}' and brings its own params; name the entry ('model: \"{}\"') to give params of your own",
                    resolved.name, entry.name, entry.name
                ),
            });
        }
        (Some(raw), None) => {
            let snippet = raw.get_ron();
            (entry.parse_params)(snippet).map_err(|e| match e {
                Error::Config { location, message } => {
                    let mut it = location.split(':').map(|v| v.parse::<usize>().unwrap_or(1));
                    let (l, c) = (it.next().unwrap_or(1), it.next().unwrap_or(1));
                    Error::Config {
                        location: origin.within(snippet, l, c),
                        message,
                    }
                }
                Error::InvalidParam { ref name, .. } => Error::Config {
                    location: origin.field(snippet, name),
                    message: e.to_string(),
                },
                other => other,
            })?
        }
    };
    let data = outline
        .data
        .map(|raw| {
            ron_options()
                .from_str::<DataSpec>(raw.get_ron())
                .map_err(|e| origin.ron(e, Some(raw.get_ron()), "in data: "))
                .and_then(|d| check_data(&d, raw.get_ron(), &origin).map(|()| d))
        })
        .transpose()?;
    let train = match outline.train {
        None => resolved.train.unwrap_or_default(),
        Some(raw) => {
            let snippet = raw.get_ron();
            let t: TrainConfig = ron_options()
                .from_str(snippet)
                .map_err(|e| origin.ron(e, Some(snippet), "in train: "))?;
            t.validate().map_err(|e| match e {
                Error::InvalidParam { ref name, .. } => Error::Config {
                    location: origin.field(snippet, name),
                    message: e.to_string(),
                },
                other => other,
            })?;
            t
        }
    };
    Ok(RunConfig {
        model: entry.name.to_string(),
        params,
        data,
        train,
        skip: outline.skip,
    })
}

/// Refuses a data section that names no input or target column, one column twice among
/// the inputs or among the targets, a copy task (a target that is an input at horizon 0), or
/// `difference` on a target that is not an input.
fn check_data(d: &DataSpec, snippet: &str, origin: &Origin<'_>) -> Result<()> {
    let DataSpec::Csv {
        inputs,
        targets,
        horizon,
        difference,
        ..
    } = d;
    let refuse = |field: &str, message: String| Error::Config {
        location: origin.field(snippet, field),
        message: format!("in data: {message}"),
    };
    for (field, cols) in [("inputs", inputs), ("targets", targets)] {
        if cols.is_empty() {
            return Err(refuse(
                field,
                format!("'{field}' names no column; name at least one"),
            ));
        }
    }
    for (field, cols) in [("inputs", inputs), ("targets", targets)] {
        if let Some(c) = series::repeated(cols) {
            return Err(refuse(field, format!("column '{c}' is named twice")));
        }
    }
    if let Some(message) = series::copy_task(inputs, targets, *horizon) {
        return Err(refuse("targets", message));
    }
    if *difference && let Some(t) = targets.iter().find(|t| !inputs.contains(t)) {
        return Err(refuse(
            "difference",
            format!(
                "difference: true learns each target's change from its current value, read \
                 from the input column of the same name; add '{t}' to the inputs"
            ),
        ));
    }
    Ok(())
}

/// Reads and parses a run config file; a CSV path in it is made relative to the file's
/// directory.
pub fn load(path: &Path) -> Result<RunConfig> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let ok = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let good = String::from_utf8_lossy(ok);
        let line = good.matches('\n').count() + 1;
        let col = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Error::Config {
            location: format!("{}:{line}:{col}", path.display()),
            message: "the file is not UTF-8 text".into(),
        }
    })?;
    let mut cfg = parse(&text, &path.display().to_string())?;
    if let Some(DataSpec::Csv { path: csv, .. }) = cfg.data.as_mut()
        && csv.is_relative()
        && let Some(dir) = path.parent()
    {
        *csv = dir.join(&*csv);
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::{Origin, TrainConfig, find_field, ron_options};

    /// The error a train section reads as, located in a file called `run.ron`.
    fn error_of(train: &str) -> String {
        let text = format!("({train})");
        let e = ron_options().from_str::<TrainConfig>(&text).unwrap_err();
        let origin = Origin {
            name: "run.ron".into(),
            text: &text,
        };
        origin.ron(e, None, "in train: ").to_string()
    }

    #[test]
    fn syntax_mistakes_in_values_come_with_the_fix() {
        let e = error_of("optimizer: \"Adam\"");
        assert!(e.contains("without quotes: optimizer: Adam"), "{e}");
        assert!(e.contains("run.ron:1:"), "{e}");
        let e = error_of("patience: 3, epochs: 5.0");
        assert!(e.contains("epochs is a whole number: write 5"), "{e}");
        let e = error_of("epochs: [1]");
        assert!(!e.contains("hint"), "{e}");
    }

    #[test]
    fn fields_are_found_outside_comments_and_strings() {
        let t = "(/* alpha: 1 */ name: \"alpha: x\", // alpha: 2\n alpha: 2.0)";
        assert_eq!(find_field(t, "alpha"), t.rfind("alpha"));
        assert_eq!(find_field("(malpha: 1, alpha: 2)", "alpha"), Some(12));
        assert_eq!(find_field("(beta: 1)", "alpha"), None);
    }
}
