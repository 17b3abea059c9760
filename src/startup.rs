//! Start-up as a library call: open the store, load the domain, make the bootstrap admin,
//! bind the listener. `main` and the tests both use [`Application::build`].

use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpServer, web};

use crate::api;
use crate::config::Settings;
use crate::domain::{Clock, DomainConfig, Error, Keyward, Password, Secret};
use crate::jobs::Jobs;
use crate::metrics::Metrics;
use crate::store::{Store, StoreOptions};
use crate::web::AppState;
/// Name of the file the generated admin password is written to, beside the database.
pub const ADMIN_PASSWORD_FILE: &str = "keyward-admin-password";

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("database {path}: {message}")]
    Database { path: PathBuf, message: String },
    #[error("{0}")]
    Domain(#[from] Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tls(String),
}

pub struct Application {
    port: u16,
    server: Server,
    keyward: Keyward,
    jobs: Jobs,
    metrics_server: Option<actix_web::dev::ServerHandle>,
    shutdown_timeout: Duration,
}

impl Application {
    /// Opens the store and the domain without serving: for the CLI.
    pub async fn open_domain(settings: &Settings) -> Result<Keyward, StartError> {
        Self::open_domain_with_clock(settings, Clock::System).await
    }

    /// [`Self::open_domain`], the domain reading the time from `clock`.
    pub async fn open_domain_with_clock(settings: &Settings, clock: Clock) -> Result<Keyward, StartError> {
        let db_path = settings.database.path.clone();
        let metrics = Arc::new(Metrics::new().map_err(|e| Error::internal(format!("metrics: {e}")))?);
        let options = StoreOptions {
            pool_size: settings.database.pool_size,
            max_size: settings.database.max_size,
            read_only: settings.database.read_only,
            batch_sizes: Some(metrics.write_batch_size.clone()),
        };
        let store = match &settings.database.url {
            Some(url) => {
                let options = crate::store::postgres::PgOptions {
                    url: url.reveal().to_owned(),
                    pool_size: settings.database.pool_size as usize,
                    read_only: settings.database.read_only,
                    batch_sizes: Some(metrics.write_batch_size.clone()),
                };
                Store::open_postgres(&options).await.map_err(|e| StartError::Database {
                    path: PathBuf::from(crate::store::postgres::redact(url.reveal())),
                    message: e.message,
                })?
            }
            None => {
                let path = db_path.clone();
                tokio::task::spawn_blocking(move || Store::open_sqlite(&path, &options))
                    .await
                    .map_err(|e| StartError::Database {
                        path: db_path.clone(),
                        message: e.to_string(),
                    })?
                    .map_err(|e| StartError::Database {
                        path: db_path.clone(),
                        message: e.message,
                    })?
            }
        };
        let keyward = Keyward::open(
            store,
            DomainConfig {
                issuer: settings.keys.issuer.clone(),
                access_token_ttl: settings.auth.access_token_ttl,
                default_lifetime: settings.keys.default_lifetime,
                max_lifetime: settings.keys.max_lifetime,
                secret: settings.auth.secret.clone(),
                password_concurrency: settings.server.workers.clamp(2, 8),
                eddsa: settings.keys.eddsa,
                credit_block: settings.keys.credit_block,
                session_ttl: settings.ui.session_ttl,
                usage_retention: settings.usage.retention,
                max_staleness: settings.database.url.as_ref().map(|_| settings.cluster.max_staleness),
            },
            metrics,
            clock,
        )
        .await?;
        Ok(keyward)
    }

    pub async fn build(settings: Settings) -> Result<Application, StartError> {
        Self::build_with_clock(settings, Clock::System).await
    }

