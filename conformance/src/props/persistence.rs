//! Save → load → continue, snapshot → restore and reset → fresh, all bit for bit.

use super::{Check, model, run, same_bits, stack};
use crate::case::Case;
use mnnn_core::Scalar;
use mnnn_core::registry::{Entry, load, load_bytes};
use std::path::Path;

fn in_type<S: Scalar>(entry: &Entry, case: &Case) -> Check {
    let o = case.output;
    let m = model::<S>(entry, case, case.seed)?;
    let x = case.inputs::<S>("persistence", case.len, case.input);
    let (head_x, tail_x) = (x.slice(0, case.cut), x.slice(case.cut, case.len));
    let full = run(m.clone().as_mut(), &x, o)?;

    // Through bytes and through a real file.
    let mut a = m.clone();
    let head = run(a.as_mut(), &head_x, o)?;
    let bytes = a.to_bytes().map_err(|e| format!("to_bytes: {e}"))?;
    let mut b = load_bytes::<S>(&bytes, Path::new("(memory)")).map_err(|e| format!("load: {e}"))?;
    let again = b.to_bytes().map_err(|e| format!("to_bytes: {e}"))?;
    if again != bytes {
        return Err("a loaded model saves to different bytes".into());
    }
    let tail = run(b.as_mut(), &tail_x, o)?;
    same_bits(&stack(&head, &tail), &full)
        .map_err(|e| format!("continuing after save/load at step {}: {e}", case.cut))?;
    static FILES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "mnnn-conformance-{}-{}-{n}.safetensors",
        entry.name,
        std::process::id()
    ));
    a.save(&path).map_err(|e| format!("save: {e}"))?;
    let loaded = load::<S>(&path);
    let _ = std::fs::remove_file(&path);
    let mut c = loaded.map_err(|e| format!("load from file: {e}"))?;
    same_bits(&stack(&head, &run(c.as_mut(), &tail_x, o)?), &full).map_err(|e| {
        format!(
            "continuing after a file round trip at step {}: {e}",
            case.cut
        )
    })?;

    // Snapshot and restore.
    let mut d = m.clone();
    run(d.as_mut(), &head_x, o)?;
    let snap = d.state().clone();
    let first = run(d.as_mut(), &tail_x, o)?;
    d.set_state(&snap)
        .map_err(|e| format!("set_state(state()): {e}"))?;
    same_bits(&run(d.as_mut(), &tail_x, o)?, &first)
        .map_err(|e| format!("after set_state(snapshot): {e}"))?;

    // Reset equals a freshly built model with the same weights.
    let mut e = m.clone();
    run(e.as_mut(), &x, o)?;
    e.reset_state();
    same_bits(&run(e.as_mut(), &x, o)?, &full).map_err(|e| format!("after reset_state: {e}"))?;
    let mut fresh = model::<S>(entry, case, case.seed)?;
    same_bits(&run(fresh.as_mut(), &x, o)?, &full)
        .map_err(|e| format!("a rebuilt model differs: {e}"))
}

/// The property on one case, in f32 and in f64.
pub fn check(entry: &Entry, case: &Case) -> Check {
    in_type::<f32>(entry, case).map_err(|e| format!("f32: {e}"))?;
    in_type::<f64>(entry, case).map_err(|e| format!("f64: {e}"))
}
