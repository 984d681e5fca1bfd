//! The `mnnn` binary against hostile and careless input: every refusal is a clear message
//! with the exit code the README promises (2 for usage, 1 for failures), and no command
//! destroys a file it reads or leaves a temporary file behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// Named so the linker keeps every plugin's registration (the test builds models itself).
use mnnn_zoo as _;

fn mnnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mnnn"))
        .args(args)
        .output()
        .expect("runs")
}

/// Runs `mnnn args`, requires success and returns stdout.
fn ok(args: &[&str]) -> String {
    let o = mnnn(args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into()
}

/// Runs `mnnn args`, requires exit code `code` and returns stderr.
fn fails(args: &[&str], code: i32) -> String {
    let o = mnnn(args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    err
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// `x,y` rows: x cycles through 0..7, y = x / 2.
fn series(dir: &Path, name: &str, n: usize) -> PathBuf {
    let mut s = String::from("x,y\n");
    for i in 0..n {
        s.push_str(&format!("{},{}\n", i % 7, (i % 7) as f64 / 2.0));
    }
    write(dir, name, s)
}

/// A tiny trained AMRC model on `data` (a CSV in `dir`), saved as `name.safetensors`.
fn model(dir: &Path, data: &str, name: &str) -> PathBuf {
    let cfg = write(
        dir,
        &format!("{name}.ron"),
        format!(
            "(model: \"amrc\", params: (hidden: 2), data: Csv(path: \"{data}\", inputs: [\"x\"], \
             targets: [\"y\"]), train: (epochs: 1))"
        ),
    );
    let out = dir.join(format!("{name}.safetensors"));
    ok(&["train", "--config", arg(&cfg), "--out", arg(&out)]);
    out
}

/// An AMRC reference file for I = H = O = 1 whose first weight is `w`.
fn reference_file(w: f32) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [1i32, 1, 1] {
        b.extend(v.to_le_bytes());
    }
    for v in [0.5f32, 0.2, 0.01] {
        b.extend(v.to_le_bytes());
    }
    b.extend(3i32.to_le_bytes());
    for v in [w, 0.5, 0.1, 0.0, 0.2, 0.3] {
        b.extend(v.to_le_bytes());
    }
    b
}

fn import_args<'a>(file: &'a Path, out: &'a Path, hidden: &'a str) -> Vec<&'a str> {
    vec![
        "import",
        "--from",
        "reference",
        "--model",
        "amrc",
        "--input",
        "1",
        "--hidden",
        hidden,
        "--output",
        "1",
        arg(file),
        "--out",
        arg(out),
    ]
}

