//! `mnnn compare` as a long job: log lines off a terminal, results kept as runs finish,
//! Ctrl-C and `--resume`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn mnnn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mnnn"))
}

#[test]
fn an_interrupted_comparison_keeps_and_shows_its_runs_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cmp");
    let args = [
        "compare",
        "amrc",
        "--task",
        "adding",
        "--seeds",
        "3",
        "--budget-steps",
        "150",
        "--out",
    ];
    // The job holds once 11 of its 12 runs are recorded (a test hook), so it cannot end
    // before the interrupt however fast the machine: a fast one finished it first and
    // exited 0.
    let child = mnnn()
        .args(args)
        .arg(&out)
        .env("MNNN_TEST_COMPARE_HOLD", "11")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for amrc's learning-rate search (3 runs) to be on disk, then interrupt. The
    // searches of both rows run first, in an order set by their estimated cost.
    let jsonl = out.join("compare.jsonl");
    let start = Instant::now();
    let amrc_searches = |t: String| {
        t.lines()
            .filter(|l| l.contains(r#""entry":"amrc","#) && l.contains(r#""kind":"Search""#))
            .count()
    };
    while std::fs::read_to_string(&jsonl).map_or(0, amrc_searches) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no run finished"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let o = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // Off a terminal, a line per finished run.
    assert!(stderr.contains("amrc search lr 0.01: r2 "), "{stderr}");
    assert!(stdout.contains("| amrc "), "the table so far: {stdout}");
    assert!(out.join("compare.json").exists() && out.join("compare.svg").exists());
    let kept = std::fs::read_to_string(&jsonl).unwrap().lines().count() - 1;

    // Resuming runs only what is missing: 3 search + 2 seeds + 1 timing run per entry (amrc
    // and linear) = 12 records in all.
    let o = mnnn()
        .args(args)
        .arg(&out)
        .arg("--resume")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let ran = stderr.lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(kept + ran, 12, "{stderr}");
    let records = std::fs::read_to_string(&jsonl).unwrap().lines().count() - 1;
    assert_eq!(records, 12);

    // Resuming under other settings is refused before anything runs.
    let o = mnnn()
        .args([
            "compare",
            "amrc",
            "--task",
            "adding",
            "--budget-steps",
            "7",
            "--out",
        ])
        .arg(&out)
        .arg("--resume")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("results to resume"));
}

#[test]
fn compare_messages_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let run = |args: &[&str]| {
        let o = mnnn().args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).to_string(),
        )
    };
    let (code, err) = run(&[
        "compare",
        "--out",
        file.to_str().unwrap(),
        "--budget-steps",
        "1",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is a file; give a directory"), "{err}");
    let (code, err) = run(&["compare", "--task", "nosuch"]);
    assert_eq!(code, Some(2));
    assert!(err.starts_with("error: unknown task 'nosuch'"), "{err}");
    // --task with --csv is refused rather than ignored.
    let (code, _) = run(&[
        "compare",
        "--task",
        "adding",
        "--csv",
        "x.csv",
        "--columns",
        "x",
    ]);
    assert_eq!(code, Some(2));
    let (code, err) = run(&["compare", "--csv", "x.csv"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("--columns") && err.contains("--inputs"),
        "{err}"
    );
}
