//! The `mnnn` binary end to end, as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn mnnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mnnn"))
        .args(args)
        .output()
        .expect("runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

/// Runs `mnnn args`, requires success (showing stderr otherwise) and returns stdout.
fn ok(args: &[&str]) -> String {
    let o = mnnn(args);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    out
}

/// Runs `mnnn args`, requires exit code `code` and returns stderr.
fn fails(args: &[&str], code: i32) -> String {
    let o = mnnn(args);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    err
}

/// A path as a command-line argument.
fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Writes `contents` into `dir` as `name` and returns its path.
fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

/// `mnnn predict` of `data`'s `inputs` columns with `model`, then `extra`.
fn predict<'a>(
    model: &'a Path,
    data: &'a Path,
    inputs: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "predict",
        "--model",
        arg(model),
        "--data",
        arg(data),
        "--inputs",
        inputs,
    ];
    args.extend_from_slice(extra);
    args
}

/// `mnnn eval` of `model` on `data` with input `x` and target `y`, then `extra`.
fn eval<'a>(model: &'a Path, data: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "eval",
        "--model",
        arg(model),
        "--data",
        arg(data),
        "--inputs",
        "x",
        "--targets",
        "y",
    ];
    args.extend_from_slice(extra);
    args
}

/// A deterministic series: x is pseudo-random, y is an exponentially decaying sum of past x
/// (so the current x alone explains only part of y).
fn write_series(dir: &Path, n: usize) -> PathBuf {
    let mut s = String::from("t,x,y\n");
    let mut state: u64 = 12345;
    let mut acc = 0.0f64;
    for t in 0..n {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let x = ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0;
        acc = 0.75 * acc + x;
        s.push_str(&format!("{t},{x},{acc}\n"));
    }
    write(dir, "series.csv", s)
}

/// Writes `config` (RON) into `dir` as `name.ron`, trains it with `extra` arguments, and
/// returns the model file and stdout.
fn train_with(dir: &Path, name: &str, config: &str, extra: &[&str]) -> (PathBuf, String) {
    let cfg = write(dir, &format!("{name}.ron"), config);
    let model = dir.join(format!("{name}.safetensors"));
    let mut args = vec!["train", "--config", arg(&cfg), "--out", arg(&model)];
    args.extend_from_slice(extra);
    let out = ok(&args);
    (model, out)
}

/// Writes `config` (RON) into `dir` as `name.ron`, trains it, and returns the model file.
fn train(dir: &Path, name: &str, config: &str) -> PathBuf {
    train_with(dir, name, config, &[]).0
}

fn read_xy(path: &Path) -> (Vec<f64>, Vec<f64>) {
    read(path)
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
            (v[1], v[2])
        })
        .unzip()
}

#[test]
fn train_beats_a_memoryless_linear_regression_on_held_out_data() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_series(dir.path(), 3000);
    let (model, out) = train_with(
        dir.path(),
        "run",
        "(model: \"amrc\", params: (hidden: 24, beta: 0.75),\n data: Csv(path: \"series.csv\", inputs: [\"x\"], targets: [\"y\"]),\n train: (epochs: 40))",
        &["--json"],
    );
    let v = json(&out);
    let r2_model = v["validation"]["r2"].as_f64().unwrap();

    // The memoryless baseline, computed here on the same chronological split (last 20%).
    let (x, y) = read_xy(&csv);
    let cut = (x.len() as f64 * 0.8).round() as usize;
    let (xt, yt) = (&x[..cut], &y[..cut]);
    let n = xt.len() as f64;
    let (mx, my) = (xt.iter().sum::<f64>() / n, yt.iter().sum::<f64>() / n);
    let sxy: f64 = xt.iter().zip(yt).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = xt.iter().map(|a| (a - mx) * (a - mx)).sum();
    let (slope, icpt) = (sxy / sxx, my - sxy / sxx * mx);
    let (xv, yv) = (&x[cut..], &y[cut..]);
    let mv = yv.iter().sum::<f64>() / yv.len() as f64;
    let ss_res: f64 = xv
        .iter()
        .zip(yv)
        .map(|(a, b)| (b - (slope * a + icpt)).powi(2))
        .sum();
    let ss_tot: f64 = yv.iter().map(|b| (b - mv).powi(2)).sum();
    let r2_linear = 1.0 - ss_res / ss_tot;
    assert!(
        r2_model > r2_linear + 0.2,
        "AMRC validation R² {r2_model:.3} should clearly beat the linear {r2_linear:.3}"
    );
    let reported = v["linear_baseline_validation"]["r2"].as_f64().unwrap();
    assert!(
        (reported - r2_linear).abs() < 1e-6,
        "the CLI's own baseline agrees: {reported} vs {r2_linear}"
    );

    // eval on the same file scores the whole series from a fresh memory
    let m = json(&ok(&eval(&model, &csv, &["--json"])));
    assert_eq!(m["count"].as_u64(), Some(3000));
    assert!(m["r2"].as_f64().unwrap() > r2_linear);
}

