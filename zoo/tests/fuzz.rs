//! Fuzzing the four parsers that read user files — model files, RON run configs, CSV data and
//! reference-implementation imports — on stable Rust, by byte mutation of a committed corpus
//! (`tests/fuzz/<target>/`) plus generated model files.
//!
//! Every input must give `Ok` or a typed [`mnnn_core::Error`] with a message: never a panic
//! (caught and reported with the input's bytes) and never an abort (which kills the test).
//!
//! * `corpus_inputs_give_typed_errors_or_values` runs every corpus file once, in the normal
//!   suite: the cases found by hand and by earlier fuzzing stay fixed.
//! * `fuzz_for_a_time_budget` (ignored) mutates the corpus for `MNNN_FUZZ_SECONDS` seconds
//!   per target (default 15), seeded by `MNNN_FUZZ_SEED` (default the clock); `.ci/run`
//!   runs it in release mode. A panicking input is written to `target/fuzz-failures/`.

use mnnn_core::csvdata::CsvRows;
use mnnn_core::reference::RefDims;
use mnnn_core::{Error, IoSpec, Rng};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A parser under test: bytes in, a typed result out.
type Target = fn(&[u8]) -> Result<(), Error>;

fn model_file(bytes: &[u8]) -> Result<(), Error> {
    let mut m = mnnn_core::registry::load_bytes::<f32>(bytes, Path::new("fuzz.safetensors"))?;
    // A model that loads must also run without a panic.
    let x = ndarray::Array2::from_elem((3, m.meta().io.cell_input()), 0.5f32);
    match m.meta().io.input {
        mnnn_core::InputKind::Real(_) => m.predict(&mnnn_core::Inputs::Real(x)).map(drop),
        mnnn_core::InputKind::Tokens { .. } => m
            .predict(&mnnn_core::Inputs::Tokens(vec![0, 0, 0]))
            .map(drop),
    }
}

fn config(bytes: &[u8]) -> Result<(), Error> {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join("c.ron");
    std::fs::write(&p, bytes).expect("write");
    let cfg = mnnn_core::config::load(&p)?;
    // A config that parses must also build its model (at small widths) or refuse it.
    let io = IoSpec::regression(1, 1);
    mnnn_zoo::create::<f32>(&cfg.model, Some(&cfg.params), &io, 0).map(drop)
}

fn csv(bytes: &[u8]) -> Result<(), Error> {
    let cols = ["x".to_string(), "y".to_string()];
    let mut rows = CsvRows::<f32, _>::from_reader(Path::new("fuzz.csv"), bytes, &cols, Some("id"))
        .or_else(|_| CsvRows::from_reader(Path::new("fuzz.csv"), bytes, &cols, None))?;
    let mut row = [0.0f32; 2];
    let mut last = 0;
    while let Some(info) = rows.next_into(&mut row)? {
        // A lone `\r` ends a record but not a line, so two records may share a line.
        assert!(info.line >= last, "lines never go back");
        assert!(row.iter().all(|v| v.is_finite()), "values are finite");
        last = info.line;
    }
    Ok(())
}

/// Every entry that imports reference files, on the same bytes, at widths 1 (manifold 2).
fn reference(bytes: &[u8]) -> Result<(), Error> {
    let dims = RefDims {
        input: 1,
        hidden: 1,
        output: 1,
        manifold: Some(2),
    };
    let mut first = Ok(());
    for e in mnnn_zoo::entries() {
        let Some(import) = e.import_reference else {
            continue;
        };
        let r = import(bytes, &dims)
            .and_then(|i| mnnn_core::reference::build(e, &i, &dims))
            .map(|m| {
                assert!(
                    m.params().all_finite(),
                    "{}: imported weights are finite",
                    e.name
                );
            });
        if first.is_ok() {
            first = r;
        }
    }
    first
}

const TARGETS: [(&str, Target); 4] = [
    ("model", model_file),
    ("config", config),
    ("csv", csv),
    ("reference", reference),
];

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(target)
}

/// Small model files of several kinds (real and token inputs, a grown state), and one whose
/// metadata declares a model far larger than the tensors it holds.
fn generated_models() -> Vec<(String, Vec<u8>)> {
    let real = IoSpec::regression(2, 1);
    let mut out = Vec::new();
    for (name, params) in [
        ("amrc", "(hidden: 3)"),
        ("lstm", "(hidden: 2)"),
        ("amn", "(hidden: 3, manifold: 2)"),
        ("attention", "(dim: 2)"),
    ] {
        let mut m = mnnn_zoo::create::<f32>(name, Some(params), &real, 1).expect("builds");
        m.predict(&mnnn_core::Inputs::Real(ndarray::Array2::ones((4, 2))))
            .expect("runs");
        out.push((format!("{name}.safetensors"), m.to_bytes().expect("bytes")));
    }
    let m = mnnn_zoo::create::<f32>("amrc", Some("(hidden: 3)"), &real, 1).expect("builds");
    let mut meta = m.meta().clone();
    meta.params = "(hidden: 16777216)".into();
    let lie =
        mnnn_core::persist::to_bytes(&meta, m.params(), m.state(), m.normalizer()).expect("bytes");
    out.push(("declares-16M-hidden.safetensors".into(), lie));
    out
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir(target))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, std::fs::read(e.path()).expect("corpus file"))
                })
                .collect()
        })
        .unwrap_or_default();
    if target == "model" {
        files.extend(generated_models());
    }
    files.sort();
    files
}

