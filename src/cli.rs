//! The command line: `keyward [serve]` runs the server; the other subcommands act on the
//! database directly, as the operator, through the same domain calls. A running server
//! notices their writes within a second (it follows the `changes` table).

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::domain::{
    Email, Error, Expiry, KeyId, KeyName, Keyward, MAX_IMPORT, NewKeyRequest, NewUserRequest, Password, Role, Scopes,
    Secret, Timestamp, UserUpdate, Username,
};
use crate::{Application, telemetry};

/// A self-hosted API key server.
#[derive(Parser)]
#[command(version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: ./config.toml if it exists]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (what `keyward` alone does)
    Serve {
        /// Apply a fixtures file (users and keys for local development) at start; refused
        /// on a non-loopback server.bind unless [dev] allow_fixtures = true
        #[arg(long, value_name = "FILE")]
        fixtures: Option<PathBuf>,
    },
    /// Users and keys for local development, from a TOML file (see dev.toml)
    #[command(subcommand)]
    Fixtures(FixturesCommand),
    /// Add, list and change users
    #[command(subcommand)]
    User(UserCommand),
    /// Create, list and revoke API keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Copy the database to PATH, online and consistent, while the server runs
    Backup {
        /// Where to write the copy: a new file in an existing directory
        path: PathBuf,
    },
    /// Check the configuration, the schema version and the database's integrity
    Check,
    /// Copy the SQLite database (database.path) into an empty PostgreSQL database, in one
    /// transaction: every key and password keeps working there. Stop the server first.
    Migrate {
        /// The PostgreSQL url [default: database.url, e.g. from KEYWARD__DATABASE__URL, which
        /// keeps the password out of the process list]
        #[arg(long, value_name = "URL")]
        to: Option<String>,
    },
    /// Print the effective configuration (defaults, file, environment) as a config file
    /// that loads back to the same settings; secrets are never printed
    Config,
    /// Move in from another system: its users, passwords and API keys
    #[command(subcommand)]
    Import(ImportCommand),
    /// Manage the Ed25519 keys that sign API keys (keys.algorithm = "EdDSA")
    #[command(subcommand)]
    SigningKey(SigningKeyCommand),
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Users (by email), their email-and-password credentials (Better Auth's scrypt hashes,
    /// replaced by argon2id at each user's next sign-in) and API keys (by their SHA-256) from
    /// a Better Auth 1.x SQLite database; a second run imports nothing twice
    BetterAuth {
        /// The Better Auth SQLite database file (opened read-only)
        path: PathBuf,
    },
}

#[derive(Subcommand)]
enum FixturesCommand {
    /// Create or update the file's users and keys (idempotent: a second run changes nothing)
    Apply {
        file: PathBuf,
        /// Also remove users and keys an earlier apply created that the file no longer lists
        #[arg(long)]
        prune: bool,
    },
    /// Print each key of the file as `<name><TAB><key>` (for an app's .env)
    Keys { file: PathBuf },
}