#[test]
fn predict_resumes_a_stream_exactly_from_a_saved_state() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_series(dir.path(), 400);
    let model = train(
        dir.path(),
        "run",
        "(model: \"amrc\", params: (hidden: 8), data: Csv(path: \"series.csv\", inputs: [\"x\"], targets: [\"y\"]), train: (epochs: 2))",
    );

    let all = read(&csv);
    let lines: Vec<&str> = all.lines().collect();
    let first = write(
        dir.path(),
        "a.csv",
        format!("{}\n{}\n", lines[0], lines[1..201].join("\n")),
    );
    let second = write(
        dir.path(),
        "b.csv",
        format!("{}\n{}\n", lines[0], lines[201..].join("\n")),
    );

    let wa = ok(&predict(&model, &csv, "x", &[]));
    let resumed = dir.path().join("m2.safetensors");
    let aa = ok(&predict(
        &model,
        &first,
        "x",
        &["--state-out", arg(&resumed)],
    ));
    let bb = ok(&predict(&resumed, &second, "x", &[]));
    let joined = format!("{aa}{}", bb.split_once('\n').unwrap().1);
    assert_eq!(wa.lines().count(), 401);
    assert_eq!(
        joined, wa,
        "first half + resumed second half == one uninterrupted run"
    );
    assert!(wa.starts_with("y\n"));
}

#[test]
fn errors_are_one_clear_line_with_the_right_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(dir.path(), "bad.ron", "(model: \"amcr\")");
    let err = fails(&["train", "--config", arg(&cfg)], 2);
    assert!(
        err.contains("unknown model 'amcr'; did you mean 'amrc'?"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let none = dir.path().join("none.safetensors");
    let err = fails(&eval(&none, Path::new("x.csv"), &[]), 1);
    assert!(err.contains("none.safetensors"));

    let junk = write(dir.path(), "junk.safetensors", b"not a model");
    let err = fails(&predict(&junk, Path::new("x.csv"), "x", &[]), 1);
    assert!(err.contains("truncated or corrupted"), "{err}");

    fails(&["frobnicate"], 2);
    let csv = write_series(dir.path(), 50);
    let model = train(
        dir.path(),
        "ok",
        "(model: \"amrc\", params: (hidden: 2), data: Csv(path: \"series.csv\", inputs: [\"x\", \"t\"], targets: [\"y\"]), train: (epochs: 1))",
    );
    let err = fails(&predict(&model, &csv, "t,x", &[]), 2);
    assert!(
        err.contains("trained on inputs [x, t]; got [t, x]"),
        "{err}"
    );
    fails(&["info", "amn_x"], 2);
}

#[test]
fn list_and_info_show_every_entry() {
    let v = json(&ok(&["list", "--json"]));
    let amrc = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "amrc")
        .unwrap();
    assert_eq!(amrc["state_size"].as_u64(), Some(64));
    assert_eq!(amrc["family"], "member");
    // 1 input, 1 output, hidden 32: w_h 32 + b_h 32 + w_o 32 + b_o 1, plus the 1×1 head
    assert_eq!(amrc["cell_parameters"].as_u64(), Some(97));
    assert_eq!(amrc["parameters"].as_u64(), Some(99));
    let table = text(&mnnn(&["list"])).0;
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        ["name", "family", "preset of", "summary", "state", "params"]
    );
    // Presets are listed as presets of their entry, and `info` takes their name.
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("| mnemosyne-delta ") && l.contains("| mnemosyne ")),
        "{table}"
    );
    let card = ok(&["info", "mnemosyne-delta"]);
    assert!(
        card.starts_with("mnemosyne-delta (preset of mnemosyne") && card.contains("chunk: 1"),
        "{card}"
    );
    let out = text(&mnnn(&["info", "amrc"])).0;
    assert!(
        out.contains("hidden: 32") && out.contains("state.m") && out.contains("mean_abs_memory"),
        "{out}"
    );
}

