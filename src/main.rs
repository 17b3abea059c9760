//! The keyward binary: parse the command line and hand it to `keyward::cli`.

use std::process::ExitCode;

use clap::Parser;

#[actix_web::main]
async fn main() -> ExitCode {
    // Every file keyward makes holds or guards secrets: private whatever the shell's umask.
    keyward::files::private_umask();
    keyward::cli::run(keyward::cli::Cli::parse()).await
}
