//! The keyward binary: parse the command line and hand it to `keyward::cli`.

use std::process::ExitCode;

use clap::Parser;

#[actix_web::main]
async fn main() -> ExitCode {
    keyward::cli::run(keyward::cli::Cli::parse()).await
}