#[test]
fn conformance_prints_a_table_and_json_and_refuses_unknown_entries() {
    let out = ok(&["conformance", "amrc", "--cases", "3"]);
    assert!(
        out.starts_with("entry ") && out.contains("persistence") && out.contains("amrc "),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    let v = json(&text(&mnnn(&["conformance", "--all", "--cases", "2", "--json"])).0);
    let props = v[0]["properties"].as_array().unwrap();
    assert_eq!(props.len(), mnnn_conformance::Property::ALL.len());
    assert!(props.iter().all(|p| p["outcome"] == "pass"), "{v}");
    let err = fails(&["conformance", "amcr"], 2);
    assert!(err.contains("did you mean 'amrc'"));
}

#[test]
fn conformance_rejects_the_growing_attention_cache_on_no_growth_only() {
    let err = fails(&["conformance", "attention", "--cases", "2"], 1);
    assert!(
        err.contains("not conforming: attention fails no-growth") && !err.contains("no-growth, "),
        "{err}"
    );
    let out = ok(&["conformance", "sliding-window", "--cases", "2"]);
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn import_reads_a_reference_file_and_refuses_a_short_one() {
    let dir = tempfile::tempdir().unwrap();
    // AMRC, I=1, H=2, O=1: header, W_h[2], W_o[2], b_h[2], b_o[1], m[2], p[2]
    let mut b = Vec::new();
    for v in [1i32, 2, 1] {
        b.extend(v.to_le_bytes());
    }
    for v in [0.5f32, 0.2, 0.01] {
        b.extend(v.to_le_bytes());
    }
    b.extend(3i32.to_le_bytes());
    for v in [0.4f32, -0.6, 1.0, 0.5, 0.0, 0.1, 0.0, 0.2, -0.1, 0.3, 0.05] {
        b.extend(v.to_le_bytes());
    }
    let file = write(dir.path(), "amrc.bin", &b);
    let out = dir.path().join("amrc.safetensors");
    let args = [
        "import",
        "--from",
        "reference",
        "--model",
        "amrc",
        "--input",
        "1",
        "--hidden",
        "2",
        "--output",
        "1",
        arg(&file),
        "--out",
        arg(&out),
    ];
    ok(&args);
    let csv = write_series(dir.path(), 5);
    assert_eq!(ok(&predict(&out, &csv, "x", &[])).lines().count(), 6);

    std::fs::write(&file, &b[..b.len() - 4]).unwrap();
    let err = fails(&args, 1);
    assert!(
        err.contains("has 72 bytes, this one has 68 (too short)"),
        "{err}"
    );
    let mut bad = args;
    bad[4] = "amcr";
    fails(&bad, 2);
}

/// The f32 tensor `name` of a safetensors file, with its shape.
fn tensor(bytes: &[u8], name: &str) -> (Vec<usize>, Vec<f32>) {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let v = st.tensor(name).unwrap();
    let data = v
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    (v.shape().to_vec(), data)
}

#[test]
fn import_from_torch_predicts_what_pytorch_computed() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    for name in ["lstm", "gru"] {
        let out = dir.path().join(format!("{name}.safetensors"));
        let file = fixtures.join(format!("{name}.safetensors"));
        let said = ok(&[
            "import",
            "--from",
            "torch",
            "--model",
            name,
            arg(&file),
            "--out",
            arg(&out),
        ]);
        assert!(said.contains(&format!("imported {name}")), "{said}");
        // Sequence 1 of the fixture's three, as a CSV of its four input columns.
        let expected =
            std::fs::read(fixtures.join(format!("{name}_expected.safetensors"))).unwrap();
        let ((xs, x), (_, y)) = (tensor(&expected, "x"), tensor(&expected, "y"));
        let (steps, batch, width) = (xs[0], xs[1], xs[2]);
        let mut csv = String::from("a,b,c,d\n");
        for t in 0..steps {
            let row = &x[(t * batch + 1) * width..(t * batch + 2) * width];
            let cells: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
            csv.push_str(&format!("{}\n", cells.join(",")));
        }
        let data = write(dir.path(), "x.csv", csv);
        let printed = ok(&predict(&out, &data, "a,b,c,d", &[]));
        let rows: Vec<&str> = printed.lines().skip(1).collect();
        assert_eq!(rows.len(), steps);
        for (t, line) in rows.iter().enumerate() {
            for (j, v) in line.split(',').enumerate() {
                let want = y[(t * batch + 1) * 2 + j];
                let got: f32 = v.parse().unwrap();
                assert!(
                    (got - want).abs() <= 1e-5,
                    "{name} step {t}: {got} vs {want}"
                );
            }
        }
    }
    let wrong = fails(
        &[
            "import",
            "--from",
            "torch",
            "--model",
            "amrc",
            arg(&fixtures.join("lstm.safetensors")),
            "--out",
            arg(&dir.path().join("x")),
        ],
        2,
    );
    assert!(wrong.contains("no PyTorch counterpart"), "{wrong}");
}

#[test]
fn compare_writes_table_csv_json_and_svg_and_refuses_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let stdout = ok(&[
        "compare",
        "amrc",
        "--task",
        "sines",
        "--seeds",
        "2",
        "--budget-steps",
        "5",
        "--out",
        arg(&out),
    ]);
    assert!(
        stdout.contains("amrc")
            && stdout.contains("linear")
            && stdout.contains("ar ")
            && stdout.contains("r2 (mean ± sd)"),
        "{stdout}"
    );
    let csv = read(&out.join("compare.csv"));
    // A line per scored run: three search runs (seed 0) and seed 1, per entry (amrc, linear,
    // and on a forecast ar).
    assert_eq!(csv.lines().count(), 1 + 3 * 4, "{csv}");
    let rows = json(&read(&out.join("compare.json")));
    assert_eq!(rows["rows"].as_array().unwrap().len(), 3);
    assert!(read(&out.join("compare.svg")).starts_with("<svg"));

    let err = fails(&["compare", "--task", "mqr", "--out", arg(&out)], 2);
    assert!(err.contains("did you mean 'mqar'"), "{err}");
    fails(&["compare", "--budget-steps", "0"], 2);
    fails(
        &["compare", "--budget-steps", "5", "--budget-seconds", "1"],
        2,
    );
    fails(&["compare", "nosuch"], 2);

    let series = write_series(dir.path(), 200);
    let stdout = ok(&[
        "compare",
        "amrc",
        "--csv",
        arg(&series),
        "--columns",
        "x,y",
        "--seeds",
        "1",
        "--budget-steps",
        "3",
        "--out",
        arg(&out),
    ]);
    assert!(stdout.contains("task csv"), "{stdout}");
    let csv = read(&out.join("compare.csv"));
    let rmse = csv.lines().nth(1).unwrap().split(',').nth(9).unwrap();
    assert!(
        rmse.parse::<f64>().unwrap() > 0.0,
        "forecasting reports RMSE too: {csv}"
    );
    fails(&["compare", "--csv", arg(&series)], 2);
}

