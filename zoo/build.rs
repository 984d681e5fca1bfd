//! Lists `presets/*.ron` for `presets()`, so a preset ships by adding its file: no list of
//! names to keep in step by hand.

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
    let out = Path::new(&std::env::var("OUT_DIR").expect("set by cargo")).join("presets.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
