//! The keyward binary: read the config, start logging, run the server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use keyward::config::Settings;
use keyward::{Application, telemetry};

/// A self-hosted API key server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file [default: ./config.toml if it exists]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keyward: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log.level);
    let bind = settings.server.bind;
    let db = settings.database.path.clone();
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            log::error!("start-up failed: {e}");
            eprintln!("keyward: {e}");
            return ExitCode::FAILURE;
        }
    };
    log::info!(
        "keyward {} serving on http://{}:{} with database {}",
        env!("CARGO_PKG_VERSION"),
        bind.ip(),
        app.port(),
        db.display()
    );
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("server failed: {e}");
            ExitCode::FAILURE
        }
    }
}
