//! Results: one outcome per entry and property.

use serde::Serialize;
use std::fmt;

/// A property of the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Property {
    /// Save → load → continue, snapshot → restore and reset → fresh are exact.
    Persistence,
    /// State shapes, serialized size and heap stay constant over long streams; the declared
    /// state-size formula is what the model holds.
    NoGrowth,
    /// The chunked form equals the step loop; a stream split anywhere equals one pass.
    Chunked,
    /// Backward matches central finite differences for parameters, initial state and inputs.
    Gradients,
    /// Same seed, same weights and outputs; other seeds, other weights; batched ≡ serial.
    Determinism,
    /// Bad widths, empty or non-finite inputs and invalid parameters are refused, never panic.
    BadInput,
    /// Parameters round-trip through RON; presets parse and validate.
    Config,
    /// Step, windowed, chunked and batched forms equal the entry's naive f64 token loop.
    Reference,
    /// `diagnostics()` returns the declared names, each once, and finite values.
    Diagnostics,
}

impl Property {
    /// Every property, in report order.
    pub const ALL: [Property; 9] = [
        Property::Persistence,
        Property::NoGrowth,
        Property::Chunked,
        Property::Gradients,
        Property::Determinism,
        Property::BadInput,
        Property::Config,
        Property::Reference,
        Property::Diagnostics,
    ];

    /// Short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Property::Persistence => "persistence",
            Property::NoGrowth => "no-growth",
            Property::Chunked => "chunked",
            Property::Gradients => "gradients",
            Property::Determinism => "determinism",
            Property::BadInput => "bad-input",
            Property::Config => "config",
            Property::Reference => "reference",
            Property::Diagnostics => "diagnostics",
        }
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a property came out.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// Held on every case.
    Pass,
    /// Does not apply to this entry (the reason says why).
    Skipped(String),
    /// Failed: what went wrong and the smallest case proptest found.
    Fail(String),
}

/// One property's result on one entry.
#[derive(Clone, Debug, Serialize)]
pub struct PropertyReport {
    /// The property.
    pub property: Property,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Wall-clock seconds spent.
    pub seconds: f64,
}

/// Every property's result on one entry.
#[derive(Clone, Debug, Serialize)]
pub struct EntryReport {
    /// Entry name.
    pub entry: String,
    /// Results in [`Property::ALL`] order (or the order asked for).
    pub properties: Vec<PropertyReport>,
}

impl EntryReport {
    /// Whether nothing failed.
    pub fn passed(&self) -> bool {
        self.properties
            .iter()
            .all(|p| !matches!(p.outcome, Outcome::Fail(_)))
    }

    /// The outcome of `property`, if it was run.
    pub fn outcome(&self, property: Property) -> Option<&Outcome> {
        self.properties
            .iter()
            .find(|p| p.property == property)
            .map(|p| &p.outcome)
    }
}

/// A table of entries × properties, then the details of every failure.
pub fn table(reports: &[EntryReport]) -> String {
    let mut out = format!("{:<14}", "entry");
    for p in Property::ALL {
        out.push_str(&format!(" {:<12}", p.name()));
    }
    out.push('\n');
    let mut details = String::new();
    for r in reports {
        out.push_str(&format!("{:<14}", r.entry));
        for p in Property::ALL {
            let cell = match r.outcome(p) {
                None => "-",
                Some(Outcome::Pass) => "pass",
                Some(Outcome::Skipped(_)) => "skipped",
                Some(Outcome::Fail(msg)) => {
                    details.push_str(&format!(
                        "\n{} / {}: FAIL\n  {}\n",
                        r.entry,
                        p,
                        msg.replace('\n', "\n  ")
                    ));
                    "FAIL"
                }
            };
            out.push_str(&format!(" {cell:<12}"));
        }
        out.push('\n');
    }
    out + &details
}