#[test]
fn predict_and_eval_stream_a_long_file_and_name_the_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    series(d, "train.csv", 200);
    let m = model(d, "train.csv", "m");
    // Longer than several of predict's chunks, with a bad value on the last line.
    let n = 10_000;
    let long = series(d, "long.csv", n);
    let out = ok(&[
        "predict",
        "--model",
        arg(&m),
        "--data",
        arg(&long),
        "--inputs",
        "x",
    ]);
    assert_eq!(out.lines().count(), n + 1);
    let metrics = ok(&[
        "eval",
        "--model",
        arg(&m),
        "--data",
        arg(&long),
        "--inputs",
        "x",
        "--targets",
        "y",
    ]);
    assert!(metrics.contains(&format!("n={n}")), "{metrics}");
    let mut text = std::fs::read_to_string(&long).unwrap();
    text.push_str("1,1e39\n");
    let bad = write(d, "bad.csv", text);
    let err = fails(
        &[
            "eval",
            "--model",
            arg(&m),
            "--data",
            arg(&bad),
            "--inputs",
            "x",
            "--targets",
            "y",
        ],
        1,
    );
    assert!(
        err.contains(&format!(
            "bad.csv: line {}, column 'y': 1e39 is not a finite f32",
            n + 2
        )),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    series(d, "s.csv", 50);
    let not_utf8 = write(d, "bin.ron", b"(model: \"amrc\xff\")");
    let err = fails(&["train", "--config", arg(&not_utf8)], 2);
    assert!(err.contains("bin.ron:1:14: the file is not UTF-8"), "{err}");
    for (name, data, what) in [
        (
            "empty",
            "inputs: [], targets: [\"y\"]",
            "'inputs' names no column",
        ),
        (
            "twice",
            "inputs: [\"x\"], targets: [\"x\"]",
            "column 'x' is named twice",
        ),
    ] {
        let cfg = write(
            d,
            &format!("{name}.ron"),
            format!("(model: \"amrc\", data: Csv(path: \"s.csv\", {data}))"),
        );
        let err = fails(&["train", "--config", arg(&cfg)], 2);
        assert!(err.contains(what), "{err}");
    }
    // Over the parameter-count cap (4·H·(I + H) for an LSTM).
    let cap = write(
        d,
        "cap.ron",
        "(model: \"lstm\", params: (hidden: 16384), data: Csv(path: \"s.csv\", inputs: [\"x\"], targets: [\"y\"]))",
    );
    let err = fails(&["train", "--config", arg(&cap)], 2);
    assert!(err.contains("at most 268435456"), "{err}");
    let file = write(d, "ref.bin", reference_file(0.4));
    let out = d.join("ref.safetensors");
    let mut args = import_args(&file, &out, "1");
    args[6] = "0";
    let err = fails(&args, 2);
    assert!(err.contains("'input' = 0"), "{err}");
    let err = fails(&import_args(&file, &out, "18446744073709551615"), 2);
    assert!(err.contains("'hidden' = 18446744073709551615"), "{err}");
    let err = fails(&["bench", "amrc", "--hidden", "1000000000"], 2);
    assert!(err.contains("'hidden' = 1000000000"), "{err}");
    fails(&["conformance", "linear", "--cases", "0"], 2);
    let deep = write(
        d,
        "deep.ron",
        format!(
            "(model: \"amrc\", params: {}{})",
            "(".repeat(300),
            ")".repeat(300)
        ),
    );
    let err = fails(&["train", "--config", arg(&deep)], 2);
    assert!(
        err.contains("nests too deeply") && !err.contains("ron::"),
        "{err}"
    );
}

#[test]
fn sizes_beyond_the_memory_budget_are_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let err = fails(
        &[
            "bench",
            "amrc",
            "--hidden",
            "4",
            "--batch",
            "1000000000",
            "--len",
            "8",
        ],
        2,
    );
    assert!(
        err.contains("more than the memory budget of 8.0 GiB"),
        "{err}"
    );
    series(d, "s.csv", 20);
    let cfg = write(
        d,
        "wide.ron",
        "(model: \"amrc\", params: (hidden: 16777216), data: Csv(path: \"s.csv\", inputs: [\"x\"], targets: [\"y\"]))",
    );
    let model = d.join("wide.safetensors");
    let err = fails(&["train", "--config", arg(&cfg), "--out", arg(&model)], 2);
    assert!(
        err.contains("training windows") && err.contains("memory budget"),
        "{err}"
    );
}

#[test]
fn import_refuses_non_finite_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for w in [f32::NAN, f32::INFINITY] {
        let file = write(d, "ref.bin", reference_file(w));
        let out = d.join("ref.safetensors");
        let err = fails(&import_args(&file, &out, "1"), 1);
        assert!(
            err.contains("'param.w_h' holds") && err.contains("not imported"),
            "{err}"
        );
        assert!(!out.exists());
    }
}

#[test]
fn no_command_overwrites_a_file_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = series(d, "s.csv", 40);
    let m = model(d, "s.csv", "m");
    let cfg = d.join("m.ron");
    let before = |p: &Path| std::fs::read(p).unwrap();
    let (data0, cfg0, m0) = (before(&data), before(&cfg), before(&m));
    for out in [&data, &cfg] {
        let err = fails(&["train", "--config", arg(&cfg), "--out", arg(out)], 2);
        assert!(err.contains("which this command reads"), "{err}");
    }
    // Another name for the same file is the same file.
    let alias = d.join(".").join("s.csv");
    fails(&["train", "--config", arg(&cfg), "--out", arg(&alias)], 2);
    for out in [&data, &m] {
        fails(
            &[
                "predict",
                "--model",
                arg(&m),
                "--data",
                arg(&data),
                "--inputs",
                "x",
                "--state-out",
                arg(out),
            ],
            2,
        );
    }
    let file = write(d, "ref.bin", reference_file(0.4));
    let file0 = before(&file);
    fails(&import_args(&file, &file, "1"), 2);
    assert_eq!(before(&file), file0);
    assert_eq!((before(&data), before(&cfg), before(&m)), (data0, cfg0, m0));
}