    /// [`Self::build`], the domain reading the time from `clock`: tests pass a
    /// [`crate::domain::TestClock`] and move it on instead of waiting for expiry.
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> Result<Application, StartError> {
        let keyward = Self::open_domain_with_clock(&settings, clock).await?;
        if settings.database.url.is_none() {
            warn_if_readable_by_others(&settings.database.path);
        }
        warn_if_few_files(settings.server.max_connections);
        if !keyward.has_users().await? {
            bootstrap_admin(
                &keyward,
                settings.auth.admin_password.clone(),
                &admin_password_file(&settings),
            )
            .await?;
        } else if settings.auth.admin_password.is_some() {
            log::warn!(
                "auth.admin_password (or KEYWARD_ADMIN_PASSWORD) is set but ignored: the database {} already \
                 has users, and it only sets the first admin's password on first start; change a password \
                 with `keyward user passwd admin` or on the console's account page",
                database_name(&settings)
            );
        }

        let listener = TcpListener::bind(settings.server.bind).map_err(|source| StartError::Bind {
            addr: settings.server.bind,
            source,
        })?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState {
            keyward: keyward.clone(),
            request_ids: crate::web::access_log::RequestIds::new(),
            trusted_proxies: settings.server.trusted_proxies.clone(),
            body_limit: settings.server.body_limit,
            request_timeout: settings.server.request_timeout,
        });
        let server_settings = settings.server.clone();
        let dialects = settings.dialects.clone();
        let metrics_here = settings.metrics.enabled && settings.metrics.bind.is_none();
        let metrics_public = settings.metrics.public;
        let metrics_state = state.clone();
        let ui_enabled = settings.ui.enabled;
        let ui_state = web::Data::new(crate::ui::UiState {
            secure_cookie: settings.ui.secure_cookie || settings.server.tls.is_some(),
            session_ttl: settings.ui.session_ttl,
            admin_password_file: admin_password_file(&settings),
        });
        let server = HttpServer::new(move || {
            let cors_on = !server_settings.cors_origins.is_empty();
            let mut cors = actix_cors::Cors::default()
                .allowed_methods(["GET", "POST", "PATCH", "DELETE"])
                .allowed_headers(["authorization", "content-type", "x-api-key"])
                .expose_headers(["location", "www-authenticate", "retry-after"])
                .max_age(3600);
            for origin in &server_settings.cors_origins {
                cors = cors.allowed_origin(origin);
            }
            App::new()
                .app_data(state.clone())
                .app_data(web::PayloadConfig::new(server_settings.body_limit))
                .configure(crate::web::extractor_configs)
                .configure(api::routes)
                .configure(|cfg| crate::dialects::routes(cfg, &dialects))
                .configure(|cfg| {
                    if ui_enabled {
                        crate::ui::routes(cfg, ui_state.clone());
                    }
                })
                .configure(|cfg| {
                    if metrics_here && metrics_public {
                        cfg.route("/metrics", web::get().to(crate::web::metrics::public_metrics));
                    } else if metrics_here {
                        cfg.route("/metrics", web::get().to(crate::web::metrics::metrics));
                    }
                })
                .default_service(web::to(crate::web::not_found))
                .wrap(Condition::new(cors_on, cors))
                .wrap(from_fn(crate::web::deadline::request_deadline))
                .wrap(from_fn(crate::web::access_log::access_log))
        })
        .workers(settings.server.workers)
        // Per worker: the configured total shared out.
        .max_connections(settings.server.max_connections.div_ceil(settings.server.workers.max(1)))
        .client_request_timeout(settings.server.request_timeout.min(Duration::from_secs(5)))
        .client_disconnect_timeout(Duration::from_secs(1))
        .shutdown_timeout(settings.server.shutdown_timeout.as_secs())
        // actix stops at once on SIGINT; keyward stops gracefully on SIGINT and SIGTERM
        // alike (`run_until_signalled`), and tests stop servers through `handle`.
        .disable_signals();
        let server = match &settings.server.tls {
            None => server.listen(listener)?,
            Some(tls) => server.listen_rustls_0_23(listener, tls_config(tls)?)?,
        }
        .run();

