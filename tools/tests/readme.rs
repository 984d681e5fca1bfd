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

/// The files the Configs section's error examples describe in their comments.
const BAD_CONFIGS: [(&str, &str); 3] = [
    ("a.ron", "(model: \"amcr\")\n"),
    (
        "b.ron",
        "(\n    model: \"amrc\",\n    data: Csv(path: \"s.csv\", inputs: [\"x\"], targets: [\"y\"]),\n    params: (hidden: 8, hiden: 4),\n)\n",
    ),
    (
        "c.ron",
        "(model: \"amrc\",\n    params: (beta: 1.5),\n    data: Csv(path: \"s.csv\", inputs: [\"x\"], targets: [\"y\"]))\n",
    ),
];

#[test]
fn the_config_errors_in_the_readme_are_what_the_program_says() {
    let block = README
        .split_once("Mistakes are reported with the place and the fix")
        .and_then(|(_, rest)| rest.split_once("```text\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the Configs section shows its error examples")
        .0;
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in BAD_CONFIGS {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let lines: Vec<&str> = block.lines().collect();
    let mut shown = 0;
    for pair in lines.chunks(2) {
        let [command, expected] = pair else {
            panic!("each example is a command and its error: {pair:?}")
        };
        let command = command
            .strip_prefix("$ ")
            .and_then(|c| c.split_once("  #").map(|(c, _)| c.trim()))
            .expect("a `$ mnnn …  # what the file holds` line");
        let args: Vec<&str> = command.split_whitespace().skip(1).collect();
        let out = Command::new(env!("CARGO_BIN_EXE_mnnn"))
            .args(&args)
            .args(["--out", "m.safetensors"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        // A line the README cuts short with `…` is a prefix of the real one.
        let expected = expected.trim_end_matches('…').trim_end_matches(", ");
        assert!(
            err.lines().next().is_some_and(|l| l.starts_with(expected)),
            "README shows `{expected}` for `{command}`; the program says `{err}`"
        );
        shown += 1;
    }
    assert_eq!(shown, BAD_CONFIGS.len());
}

#[test]
fn the_readme_zoo_table_has_a_row_for_every_entry() {
    let table = README
        .split_once("## The zoo")
        .and_then(|(_, rest)| rest.trim_start().split_once("\n\n"))
        .expect("the README has a zoo table")
        .0;
    let list = Command::new(env!("CARGO_BIN_EXE_mnnn"))
        .args(["list", "--json"])
        .output()
        .unwrap();
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let entries: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["preset_of"].is_null())
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(entries.len() > 10, "{entries:?}");
    for name in entries {
        assert!(
            table.contains(&format!("\n| `{name}` |")),
            "README's zoo table has no row for `{name}`"
        );
    }
}
