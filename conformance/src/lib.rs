//! # mnnn-conformance
//!
//! The property suite every mnnn entry must pass, as a library that runs on any registered
//! entry — in this workspace or in a plugin crate outside it. Each property is checked on
//! cases drawn by proptest from the entry's declared small-size parameter ranges; a failure
//! is shrunk to the smallest case that still fails and reported with it.
//!
//! | property | what must hold |
//! |---|---|
//! | persistence | save → load → continue, `set_state(state())` and reset → fresh are bit-identical |
//! | no-growth | declared state size = held state size, fresh and after 10 steps; state shapes and serialized size equal after 10 and 100 000 steps; no net heap growth over 10 000 streaming steps |
//! | chunked | chunk sizes 1, 2, 7, 64 and whole within the entry's tolerance (1e-10 when exact); a stream split anywhere = one pass, exactly |
//! | gradients | parameters, initial state and inputs within 1e-6 relative of central differences (f64) |
//! | determinism | same seed → same weights and outputs; another seed → other weights; batched = alone, exactly |
//! | bad-input | bad widths, empty and non-finite inputs, every invalid parameter value: a typed error, never a panic |
//! | config | params round-trip through RON; presets naming the entry parse and validate |
//! | reference | step, windowed, chunked (from a carried state) and batched forms within 1e-10 relative of the entry's naive f64 token loop, written from its equations and sharing no code with them (parameters moved off their initial values) |
//!
//! Beside the properties, [`Suite::check_derived`] checks an entry's hand-written backward
//! pass against the one core derives from its forward written in tape operations, within
//! 1e-10 relative (f64): see [`derived`].
//!
//! From a plugin's own tests:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOC: mnnn_conformance::CountingAllocator = mnnn_conformance::CountingAllocator;
//!
//! #[test]
//! fn conforms() {
//!     mnnn_conformance::assert_conforms("my-cell");
//! }
//! ```

mod alloc;
pub mod case;
pub mod derived;
pub mod props;
mod report;

pub use alloc::{CountingAllocator, thread_net_bytes};
pub use report::{EntryReport, Outcome, Property, PropertyReport, table};

use case::Case;
use mnnn_core::registry::{self, Architecture, Capability, Entry};
use mnnn_core::{Cell, Dims};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

/// Default number of proptest cases per property.
pub const DEFAULT_CASES: u32 = 16;

/// How the suite runs: cases per property and the presets to check.
#[derive(Clone, Debug)]
pub struct Suite {
    cases: u32,
    presets: Vec<(String, String)>,
}

impl Default for Suite {
    fn default() -> Self {
        Suite {
            cases: DEFAULT_CASES,
            presets: Vec::new(),
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

impl Suite {
    /// The default suite.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cases per property (the long-stream growth check runs on one in eight of them).
    pub fn cases(mut self, n: u32) -> Self {
        self.cases = n.max(1);
        self
    }

    /// Preset configs `(name, RON text)` to check for the entries they name.
    pub fn presets(mut self, presets: &[(&str, &str)]) -> Self {
        self.presets = presets
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        self
    }

    fn run(
        &self,
        entry: &Entry,
        cases: u32,
        check: &dyn Fn(&Case) -> Result<(), String>,
    ) -> Outcome {
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 512,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        let result = runner.run(&case::cases(entry), |c| {
            match catch_unwind(AssertUnwindSafe(|| check(&c))) {
                Ok(Ok(())) => Ok(()),
                Ok(Err(msg)) => Err(TestCaseError::fail(msg)),
                Err(p) => Err(TestCaseError::fail(format!(
                    "panicked: {}",
                    panic_message(p.as_ref())
                ))),
            }
        });
        match result {
            Ok(()) => Outcome::Pass,
            Err(TestError::Fail(reason, case)) => {
                Outcome::Fail(format!("{reason}\nminimal case: {case}"))
            }
            Err(TestError::Abort(reason)) => Outcome::Fail(format!("aborted: {reason}")),
        }
    }

    /// Checks one property on `entry`.
    pub fn check_property(&self, entry: &Entry, property: Property) -> PropertyReport {
        let start = Instant::now();
        let n = self.cases;
        let outcome = match property {
            Property::Persistence => self.run(entry, n, &|c| props::persistence::check(entry, c)),
            Property::NoGrowth => {
                self.run(entry, n.div_ceil(8), &|c| props::growth::check(entry, c))
            }
            Property::Chunked => self.run(entry, n, &|c| props::chunked::check(entry, c)),
            Property::Gradients if !entry.has(Capability::Trainable) => {
                Outcome::Skipped("not trainable".into())
            }
            Property::Gradients => self.run(entry, n, &|c| props::gradients::check(entry, c)),
            Property::Determinism => self.run(entry, n, &|c| props::determinism::check(entry, c)),
            Property::BadInput => self.run(entry, n, &|c| props::bad_input::check(entry, c)),
            Property::Config => {
                self.run(entry, n, &|c| props::config::check(entry, c, &self.presets))
            }
            Property::Reference => match props::reference::supplied(entry) {
                Ok(true) => self.run(entry, n, &|c| props::reference::check(entry, c)),
                Ok(false) => Outcome::Skipped("the entry supplies no naive loop".into()),
                Err(e) => Outcome::Fail(e),
            },
            Property::Diagnostics => self.run(entry, n.div_ceil(4), &|c| {
                props::diagnostics::check(entry, c)
            }),
        };
        PropertyReport {
            property,
            outcome,
            seconds: start.elapsed().as_secs_f64(),
        }
    }

    /// Checks `A`'s hand-written backward pass against the one core derives from its forward
    /// equations written in tape operations (`derive` builds that derived cell for the same
    /// params and widths): see [`derived`]. A wrong term in the hand-written backward fails
    /// with the tensor it lands in and a shrunk case.
    pub fn check_derived<A: Architecture, D: Cell<f64>>(
        &self,
        derive: impl Fn(&A::Params, Dims) -> D,
    ) -> Outcome {
        let entry = Entry::of::<A>();
        self.run(&entry, self.cases, &|c| derived::check::<A, D>(&derive, c))
    }

    /// Checks every property on the entry called `name`.
    pub fn check(&self, name: &str) -> mnnn_core::Result<EntryReport> {
        self.check_only(name, &Property::ALL)
    }

    /// Checks the listed properties on the entry called `name`.
    pub fn check_only(
        &self,
        name: &str,
        properties: &[Property],
    ) -> mnnn_core::Result<EntryReport> {
        let entry = registry::find(name)?;
        Ok(EntryReport {
            entry: entry.name.to_string(),
            properties: properties
                .iter()
                .map(|&p| self.check_property(entry, p))
                .collect(),
        })
    }
}

/// [`Suite::check_derived`] with the default suite, panicking with the failure.
///
/// # Panics
/// When the hand-written backward differs from the derived one: this is meant for tests.
pub fn assert_derived_backward<A: Architecture, D: Cell<f64>>(
    derive: impl Fn(&A::Params, Dims) -> D,
) {
    if let Outcome::Fail(msg) = Suite::new().check_derived::<A, D>(derive) {
        panic!(
            "{}: the hand-written backward is not the derived one:\n{msg}",
            A::NAME
        );
    }
}

/// Runs the default suite on `name` and panics with the report if any property fails.
///
/// # Panics
/// When the entry is unknown or does not conform: this is meant for tests.
pub fn assert_conforms(name: &str) {
    let report = Suite::new().check(name).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        report.passed(),
        "{name} does not conform:\n{}",
        table(std::slice::from_ref(&report))
    );
}
