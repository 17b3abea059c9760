//! The packaging in `deploy/`: the systemd unit passes `systemd-analyze verify`.

use std::process::Command;

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        return crate::helpers::skip(
            "deploy::the_systemd_unit_verifies",
            "systemd-analyze is not installed (apt-get install systemd)",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/keyward.service")).unwrap();
    // Point the unit at the binary this test run built; everything else is as shipped.
    let unit = unit.replace("/usr/local/bin/keyward", env!("CARGO_BIN_EXE_keyward"));
    let path = dir.path().join("keyward.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Lines about the host (no keyward user here, other units) are not the unit's fault.
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("keyward.service") && !l.contains("User") && !l.contains("Group"))
        .collect();
    assert!(problems.is_empty(), "{stderr}");
}