        // Metrics on an address of their own, when configured so.
        let metrics_server = match (settings.metrics.enabled, settings.metrics.bind) {
            (true, Some(addr)) => {
                let state = metrics_state;
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .route("/metrics", web::get().to(crate::web::metrics::public_metrics))
                })
                .workers(1)
                .disable_signals()
                .bind(addr)
                .map_err(|source| StartError::Bind { addr, source })?
                .run();
                let handle = server.handle();
                tokio::spawn(server);
                Some(handle)
            }
            _ => None,
        };

        let jobs = match settings.database.url {
            Some(_) => Jobs::start(&keyward, settings.cluster.poll_interval, settings.cluster.notify),
            None => Jobs::start(&keyward, crate::jobs::FOLLOW_INTERVAL, false),
        };
        Ok(Application {
            port,
            server,
            keyward,
            jobs,
            metrics_server,
            shutdown_timeout: settings.server.shutdown_timeout,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn keyward(&self) -> &Keyward {
        &self.keyward
    }

    /// Stops the server from elsewhere (tests; signals do it in production).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT (Ctrl-C) or SIGTERM, caught by `signals`, which both stop it
    /// gracefully: no new connections, requests in flight finish (up to
    /// `server.shutdown_timeout`), then pending key uses are written and unspent reserved
    /// credits given back. For the binary; tests stop servers through [`Self::handle`] (a test
    /// process keeps its own Ctrl-C).
    pub async fn run_until_signalled(self, signals: StopSignals) -> std::io::Result<()> {
        let signals = tokio::spawn(stop_on_signal(signals, self.server.handle(), self.shutdown_timeout));
        let result = self.run_until_stopped().await;
        signals.abort();
        result
    }

    /// Serves until the server is stopped through its handle, then writes pending key uses
    /// and gives the unspent credits of the blocks this node reserved back to the database.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.jobs.stop();
        if let Some(metrics) = self.metrics_server {
            metrics.stop(true).await;
        }
        if let Err(e) = self.keyward.flush_usage().await {
            log::warn!("writing key use times at shutdown failed: {e}");
        }
        match self.keyward.return_held_credits().await {
            Ok(0) => {}
            Ok(n) => log::info!("gave {n} reserved and unspent credits back to their balances"),
            Err(e) => log::warn!("giving reserved credits back at shutdown failed: {e}"),
        }
        result
    }
}

/// Whether keyward has a database where `settings` point (the SQLite file, or a PostgreSQL
/// database keyward has started on), finding out without creating anything.
pub async fn database_exists(settings: &Settings) -> Result<bool, StartError> {
    match &settings.database.url {
        Some(url) => crate::store::postgres::schema_version_at(url.reveal())
            .await
            .map(|version| version > 0)
            .map_err(|e| StartError::Database {
                path: PathBuf::from(crate::store::postgres::redact(url.reveal())),
                message: e.message,
            }),
        None => Ok(settings.database.path.exists()),
    }
}

/// `keyward migrate`: brings the SQLite database at `database.path` to this build's schema
/// (as a start would), then copies it into the empty PostgreSQL database at `url`, telling
/// `progress` the rows done and the total.
pub async fn migrate_to_postgres(
    settings: &Settings,
    url: &str,
    progress: impl FnMut(u64, u64) + Send,
) -> Result<crate::store::copy::Copied, StartError> {
    let path = settings.database.path.clone();
    let failed = |message: String| StartError::Database {
        path: path.clone(),
        message,
    };
    if !path.exists() {
        return Err(failed(
            "there is no SQLite database here to copy (set database.path, or --config)".into(),
        ));
    }
    let options = StoreOptions {
        pool_size: 1,
        max_size: None,
        read_only: false,
        batch_sizes: None,
    };
    let source = path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open_sqlite(&source, &options))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.message))?;
    drop(store);
    crate::store::copy::sqlite_to_postgres(&path, url, progress)
        .await
        .map_err(|e| StartError::Database {
            path: PathBuf::from(crate::store::postgres::redact(url)),
            message: e.message,
        })
}

/// The database as the log names it: the SQLite path, or the PostgreSQL url without its
/// password.
pub fn database_name(settings: &Settings) -> String {
    match &settings.database.url {
        Some(url) => crate::store::postgres::redact(url.reveal()),
        None => settings.database.path.display().to_string(),
    }
}

/// The database holds the master secret: say so at start when other users can read it.
fn warn_if_readable_by_others(db: &Path) {
    let db = std::fs::canonicalize(db).unwrap_or_else(|_| db.to_owned());
    let exposed = crate::files::readable_by_others(&crate::files::database_files(&db));
    if exposed.is_empty() {
        return;
    }
    let list: Vec<String> = exposed
        .iter()
        .map(|(f, mode)| format!("{} (mode {mode:04o})", f.display()))
        .collect();
    let names: Vec<String> = exposed.iter().map(|(f, _)| f.display().to_string()).collect();
    log::warn!(
        "the database is readable by other users: {}. It holds the master secret, so anyone who can read it can sign an admin token. Fix: chmod 600 {}",
        list.join(", "),
        names.join(" ")
    );
}

