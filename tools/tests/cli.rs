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
    let p = dir.join("series.csv");
    std::fs::write(&p, s).unwrap();
    p
}

/// Writes `config` (RON) into `dir` as `name.ron`, trains it, and returns the model file.
fn train(dir: &Path, name: &str, config: &str) -> PathBuf {
    let cfg = dir.join(format!("{name}.ron"));
    std::fs::write(&cfg, config).unwrap();
    let model = dir.join(format!("{name}.safetensors"));
    let o = mnnn(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    model
}

fn read_xy(path: &Path) -> (Vec<f64>, Vec<f64>) {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
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
    let cfg = dir.path().join("run.ron");
    std::fs::write(
        &cfg,
        "(model: \"amrc\", params: (hidden: 24, beta: 0.75),\n data: Csv(path: \"series.csv\", inputs: [\"x\"], targets: [\"y\"]),\n train: (epochs: 40))",
    )
    .unwrap();
    let model = dir.path().join("m.safetensors");
    let o = mnnn(&[
        "train",
        "--config",
        cfg.to_str().unwrap(),
        "--out",
        model.to_str().unwrap(),
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
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
    let o = mnnn(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--inputs",
        "x",
        "--targets",
        "y",
        "--json",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
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

    let all = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    let (first, second) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    std::fs::write(
        &first,
        format!("{}\n{}\n", lines[0], lines[1..201].join("\n")),
    )
    .unwrap();
    std::fs::write(
        &second,
        format!("{}\n{}\n", lines[0], lines[201..].join("\n")),
    )
    .unwrap();

    let whole = mnnn(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--inputs",
        "x",
    ]);
    assert!(whole.status.success(), "{}", text(&whole).1);
    let resumed = dir.path().join("m2.safetensors");
    let a = mnnn(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        first.to_str().unwrap(),
        "--inputs",
        "x",
        "--state-out",
        resumed.to_str().unwrap(),
    ]);
    let b = mnnn(&[
        "predict",
        "--model",
        resumed.to_str().unwrap(),
        "--data",
        second.to_str().unwrap(),
        "--inputs",
        "x",
    ]);
    assert!(a.status.success() && b.status.success());
    let (wa, aa, bb) = (text(&whole).0, text(&a).0, text(&b).0);
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
    let cfg = dir.path().join("bad.ron");
    std::fs::write(&cfg, "(model: \"amcr\")").unwrap();
    let o = mnnn(&["train", "--config", cfg.to_str().unwrap()]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        err.contains("unknown model 'amcr'; did you mean 'amrc'?"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let o = mnnn(&[
        "eval",
        "--model",
        dir.path().join("none.safetensors").to_str().unwrap(),
        "--data",
        "x.csv",
        "--inputs",
        "x",
        "--targets",
        "y",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("none.safetensors"));

    let junk = dir.path().join("junk.safetensors");
    std::fs::write(&junk, b"not a model").unwrap();
    let o = mnnn(&[
        "predict",
        "--model",
        junk.to_str().unwrap(),
        "--data",
        "x.csv",
        "--inputs",
        "x",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).1.contains("truncated or corrupted"),
        "{}",
        text(&o).1
    );

    assert_eq!(mnnn(&["frobnicate"]).status.code(), Some(2));
    let csv = write_series(dir.path(), 50);
    let model = train(
        dir.path(),
        "ok",
        "(model: \"amrc\", params: (hidden: 2), data: Csv(path: \"series.csv\", inputs: [\"x\", \"t\"], targets: [\"y\"]), train: (epochs: 1))",
    );
    let o = mnnn(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--inputs",
        "t,x",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).1.contains("trained on inputs [x, t]; got [t, x]"),
        "{}",
        text(&o).1
    );
    assert_eq!(mnnn(&["info", "amn_x"]).status.code(), Some(2));
}

#[test]
fn list_and_info_show_every_entry() {
    let o = mnnn(&["list", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
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
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["name", "family", "summary", "state", "params"]);
    let o = mnnn(&["info", "amrc"]);
    let (out, _) = text(&o);
    assert!(
        out.contains("hidden: 32") && out.contains("state.m") && out.contains("mean_abs_memory"),
        "{out}"
    );
}

#[test]
fn conformance_prints_a_table_and_json_and_refuses_unknown_entries() {
    let o = mnnn(&["conformance", "amrc", "--cases", "3"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{out}{err}");
    assert!(
        out.starts_with("entry ") && out.contains("persistence") && out.contains("amrc "),
        "{out}"
    );
    assert!(!out.contains("FAIL"), "{out}");
    let o = mnnn(&["conformance", "--all", "--cases", "2", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    let props = v[0]["properties"].as_array().unwrap();
    assert_eq!(props.len(), 7);
    assert!(props.iter().all(|p| p["outcome"] == "pass"), "{v}");
    let o = mnnn(&["conformance", "amcr"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("did you mean 'amrc'"));
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
    let file = dir.path().join("amrc.bin");
    std::fs::write(&file, &b).unwrap();
    let out = dir.path().join("amrc.safetensors");
    let args = |f: &Path| {
        vec![
            "import".to_string(),
            "--from".into(),
            "reference".into(),
            "--model".into(),
            "amrc".into(),
            "--input".into(),
            "1".into(),
            "--hidden".into(),
            "2".into(),
            "--output".into(),
            "1".into(),
            f.to_str().unwrap().into(),
            "--out".into(),
            out.to_str().unwrap().into(),
        ]
    };
    let run = |a: Vec<String>| {
        Command::new(env!("CARGO_BIN_EXE_mnnn"))
            .args(a)
            .output()
            .unwrap()
    };
    let o = run(args(&file));
    assert!(o.status.success(), "{}", text(&o).1);
    let csv = write_series(dir.path(), 5);
    let p = mnnn(&[
        "predict",
        "--model",
        out.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--inputs",
        "x",
    ]);
    assert!(p.status.success(), "{}", text(&p).1);
    assert_eq!(text(&p).0.lines().count(), 6);

    std::fs::write(&file, &b[..b.len() - 4]).unwrap();
    let o = run(args(&file));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o)
            .1
            .contains("has 72 bytes, this one has 68 (too short)"),
        "{}",
        text(&o).1
    );
    let mut bad = args(&file);
    bad[4] = "amcr".into();
    assert_eq!(run(bad).status.code(), Some(2));
}

#[test]
fn compare_writes_table_csv_json_and_svg_and_refuses_bad_requests() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let o = mnnn(&[
        "compare",
        "amrc",
        "--task",
        "sines",
        "--seeds",
        "2",
        "--budget-steps",
        "5",
        "--out",
        out.to_str().unwrap(),
    ]);
    let (stdout, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        stdout.contains("amrc") && stdout.contains("linear") && stdout.contains("r2 (mean ± sd)"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(out.join("compare.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2, "a line per entry and seed");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 2);
    assert!(
        std::fs::read_to_string(out.join("compare.svg"))
            .unwrap()
            .starts_with("<svg")
    );

    let o = mnnn(&["compare", "--task", "mqr", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("did you mean 'mqar'"), "{}", text(&o).1);
    assert_eq!(
        mnnn(&["compare", "--budget-steps", "0"]).status.code(),
        Some(2)
    );
    assert_eq!(
        mnnn(&["compare", "--budget-steps", "5", "--budget-seconds", "1"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(mnnn(&["compare", "nosuch"]).status.code(), Some(2));

    let series = write_series(dir.path(), 200);
    let o = mnnn(&[
        "compare",
        "amrc",
        "--csv",
        series.to_str().unwrap(),
        "--columns",
        "x,y",
        "--seeds",
        "1",
        "--budget-steps",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("task csv"), "{}", text(&o).0);
    let csv = std::fs::read_to_string(out.join("compare.csv")).unwrap();
    let rmse = csv.lines().nth(1).unwrap().split(',').nth(7).unwrap();
    assert!(
        rmse.parse::<f64>().unwrap() > 0.0,
        "forecasting reports RMSE too: {csv}"
    );
    assert_eq!(
        mnnn(&["compare", "--csv", series.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn bench_reports_speeds_and_flat_memory() {
    let o = mnnn(&[
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
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
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
    assert_eq!(
        mnnn(&["bench", "amrc", "--batch", "0"]).status.code(),
        Some(2)
    );
    assert_eq!(mnnn(&["bench", "nosuch"]).status.code(), Some(2));
}
