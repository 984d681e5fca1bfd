//! Assertions the entries' own tests share. Not part of the library's interface: it panics
//! by design and may change with those tests.

use crate::reference::RefDims;
use crate::registry::{Entry, ImportFn};
use crate::{Error, IoSpec};

/// Asserts that `import` refuses a reference file one byte shorter and one byte longer than
/// the `n`-byte file `bytes` for `dims`, naming both byte counts (`has n bytes, this one has
/// n ∓ 1`).
///
/// # Panics
/// If either is accepted or its message does not name both counts.
pub fn assert_wrong_lengths_refused(import: ImportFn, bytes: &[u8], n: usize, dims: &RefDims) {
    let short = import(&bytes[..n - 1], dims).unwrap_err().to_string();
    assert!(
        short.contains(&format!("has {n} bytes, this one has {}", n - 1)),
        "{short}"
    );
    let mut long = bytes.to_vec();
    long.push(0);
    let long = import(&long, dims).unwrap_err().to_string();
    assert!(
        long.contains(&format!("has {n} bytes, this one has {}", n + 1)),
        "{long}"
    );
}

/// The error `entry` refuses the RON `params` with when building an f32 model for `io`.
///
/// # Panics
/// If the model is built. A built model has no `Debug`, so `unwrap_err` is not available to
/// the tests, and `.err().unwrap()` would not say what was accepted.
pub fn refusal(entry: &Entry, params: &str, io: &IoSpec) -> Error {
    match entry.create::<f32>(Some(params), io, 0) {
        Ok(_) => panic!("'{}' accepted params {params}", entry.name),
        Err(e) => e,
    }
}
