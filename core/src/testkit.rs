//! Assertions the entries' own tests share. Not part of the library's interface: it panics
//! by design and may change with those tests.

use crate::reference::RefDims;
use crate::registry::ImportFn;

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
