//! Lists `presets/*.ron` for `presets()` and registers each with the core's preset registry
//! (so its name works wherever a model name does), so a preset ships by adding its file: no
//! list of names to keep in step by hand.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("presets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut stems: Vec<String> = std::fs::read_dir(&dir)
        .expect("zoo/presets is readable")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "ron"))
        .map(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .expect("a UTF-8 file name")
                .to_string()
        })
        .collect();
    stems.sort();
    let mut code = String::from("&[\n");
    for s in &stems {
        let path = dir.join(format!("{s}.ron"));
        let _ = writeln!(
            code,
            "    ({s:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    code.push(']');
    let mut register = String::new();
    for s in &stems {
        let path = dir.join(format!("{s}.ron"));
        let _ = writeln!(
            register,
            "mnnn_core::register_preset!({s:?}, include_str!({:?}));",
            path.display().to_string()
        );
    }
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("presets.rs"), code).expect("OUT_DIR is writable");
    std::fs::write(out.join("register_presets.rs"), register).expect("OUT_DIR is writable");
}