/// Every connection is an open file: say so when the process may open fewer files than
/// `server.max_connections` (plus a margin for the database and logs).
fn warn_if_few_files(max_connections: usize) {
    const MARGIN: u64 = 64;
    if let Some(limit) = crate::files::open_file_limit()
        && limit < max_connections as u64 + MARGIN
    {
        log::warn!(
            "the process may open {limit} files, fewer than server.max_connections ({max_connections}) + {MARGIN}: past it new connections fail and /healthz with them. Raise the limit (ulimit -n, LimitNOFILE= in systemd) or lower server.max_connections"
        );
    }
}

/// SIGINT and SIGTERM, caught from [`StopSignals::listen`] on: listen before saying the
/// server is up, so a signal sent as soon as it says so stops it gracefully rather than
/// killing it.
pub struct StopSignals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

impl StopSignals {
    /// Catches SIGINT and SIGTERM from now on (within a Tokio runtime). If the OS refuses,
    /// says so and goes on: the server then stops only when killed.
    pub fn listen() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
            (Ok(i), Ok(t)) => Self(Some((i, t))),
            (Err(e), _) | (_, Err(e)) => {
                log::warn!("cannot listen for SIGINT/SIGTERM ({e}); stop keyward with SIGKILL");
                Self(None)
            }
        }
    }
}

/// Waits for SIGINT or SIGTERM, then stops the server gracefully.
async fn stop_on_signal(signals: StopSignals, server: actix_web::dev::ServerHandle, grace: Duration) {
    let Some((mut interrupt, mut terminate)) = signals.0 else {
        return;
    };
    let name = tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    };
    log::info!(
        "{name} received: graceful stop; finishing requests in flight (up to {}s), then writing key use times",
        grace.as_secs()
    );
    server.stop(true).await;
}

/// Makes user `admin` in an empty database. The password comes from config or
/// `KEYWARD_ADMIN_PASSWORD`; otherwise one is generated, written to a 0600 file beside the
/// database (whose path is logged; the password never is) and shown on a terminal.
async fn bootstrap_admin(
    keyward: &Keyward,
    configured: Option<Secret>,
    admin_password_file: &Path,
) -> Result<(), StartError> {
    let (password, generated) = match configured {
        Some(p) => (p, false),
        None => {
            let mut bytes = [0u8; 18];
            getrandom::fill(&mut bytes).map_err(|e| Error::internal(format!("OS random source failed: {e}")))?;
            let text = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
            (Secret::new(text), true)
        }
    };
    let password = Password::parse(password)?;
    // Made first, the file written after: when two nodes start on one empty PostgreSQL
    // database at once, one makes the admin and the other finds it made (a conflict), and
    // only the one whose password is the admin's writes it down.
    match keyward.bootstrap_admin(password.clone()).await {
        Ok(_) => {}
        Err(Error::Conflict(_)) => {
            log::info!("user admin was made by another node starting at the same time");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    if generated {
        let file = admin_password_file;
        crate::files::write_private(file, password.secret().reveal())?;
        log::info!(
            "created user admin with a generated password; it is in {}",
            file.display()
        );
        if std::io::stdout().is_terminal() {
            println!(
                "keyward: user `admin` was created with the password {}",
                password.secret().reveal()
            );
            println!(
                "keyward: it is also in {} (delete the file once you have it)",
                file.display()
            );
        }
    } else {
        log::info!("created user admin with the configured password");
    }
    Ok(())
}

/// Where a generated admin password goes: [`ADMIN_PASSWORD_FILE`] beside the SQLite
/// database, or in the working directory on PostgreSQL; as an absolute path (the log and the
/// console name it).
fn admin_password_file(settings: &Settings) -> PathBuf {
    let dir = match settings.database.url {
        Some(_) => Path::new("."),
        None => settings
            .database
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new(".")),
    };
    let file = dir.join(ADMIN_PASSWORD_FILE);
    std::path::absolute(&file).unwrap_or(file)
}

/// The rustls configuration for `[server.tls]` (ring provider, TLS 1.2 and 1.3).
fn tls_config(tls: &crate::config::TlsSettings) -> Result<rustls::ServerConfig, StartError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| StartError::Tls(format!("server.tls.cert {}: {e}", tls.cert.display())))?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "server.tls.cert {}: no certificate in the file",
            tls.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key)
        .map_err(|e| StartError::Tls(format!("server.tls.key {}: {e}", tls.key.display())))?;
    rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| StartError::Tls(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(format!("server.tls: the certificate and key do not work together: {e}")))
}