#[derive(Subcommand)]
enum SigningKeyCommand {
    /// Add a new signing key; servers started from now on sign with it and still accept
    /// (and publish) the earlier ones
    Rotate,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is asked for on a terminal, else read from standard input
    Add {
        /// The new user's name: 1 to 64 letters, digits, '.', '_' or '-'
        username: String,
        /// Their email address; they may sign in with it too
        #[arg(long)]
        email: Option<String>,
        /// admin or user
        #[arg(long, default_value = "user")]
        role: String,
    },
    /// List users
    List,
    /// Set a user's password (asked for, or read from standard input); ends their access tokens
    Passwd {
        /// Username or email of the user
        username: String,
    },
    /// Disable a user: their keys and access tokens stop working at once
    Disable {
        /// Username or email of the user
        username: String,
    },
    /// Enable a disabled user
    Enable {
        /// Username or email of the user
        username: String,
    },
    /// Delete a user and revoke all their keys
    Delete {
        /// Username or email of the user
        username: String,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create a key for a user and print it: it is shown this once
    Create {
        /// Username or email of the owner
        #[arg(long)]
        user: String,
        /// A label to recognise the key by, e.g. the service that uses it
        #[arg(long)]
        name: Option<String>,
        /// "never", seconds, "90d", "One Month", an RFC 3339 time, ... [default: keys.default_lifetime]
        #[arg(long)]
        expires: Option<String>,
        /// Scopes, space or comma separated (e.g. "keys:verify"); privileged ones are
        /// granted, as by an admin. Omitted: the key acts as its user
        #[arg(long)]
        scopes: Option<String>,
    },
    /// List live keys: a user's, or every user's with their owners
    List {
        /// Username or email of the owner [default: every user]
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a key by id; it fails from that instant, in a running server within a second
    Revoke {
        /// The key's id (24 hex characters, as `key list` shows it)
        id: String,
    },
    /// Import keys keyward did not mint, one JSON object a line as `POST /v1/keys/import`
    /// takes them (owner, name, SHA-256 hash or plaintext key, ...); prints their ids. Every
    /// line is checked before anything is written; then 1,000 keys at a time, each batch
    /// all or nothing
    Import {
        /// A JSON Lines file ("-": standard input)
        file: PathBuf,
    },
}

/// Runs the command line; the exit code: 0 done, 1 failed, 2 bad configuration.
pub async fn run(cli: Cli) -> ExitCode {
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("keyward: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        None => serve(settings, None).await,
        Some(Command::Serve { fixtures }) => serve(settings, fixtures).await,
        Some(Command::Config) => settings
            .to_toml()
            .map(|text| {
                println!("# keyward's effective settings: built-in defaults, then the config file, then");
                println!("# KEYWARD__* environment variables. `keyward --config FILE` loads this back.\n");
                print!("{text}");
            })
            .map_err(|e| e.to_string()),
        Some(command) => {
            quiet_log(&settings);
            match command {
                Command::Migrate { to } => migrate(&settings, to).await,
                command => operate_on_database(&settings, command).await,
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("keyward: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Commands log warnings only, unless the configured filter names a module.
fn quiet_log(settings: &Settings) {
    telemetry::init(&format!(
        "warn,{}",
        settings
            .log
            .level
            .split(',')
            .filter(|f| f.contains('='))
            .collect::<Vec<_>>()
            .join(",")
    ));
}

async fn operate_on_database(settings: &Settings, command: Command) -> Result<(), String> {
    // Only `user add` and fixtures may start a database; the rest would act on an empty one
    // (and a `check` must not make one that `migrate` then finds not empty).
    if !matches!(command, Command::User(UserCommand::Add { .. }) | Command::Fixtures(_))
        && !crate::startup::database_exists(settings).await.map_err(show)?
    {
        return Err(match &settings.database.url {
            Some(url) => format!(
                "keyward has not started on {} yet (the first node creates its tables; \
                 or `keyward migrate` copies a SQLite database into it)",
                crate::store::postgres::redact(url.reveal())
            ),
            None => {
                let db = &settings.database.path;
                format!(
                    "there is no database at {} (keyward creates it on first start; \
                     set database.path, or --config, to use another)",
                    std::path::absolute(db).unwrap_or_else(|_| db.clone()).display()
                )
            }
        });
    }
    match Application::open_domain(settings).await {
        Ok(keyward) => operate(&keyward, settings, command).await,
        Err(e) => Err(e.to_string()),
    }
}

/// `keyward migrate`: SQLite at `database.path` into the PostgreSQL database `to` names.
async fn migrate(settings: &Settings, to: Option<String>) -> Result<(), String> {
    let url = match (to, &settings.database.url) {
        (Some(url), _) => url,
        (None, Some(url)) => url.reveal().to_owned(),
        (None, None) => {
            return Err(
                "say where to copy to: --to postgres://user:password@host:5432/database, or set \
                 KEYWARD__DATABASE__URL (which keeps the password out of the process list)"
                    .into(),
            );
        }
    };
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("--to: expected a PostgreSQL url such as postgres://keyward:…@db:5432/keyward".into());
    }
    let bar = progress_bar("{bar:40} {pos}/{len} rows {elapsed}");
    let progress = bar.clone();
    let copied = crate::startup::migrate_to_postgres(settings, &url, move |done, total| {
        if let Some(bar) = &progress {
            bar.set_length(total);
            bar.set_position(done);
        }
    })
    .await
    .map_err(show)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let tables: Vec<String> = copied.tables.iter().map(|(table, n)| format!("{table} {n}")).collect();
    println!(
        "copied {} into {}: {}",
        settings.database.path.display(),
        crate::store::postgres::redact(&url),
        tables.join(", ")
    );
    println!(
        "next: set database.url (or KEYWARD__DATABASE__URL) to that url on every node and start keyward; \
         keep the SQLite file until you are sure"
    );
    Ok(())
}

/// A progress bar on standard error when it is a terminal.
fn progress_bar(template: &str) -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}

async fn serve(settings: Settings, fixtures: Option<PathBuf>) -> Result<(), String> {
    telemetry::init(&settings.log.level);
    let fixtures = match fixtures {
        Some(path) => {
            crate::fixtures::check_bind(&settings)?;
            let read = crate::fixtures::read(&path)?;
            crate::fixtures::check_settings(&read, &settings)?;
            Some((path, read))
        }
        None => None,
    };
    let bind = settings.server.bind;
    let db = crate::startup::database_name(&settings);
    let scheme = if settings.server.tls.is_some() { "https" } else { "http" };
    let console = settings.ui.enabled;
    let app = Application::build(settings).await.map_err(|e| {
        log::error!("start-up failed: {e}");
        e.to_string()
    })?;
    // Fixtures are in place before the log says the server is up.
    if let Some((path, fixtures)) = fixtures {
        let changes = app
            .keyward()
            .apply_fixtures(&fixtures, false)
            .await
            .map_err(|e| format!("fixtures {}: {e}", path.display()))?;
        for change in &changes {
            log::info!("fixtures: {change}");
        }
        log::warn!(
            "fixtures loaded from {} ({} users, {} keys; {} changes): for local development only",
            path.display(),
            fixtures.users.len(),
            fixtures.keys.len(),
            changes.len()
        );
    }
    let signals = crate::startup::StopSignals::listen();
    let base = format!("{scheme}://{}:{}", bind.ip(), app.port());
    log::info!(
        "keyward {} serving on {base} with database {}",
        env!("CARGO_PKG_VERSION"),
        db
    );
    if console {
        log::info!("web console at {base}/ui");
    }
    app.run_until_signalled(signals)
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    log::info!("stopped");
    Ok(())
}

/// The password of `username` for `user add` / `user passwd`: asked for twice without echo
/// on a terminal, else the first line of standard input (scripts pipe it in).
fn read_password(username: &str) -> Result<Password, String> {
    let failed = |e: std::io::Error| format!("reading the password: {e}");
    let typed = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {username}: ")).map_err(failed)?;
        let again = rpassword::prompt_password(format!("password for {username} again: ")).map_err(failed)?;
        if first != again {
            return Err("the two passwords differ".into());
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(failed)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if typed.is_empty() {
        return Err(format!(
            "no password was read for {username}: type it on a terminal, or pipe it in as the first line of standard input"
        ));
    }
    Password::parse(Secret::new(typed)).map_err(|e| e.to_string())
}

/// The keys of a JSON Lines import file, every line checked (blank lines skipped).
fn read_key_import(file: &std::path::Path) -> Result<Vec<crate::domain::ImportKeyRequest>, String> {
    let text = if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("reading standard input: {e}"))?
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?
    };
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |e: &dyn std::fmt::Display| format!("{}, line {}: {e}", file.display(), n + 1);
        let json: crate::api::import::ImportKeyJson = serde_json::from_str(line).map_err(|e| at(&e))?;
        keys.push(json.parse().map_err(|e| at(&e))?);
    }
    if keys.is_empty() {
        return Err(format!("{}: no keys to import", file.display()));
    }
    Ok(keys)
}

fn user_id(kw: &Keyward, login: &str) -> Result<crate::domain::UserId, String> {
    kw.find_user(login)
        .map(|u| u.id)
        .ok_or_else(|| format!("no user {login:?}"))
}

/// A refusal as the operator reads it (the domain's or a value's: the same words).
fn show(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn or_dash(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "-".into(), Timestamp::rfc3339)
}

async fn operate(kw: &Keyward, settings: &Settings, command: Command) -> Result<(), String> {
    let op = kw.operator();
    match command {
        Command::Serve { .. } | Command::Config | Command::Migrate { .. } => unreachable!("handled by run"),
        Command::Fixtures(FixturesCommand::Apply { file, prune }) => {
            let fixtures = crate::fixtures::read(&file)?;
            crate::fixtures::check_settings(&fixtures, settings)?;
            let changes = kw.apply_fixtures(&fixtures, prune).await.map_err(show)?;
            for change in &changes {
                println!("{change}");
            }
            if changes.is_empty() {
                println!(
                    "no changes: the database already holds the fixtures of {}",
                    file.display()
                );
            }
        }
        Command::Import(ImportCommand::BetterAuth { path }) => {
            let data = tokio::task::spawn_blocking(move || crate::store::better_auth::read(&path))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.message)?;
            let mut notes = data.notes;
            let report = kw.move_in(data.users, data.keys).await.map_err(show)?;
            notes.extend(report.notes);
            for note in &notes {
                eprintln!("{note}");
            }
            println!(
                "users: {} imported, {} already here; keys: {} imported, {} already here",
                report.users_added, report.users_present, report.keys_added, report.keys_present
            );
            if !report.users_without_password.is_empty() {
                println!(
                    "without a password (they signed in by other means; set one with `keyward user passwd`): {}",
                    report.users_without_password.join(", ")
                );
            }
            if report.users_added == 0 && report.keys_added == 0 {
                println!("nothing new: everything was imported before");
            }
        }
        Command::Fixtures(FixturesCommand::Keys { file }) => {
            let fixtures = crate::fixtures::read(&file)?;
            crate::fixtures::check_settings(&fixtures, settings)?;
            for key in &fixtures.keys {
                let secret = kw.fixture_key_secret(&fixtures, key).map_err(show)?;
                println!("{}\t{}", key.name.as_str(), secret.reveal());
            }
        }
        Command::User(UserCommand::Add { username, email, role }) => {
            let request = NewUserRequest {
                username: Username::parse(&username).map_err(show)?,
                password: read_password(&username)?,
                email: email.as_deref().map(Email::parse).transpose().map_err(show)?,
                role: Role::parse(&role).map_err(show)?,
            };
            let user = kw.create_user(&op, request).await.map_err(show)?;
            println!("added user {} ({})", user.username, user.id);
        }
        Command::User(UserCommand::List) => {
            let mut cursor: Option<String> = None;
            println!(
                "{:<24}  {:<20}  {:<30}  {:<5}  disabled",
                "id", "username", "email", "role"
            );
            loop {
                let page = kw.list_users(&op, cursor.as_deref(), Some(500)).await.map_err(show)?;
                for u in &page.users {
                    println!(
                        "{:<24}  {:<20}  {:<30}  {:<5}  {}",
                        u.id,
                        u.username,
                        u.email.as_deref().unwrap_or("-"),
                        u.role.as_str(),
                        u.disabled
                    );
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c.to_string()),
                    None => break,
                }
            }
        }
        Command::User(UserCommand::Passwd { username }) => {
            let id = user_id(kw, &username)?;
            let update = UserUpdate {
                password: Some(read_password(&username)?),
                ..UserUpdate::default()
            };
            kw.update_user(&op, id, update).await.map_err(show)?;
            println!("password of {username} changed; their access tokens have ended");
        }
        Command::User(UserCommand::Disable { username }) => {
            let id = user_id(kw, &username)?;
            kw.update_user(
                &op,
                id,
                UserUpdate {
                    disabled: Some(true),
                    ..UserUpdate::default()
                },
            )
            .await
            .map_err(show)?;
            println!("disabled {username}");
        }
        Command::User(UserCommand::Enable { username }) => {
            let id = user_id(kw, &username)?;
            kw.update_user(
                &op,
                id,
                UserUpdate {
                    disabled: Some(false),
                    ..UserUpdate::default()
                },
            )
            .await
            .map_err(show)?;
            println!("enabled {username}");
        }
        Command::User(UserCommand::Delete { username }) => {
            let id = user_id(kw, &username)?;
            kw.delete_user(&op, id).await.map_err(show)?;
            println!("deleted {username}; their keys are revoked");
        }
        Command::Key(KeyCommand::Create {
            user,
            name,
            expires,
            scopes,
        }) => {
            let owner = user_id(kw, &user)?;
            let request = NewKeyRequest {
                name: name.as_deref().map(KeyName::parse).transpose().map_err(show)?,
                expires: expires
                    .as_deref()
                    .map(Expiry::parse)
                    .transpose()
                    .map_err(|e| format!("expires: {e}"))?,
                scopes: scopes
                    .map(|s| {
                        Scopes::parse(
                            s.split([' ', ','])
                                .filter(|x| !x.is_empty())
                                .map(str::to_owned)
                                .collect(),
                        )
                    })
                    .transpose()
                    .map_err(show)?,
                ..NewKeyRequest::default()
            };
            let minted = kw.mint_key(&op, Some(owner), request).await.map_err(show)?;
            eprintln!("created key {} for {user}; it is shown this once:", minted.record.id);
            println!("{}", minted.secret.reveal());
        }
        Command::Key(KeyCommand::List { user }) => {
            let keys = match &user {
                Some(user) => kw.all_keys(&op, Some(user_id(kw, user)?)).await,
                None => kw.every_live_key(&op).await,
            }
            .map_err(show)?;
            println!(
                "{:<24}  {:<20}  {:<20}  {:<20}  {:<20}  last used",
                "id", "owner", "name", "created", "expires"
            );
            for k in keys {
                let owner = kw.key_owner(&op, Some(k.user_id)).map(|u| u.username.clone());
                println!(
                    "{:<24}  {:<20}  {:<20}  {:<20}  {:<20}  {}",
                    k.id,
                    owner.as_deref().unwrap_or("?"),
                    k.name.as_deref().unwrap_or("-"),
                    k.created_at.rfc3339(),
                    or_dash(k.expires_at),
                    or_dash(k.last_used_at)
                );
            }
        }
        Command::Key(KeyCommand::Revoke { id }) => {
            let key = KeyId::parse(&id).ok_or_else(|| format!("no live key {id}"))?;
            kw.revoke_any_key(&op, key).await.map_err(|e| match e {
                Error::NotFound => format!("no live key {id}"),
                other => other.to_string(),
            })?;
            println!("revoked {id}");
        }
        Command::Key(KeyCommand::Import { file }) => {
            let requests = read_key_import(&file)?;
            let total = requests.len();
            let mut requests = requests.into_iter().peekable();
            let mut done = 0;
            while requests.peek().is_some() {
                let batch: Vec<_> = requests.by_ref().take(MAX_IMPORT).collect();
                let ids = kw
                    .import_keys(&op, batch)
                    .await
                    .map_err(|e| format!("{e} (in the keys after line {done}; the {done} before were imported)"))?;
                done += ids.len();
                for id in ids {
                    println!("{id}");
                }
            }
            eprintln!("imported {total} keys");
        }
        Command::Backup { path } => {
            let bar = progress_bar("{bar:40} {bytes}/{total_bytes} {elapsed}");
            let progress_bar = bar.clone();
            kw.backup(&path, move |done, total| {
                if let Some(bar) = &progress_bar {
                    bar.set_length(total);
                    bar.set_position(done);
                }
            })
            .await
            .map_err(show)?;
            if let Some(bar) = bar {
                bar.finish();
            }
            println!(
                "backed up to {}; to restore: stop keyward, copy it over the database file, start keyward",
                path.display()
            );
        }
        Command::SigningKey(SigningKeyCommand::Rotate) => {
            let count = kw.rotate_signing_key().await.map_err(show)?;
            println!(
                "added signing key {count}; restart keyward to sign with it (earlier keys stay valid and published)"
            );
        }
        Command::Check => {
            let (version, integrity) = kw.check_database().await.map_err(show)?;
            println!("config: ok");
            println!(
                "database: {} ({}), reachable",
                crate::startup::database_name(settings),
                kw.backend()
            );
            println!("schema: version {version} (this keyward: {})", kw.schema_version());
            println!("integrity: {integrity}");
            println!("active keys: {}", kw.active_key_count());
            if integrity != "ok" || version != kw.schema_version() {
                return Err("the database needs attention".into());
            }
        }
    }
    Ok(())
}