#[test]
fn bench_reports_speeds_and_flat_memory() {
    let v = json(&ok(&[
        "bench",
        "amrc",
        "--hidden",
        "8",
        "--batch",
        "1,2",
        "--len",
        "32",
        "--stream",
        "1024,4096",
        "--json",
    ]));
    let speeds = v["speeds"].as_array().unwrap();
    assert_eq!(speeds.len(), 2);
    assert!(
        speeds
            .iter()
            .all(|s| s["step_tokens_per_second"].as_f64().unwrap() > 0.0 && s["state_bytes"] == 64)
    );
    if let Some(m) = v["memory"].as_array().and_then(|m| m.first()) {
        assert_eq!(m["points"].as_array().unwrap().len(), 2);
    }
    fails(&["bench", "amrc", "--batch", "0"], 2);
    fails(&["bench", "nosuch"], 2);
}

#[test]
fn training_reports_updates_and_scoring_says_warm_or_cold() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_series(dir.path(), 300);
    let config = "(model: \"amrc\", params: (hidden: 4), data: Csv(path: \"series.csv\", inputs: [\"x\"], targets: [\"y\"]), train: (max_updates: 60))";
    let (model, out) = train_with(dir.path(), "run", config, &["--json"]);
    let v = json(&out);
    assert_eq!(v["updates"].as_u64(), Some(60));
    assert!(v["best_update"].as_u64().unwrap() <= 60);
    assert_eq!(
        v["history"].as_array().unwrap().len(),
        3,
        "validated every 25 and at the end"
    );
    assert_eq!(v["validation_scoring"].as_str(), Some("warm"));

    // A trained model thrown away is refused before training, with the flag to add.
    let cfg = write(dir.path(), "keep.ron", config);
    let err = fails(&["train", "--config", arg(&cfg)], 2);
    assert!(err.contains("add --out"), "{err}");

    let cold = ok(&eval(&model, &csv, &[]));
    assert!(cold.contains("cold"), "{cold}");
    let warm = ok(&eval(&model, &csv, &["--warm"]));
    assert!(warm.contains("warm: from the memory saved"), "{warm}");
    let history = ok(&eval(&model, &csv, &["--history", arg(&csv)]));
    assert!(history.contains("after the history"), "{history}");
    assert_ne!(
        cold.lines().next(),
        history.lines().next(),
        "the memory changes the score"
    );

    let o = mnnn(&predict(&model, &csv, "x", &["--targets", "y"]));
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("r2=") && stderr.contains("n=300"),
        "{stderr}"
    );
    assert!(stdout.starts_with("y\n"));
}

#[test]
fn a_quoted_variant_and_a_fractional_count_get_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "q.ron",
        "(model: \"linear\", train: (optimizer: \"Adam\"))",
    );
    let err = fails(&["train", "--config", arg(&cfg)], 2);
    assert!(err.contains("without quotes: optimizer: Adam"), "{err}");
    let cfg = write(
        dir.path(),
        "f.ron",
        "(model: \"linear\", train: (epochs: 5.0))",
    );
    let err = fails(&["train", "--config", arg(&cfg)], 2);
    assert!(err.contains("epochs is a whole number: write 5"), "{err}");
}

#[test]
fn a_reader_that_closes_the_pipe_ends_the_program_quietly() {
    // `mnnn list | head -1`: the reader goes away before the table is written.
    let mut child = Command::new(env!("CARGO_BIN_EXE_mnnn"))
        .arg("list")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.is_empty(), "{err}");
}