/// Runs `target` on `input`; a panic becomes `Err` with the input saved for reproduction.
fn run_one(name: &str, target: Target, input: &[u8]) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| target(input))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if !e.to_string().trim().is_empty() => Ok(()),
        Ok(Err(e)) => Err(format!("{name}: an error without a message: {e:?}")),
        Err(_) => {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}-{:016x}", hash(input)));
            let _ = std::fs::write(&file, input);
            Err(format!(
                "{name}: panicked; the input is in {}",
                file.display()
            ))
        }
    }
}

fn hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn corpus_inputs_give_typed_errors_or_values() {
    for (target, f) in TARGETS {
        let files = corpus(target);
        assert!(!files.is_empty(), "no corpus for {target}");
        for (name, bytes) in files {
            run_one(&format!("{target}/{name}"), f, &bytes).unwrap();
        }
    }
    // The cases the corpus was made for give the errors they should.
    let text = |target: Target, bytes: &[u8]| target(bytes).unwrap_err().to_string();
    let big = generated_models().pop().expect("the lying file").1;
    let e = text(model_file, &big);
    assert!(e.contains("it is corrupted"), "{e}");
    let e = text(
        config,
        &std::fs::read(corpus_dir("config").join("deep.ron")).unwrap(),
    );
    assert!(e.contains("nests too deeply"), "{e}");
    let e = text(csv, b"x,y\n1,1e39\n");
    assert!(e.contains("line 2, column 'y'"), "{e}");
    let amrc = mnnn_zoo::find("amrc").unwrap();
    let dims = RefDims {
        input: 1,
        hidden: 1,
        output: 1,
        manifold: None,
    };
    let nan = std::fs::read(corpus_dir("reference").join("amrc-1-1-1-nan.bin")).unwrap();
    let e = (amrc.import_reference.unwrap())(&nan, &dims)
        .and_then(|i| mnnn_core::reference::build(amrc, &i, &dims))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("holds NaN"), "{e}");
}

/// One random change to `bytes`: flip, set, insert, delete, duplicate or splice in a piece
/// of another corpus input.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, others: &[(String, Vec<u8>)]) {
    const INTERESTING: [&[u8]; 10] = [
        b"0",
        b"-1",
        b"1e39",
        b"NaN",
        b"inf",
        b"16777216",
        b"\xff",
        b"\n",
        b",",
        b"(",
    ];
    let at = |rng: &mut Rng, len: usize| rng.below(len + 1);
    match rng.below(7) {
        0 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            bytes[i] ^= 1 << rng.below(8);
        }
        1 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            bytes[i] = rng.next_u64() as u8;
        }
        2 => {
            let i = at(rng, bytes.len());
            let piece = INTERESTING[rng.below(INTERESTING.len())];
            bytes.splice(i..i, piece.iter().copied());
        }
        3 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            let n = rng.below((bytes.len() - i).min(64) + 1);
            bytes.drain(i..i + n);
        }
        4 if !bytes.is_empty() => {
            let i = rng.below(bytes.len());
            let n = rng.below((bytes.len() - i).min(64) + 1);
            let piece = bytes[i..i + n].to_vec();
            let j = at(rng, bytes.len());
            bytes.splice(j..j, piece);
        }
        5 if !others.is_empty() => {
            let other = &others[rng.below(others.len())].1;
            if !other.is_empty() {
                let i = rng.below(other.len());
                let n = rng.below((other.len() - i).min(64) + 1);
                let j = at(rng, bytes.len());
                bytes.splice(j..j, other[i..i + n].iter().copied());
            }
        }
        _ => {
            let n = at(rng, bytes.len());
            bytes.truncate(n);
        }
    }
}

#[test]
#[ignore = "a time-bounded fuzzing run: cargo test --release -p mnnn-zoo --test fuzz -- --ignored"]
fn fuzz_for_a_time_budget() {
    let seconds: f64 = std::env::var("MNNN_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15.0);
    let seed: u64 = std::env::var("MNNN_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    // Panics are caught and reported with their input; the default hook would print each.
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for (target, f) in TARGETS {
        let seeds = corpus(target);
        let mut rng = Rng::derive(seed, target);
        let end = Instant::now() + Duration::from_secs_f64(seconds);
        let mut runs = 0u64;
        while Instant::now() < end && failures.len() < 10 {
            let mut input = seeds[rng.below(seeds.len())].1.clone();
            for _ in 0..1 + rng.below(8) {
                mutate(&mut rng, &mut input, &seeds);
            }
            if let Err(e) = run_one(target, f, &input) {
                failures.push(e);
            }
            runs += 1;
        }
        eprintln!("fuzz {target}: {runs} inputs in {seconds} s (seed {seed})");
    }
    let _ = std::panic::take_hook();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
