//! Every command the README's tool section shows, run as shown (in a folder holding the
//! files they name, made tiny), so the README cannot drift from the program: a renamed flag,
//! a dropped subcommand or a command the section forgets fails here.

use std::path::Path;
use std::process::Command;

const README: &str = include_str!("../../README.md");

/// The command lines of the first `sh` block after the tool section's heading, without
/// their trailing `# comments`.
fn tool_commands() -> Vec<String> {
    let section = README
        .split_once("## The `mnnn` tool")
        .expect("the README has a tool section")
        .1;
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the tool section opens with a sh block")
        .0;
    block
        .lines()
        .map(|l| {
            l.split_once("  #")
                .map_or(l, |(cmd, _)| cmd)
                .trim()
                .to_string()
        })
        .filter(|l| l.starts_with("mnnn "))
        .collect()
}

/// The files the commands name: a series, its two halves, a run config, a preset file, a
/// reference file.
fn fixtures(dir: &Path) {
    let mut series = String::from("t,x,y\n");
    let (mut state, mut acc) = (12345u64, 0.0f64);
    for t in 0..120 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let x = ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0;
        acc = 0.75 * acc + x;
        series += &format!("{t},{x},{acc}\n");
    }
    let lines: Vec<&str> = series.lines().collect();
    let half = |rows: &[&str]| format!("{}\n{}\n", lines[0], rows.join("\n"));
    std::fs::write(dir.join("series.csv"), &series).unwrap();
    std::fs::write(dir.join("part1.csv"), half(&lines[1..60])).unwrap();
    std::fs::write(dir.join("part2.csv"), half(&lines[60..])).unwrap();
    std::fs::write(
        dir.join("run.ron"),
        "(model: \"amrc\", data: Csv(path: \"series.csv\", inputs: [\"x\"], targets: [\"y\"]), train: (epochs: 2))",
    )
    .unwrap();
    // A reference AMRC file, I=1, H=2, O=1: header, rates, W_h, W_o, b_h, b_o, memory, echo.
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
    std::fs::write(dir.join("net.bin"), b).unwrap();
    // A preset file as zoo/presets holds them: an entry and its params, no data.
    std::fs::write(
        dir.join("preset.ron"),
        "(model: \"amrc\", params: (hidden: 4), train: (epochs: 2))",
    )
    .unwrap();
}

#[test]
fn every_command_in_the_readme_tool_section_runs_as_shown() {
    let commands = tool_commands();
    let dir = tempfile::tempdir().unwrap();
    fixtures(dir.path());
    for line in &commands {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_mnnn"))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README: `{line}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every subcommand the program has is shown.
    let help = Command::new(env!("CARGO_BIN_EXE_mnnn"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let subcommands = help
        .split_once("Commands:")
        .unwrap()
        .1
        .split_once("Options:")
        .unwrap()
        .0
        .lines()
        // A subcommand's line is indented by two; a wrapped description, further.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help" && is_command(c));
    for c in subcommands {
        assert!(
            commands
                .iter()
                .any(|l| l.split_whitespace().nth(1) == Some(c)),
            "the README's tool section does not show `mnnn {c}`: {commands:?}"
        );
    }
}

/// Whether a word from the help's command list is a command (not a wrapped description).
fn is_command(word: &str) -> bool {
    word.chars().all(|c| c.is_ascii_lowercase() || c == '-')
}
