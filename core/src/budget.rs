//! The memory budget: sizes a command or a config asks for are turned into bytes and checked
//! against a limit *before* anything is allocated, so an impossible size is a typed error
//! naming the size and the limit, never an allocation failure that aborts the process.
//!
//! The limit is 8 GiB unless the environment variable `MNNN_MEMORY_LIMIT` sets another (bytes,
//! or a number with a `K`, `M`, `G` or `T` suffix, powers of 1024).

use crate::{Error, Result};

/// The limit when `MNNN_MEMORY_LIMIT` is unset: 8 GiB.
pub const DEFAULT_LIMIT: u64 = 8 << 30;

/// The environment variable that overrides [`DEFAULT_LIMIT`].
pub const LIMIT_VAR: &str = "MNNN_MEMORY_LIMIT";

/// Reads a size such as `512M`, `8G` or `1073741824`.
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, shift) = match t.chars().last()?.to_ascii_uppercase() {
        'K' => (&t[..t.len() - 1], 10),
        'M' => (&t[..t.len() - 1], 20),
        'G' => (&t[..t.len() - 1], 30),
        'T' => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The limit in force: `MNNN_MEMORY_LIMIT` if it is set, else [`DEFAULT_LIMIT`].
pub fn limit() -> Result<u64> {
    match std::env::var(LIMIT_VAR) {
        Err(_) => Ok(DEFAULT_LIMIT),
        Ok(v) => parse_size(&v).ok_or_else(|| {
            Error::invalid_param(
                LIMIT_VAR,
                v,
                "a size in bytes, or with a K, M, G or T suffix",
            )
        }),
    }
}

/// Bytes as a short human figure (`1.5 GiB`).
pub fn human(bytes: u128) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The product of `factors` times `bytes_each`, without overflow (saturating at `u128::MAX`,
/// which no limit admits).
pub fn bytes(factors: &[usize], bytes_each: usize) -> u128 {
    factors
        .iter()
        .try_fold(bytes_each as u128, |acc, &f| acc.checked_mul(f as u128))
        .unwrap_or(u128::MAX)
}

/// Refuses `what` if it needs more than the budget's `limit` bytes.
pub fn check_against(what: &str, bytes: u128, limit: u64) -> Result<()> {
    if bytes > limit as u128 {
        return Err(Error::TooLarge {
            what: what.to_string(),
            bytes,
            limit,
        });
    }
    Ok(())
}

std::thread_local! {
    /// A tighter limit for the work this thread is doing now ([`with_limit`]).
    static SCOPED: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with the limit lowered to `bytes` on this thread: for work whose honest size is
/// known from its input, such as a model file, which cannot need more memory for its tensors
/// than the file holds.
pub fn with_limit<T>(bytes: u64, f: impl FnOnce() -> T) -> T {
    let before = SCOPED.with(|s| s.replace(Some(bytes)));
    let out = f();
    SCOPED.with(|s| s.set(before));
    out
}

/// Refuses `what` if it needs more bytes than the [`limit`] in force (or the tighter one of
/// [`with_limit`]).
pub fn check(what: &str, bytes: u128) -> Result<()> {
    let global = limit()?;
    let scoped = SCOPED.with(|s| s.get()).unwrap_or(u64::MAX);
    check_against(what, bytes, global.min(scoped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_overflow_is_refused() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("3 m"), Some(3 << 20));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999T"), None);
        assert_eq!(bytes(&[usize::MAX, usize::MAX, 4], 8), u128::MAX);
        let e = check_against("activations", bytes(&[1 << 20, 1 << 20], 4), 8 << 30)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("activations need 4.0 TiB, more than the memory budget of 8.0 GiB"),
            "{e}"
        );
        assert!(check_against("small", 1 << 30, 8 << 30).is_ok());
    }
}
