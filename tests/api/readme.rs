//! The README, taken literally: its API examples run as pasted, in order, in bash.
//!
//! Which blocks: each ```` ```sh ```` block right after a line `<!-- readme-test -->` (the
//! walk-through, protecting a service, the three dialects; not `cargo`, bench or long-form
//! blocks). They run one after another in one `bash` with `set -euo pipefail`, so variables
//! carry from block to block as they do in a reader's shell, and the first command that fails
//! fails this test. The blocks check what matters themselves (`curl -f`, `grep -x 401`,
//! `jq -e`).
//!
//! Where: a temporary directory with the built binary started in it as `cargo run --release`
//! starts it (nothing configured, so the admin password is generated into
//! `keyward-admin-password`), as a reader has it after README's "Two commands".
//!
//! Two conventions stand in for the reader's machine: a block's line `cargo run --release &`
//! is left out (this test started the server), and `http://127.0.0.1:8080` becomes this
//! server's address.

use std::process::Command;

use crate::helpers::{skip, start_binary_as_shipped};

const MARK: &str = "<!-- readme-test -->";
const README: &str = include_str!("../../README.md");

/// The marked blocks: (line number of the block's first line, its text).
fn marked_blocks(readme: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != MARK {
            continue;
        }
        let fence = lines.get(i + 1).map(|l| l.trim());
        assert!(
            matches!(fence, Some("```sh" | "```bash")),
            "README.md line {}: {MARK} must come right before a ```sh block",
            i + 1
        );
        let body: Vec<&str> = lines[i + 2..]
            .iter()
            .take_while(|l| l.trim() != "```")
            .copied()
            .collect();
        blocks.push((i + 3, body.join("\n")));
    }
    blocks
}

/// One bash script of every marked block, with the conventions above applied.
fn script(blocks: &[(usize, String)], base: &str) -> String {
    let mut script =
        String::from("set -euo pipefail\ntrap 'echo \"README command failed (exit $?): $BASH_COMMAND\" >&2' ERR\n");
    for (line, block) in blocks {
        script.push_str(&format!("echo '== README.md line {line}' >&2\n"));
        for code in block.lines() {
            if code.trim_start().starts_with("cargo run --release &") {
                continue;
            }
            script.push_str(&code.replace("http://127.0.0.1:8080", base));
            script.push('\n');
        }
    }
    script
}

fn missing_tool() -> Option<&'static str> {
    ["bash", "curl", "jq"]
        .into_iter()
        .find(|tool| Command::new(tool).arg("--version").output().is_err())
}

#[test]
fn the_readme_examples_run_as_written_after_the_two_commands() {
    if let Some(tool) = missing_tool() {
        return skip(
            "readme::the_readme_examples_run_as_written_after_the_two_commands",
            &format!("{tool} is not installed (apt-get install curl jq)"),
        );
    }
    let blocks = marked_blocks(README);
    assert!(
        blocks.len() >= 6,
        "the walk-through, verify, forward-auth and three dialects are marked"
    );
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = start_binary_as_shipped(dir.path());
    let script = script(&blocks, &base);
    assert!(!script.contains("cargo "), "only API examples run here:\n{script}");

    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env_remove("KEYWARD_ADMIN_PASSWORD")
        .output()
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "a README command failed\n--- output\n{}\n--- errors\n{}\n--- server log\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The walk-through left no secret in the working directory: only what the server made.
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "keyward-admin-password",
            "keyward.db",
            "keyward.db-shm",
            "keyward.db-wal",
            "server.log"
        ]
    );
}

#[test]
fn only_sh_blocks_are_marked_and_the_conventions_apply() {
    let readme = "x\n<!-- readme-test -->\n```sh\ncargo run --release &   # again\nB=http://127.0.0.1:8080\n```\n";
    let blocks = marked_blocks(readme);
    assert_eq!(
        blocks,
        [(4, "cargo run --release &   # again\nB=http://127.0.0.1:8080".to_owned())]
    );
    let script = script(&blocks, "http://127.0.0.1:4321");
    assert!(
        script.ends_with("echo '== README.md line 4' >&2\nB=http://127.0.0.1:4321\n"),
        "{script}"
    );
}
