//! The core of the HTTP suite (credentials, keys, users, the dialects, revocation, scopes,
//! verify and forward-auth, the console, errors, metrics, OpenAPI, a read-only start) run a second time on
//! PostgreSQL: this test runs this test binary again with `KEYWARD_TEST_BACKEND=postgres`,
//! under which every app `spawn_with` starts gets a fresh PostgreSQL database of its own.
//! Left out: what reads the SQLite file itself (its tables, its size cap, its backups).

use std::process::Command;

use crate::helpers::on_postgres;
use crate::postgres::server;

/// Modules whose tests run on both backends.
const CORE: &[&str] = &[
    "auth::",
    "keys::",
    "users::",
    "dialects::",
    "seed000::",
    "seed001::",
    "seed002::",
    "revocations::",
    "services::",
    "token_matrix::",
    "console::",
    "hot_path::",
    "imported_keys::",
    "errors::",
    "hygiene::",
    "operations::",
    "openapi::",
    "usage::",
    "limits::a_read_only_database_serves_reads_and_refuses_writes",
    "ratelimits::credits_past_the_maximum_are_400_naming_the_field",
];

/// Tests in those modules that look inside the SQLite file (or start the binary on one).
const SQLITE_ONLY: &[&str] = &[
    "keys::a_patch_of_several_fields_is_one_transaction",
    "keys::a_rotation_grace_is_never_shorter_than_asked",
    "keys::a_rotation_is_one_transaction",
    "services::a_key_whose_scopes_cannot_be_read_is_refused_not_given_full_rights",
    "services::eddsa_keys_verify_offline_with_the_jwks_alone",
    "services::only_an_admin_grants_privileged_scopes_and_ungranted_ones_are_not_honoured",
    "console::the_first_sign_in_page_says_where_the_generated_password_is",
];

#[test]
fn the_core_suite_passes_on_postgres() {
    if on_postgres().is_some() {
        return; // this is the second run itself
    }
    let Some(server) = server("on_postgres::the_core_suite_passes_on_postgres") else {
        return;
    };
    let mut run = Command::new(std::env::current_exe().unwrap());
    run.env("KEYWARD_TEST_BACKEND", "postgres")
        .env("KEYWARD_TEST_POSTGRES", &server)
        .args(CORE)
        .args(["--test-threads", "4"]);
    for test in SQLITE_ONLY {
        run.args(["--skip", test]);
    }
    let out = run.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("test result:"))
        .unwrap_or("no summary");
    assert!(
        out.status.success(),
        "the core suite failed on PostgreSQL ({summary}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passed: usize = summary
        .split("ok. ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(passed >= 100, "only {passed} core tests ran on PostgreSQL: {summary}");
}