#[test]
fn saves_name_a_missing_folder_and_clear_stale_temporary_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let file = write(d, "ref.bin", reference_file(0.4));
    let folder = format!("{}/", d.join("no/such").display());
    let err = fails(&import_args(&file, Path::new(&folder), "1"), 1);
    assert!(err.contains("names a folder"), "{err}");
    let inside = d.join("no/such/m.safetensors");
    let err = fails(&import_args(&file, &inside, "1"), 1);
    assert!(err.contains("does not exist"), "{err}");
    // Left by a save whose process was killed (no process has PID 2^32 - 1).
    let stale = write(d, ".m.safetensors.tmp4294967295-0", vec![0u8; 1000]);
    let out = d.join("m.safetensors");
    ok(&import_args(&file, &out, "1"));
    assert!(out.exists() && !stale.exists());
}

#[test]
fn duplicate_columns_and_overflowing_outputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = series(d, "s.csv", 40);
    let m = model(d, "s.csv", "m");
    let twice = write(d, "twice.csv", "x,y,x\n1,2,3\n");
    let err = fails(
        &[
            "predict",
            "--model",
            arg(&m),
            "--data",
            arg(&twice),
            "--inputs",
            "x",
        ],
        1,
    );
    assert!(err.contains("names column 'x' more than once"), "{err}");
    let cfg = write(d, "c.ron", "(model: \"amrc\", params: (hidden: 2))");
    let out = d.join("twice.safetensors");
    let err = fails(
        &[
            "train",
            "--config",
            arg(&cfg),
            "--data",
            arg(&data),
            "--inputs",
            "x,x",
            "--targets",
            "y",
            "--out",
            arg(&out),
        ],
        2,
    );
    assert!(err.contains("column 'x' is asked for twice"), "{err}");
    assert!(!out.exists());

    // Finite weights whose products overflow f32: a linear model with a huge gain.
    let io = mnnn_core::IoSpec::regression(1, 1);
    let mut lin = mnnn_zoo::create::<f32>("linear", None, &io, 0).unwrap();
    let mut p = lin.params().clone();
    p.data_mut().fill(3e38);
    lin.set_params(&p).unwrap();
    let big = d.join("big.safetensors");
    lin.save(&big).unwrap();
    let err = fails(
        &[
            "predict",
            "--model",
            arg(&big),
            "--data",
            arg(&data),
            "--inputs",
            "x",
        ],
        1,
    );
    assert!(
        err.contains("s.csv: line 2: the model's output is inf"),
        "{err}"
    );
}

/// The temporary files in `dir` of saves to `name` by process `pid`.
fn temporaries(dir: &Path, name: &str, pid: Option<u32>) -> Vec<PathBuf> {
    let prefix = match pid {
        Some(pid) => format!(".{name}.tmp{pid}-"),
        None => format!(".{name}.tmp"),
    };
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

#[cfg(unix)]
#[test]
fn a_save_stopped_by_a_signal_leaves_the_old_file_whole_and_no_temporary_file() {
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("m.safetensors");
    ok(&import_args(
        &write(d, "old.bin", reference_file(0.4)),
        &out,
        "1",
    ));
    let old = std::fs::read(&out).unwrap();
    // A save of other weights, held open by the test hook once its temporary file is full.
    let new = write(d, "new.bin", reference_file(0.3));
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGKILL] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mnnn"))
            .args(import_args(&new, &out, "1"))
            .env(mnnn_core::tempfiles::PAUSE_VAR, "60000")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while temporaries(d, "m.safetensors", Some(child.id())).is_empty() {
            assert!(start.elapsed() < Duration::from_secs(60), "no save began");
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: `kill` on the PID of our own child, which has not been waited for.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let status = child.wait().unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), old, "signal {signal}");
        let left = temporaries(d, "m.safetensors", None);
        if signal == libc::SIGKILL {
            // Nothing runs on SIGKILL: its file stays, for the next save to remove.
            assert_eq!(status.signal(), Some(signal));
            assert_eq!(left.len(), 1, "{left:?}");
        } else {
            assert_eq!(status.code(), Some(130), "signal {signal}");
            assert!(left.is_empty(), "signal {signal} left {left:?}");
        }
    }
    // The next save removes the file of the killed process and completes.
    ok(&import_args(&new, &out, "1"));
    assert!(temporaries(d, "m.safetensors", None).is_empty());
    assert_ne!(std::fs::read(&out).unwrap(), old);
}
