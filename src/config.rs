//! Typed, layered configuration: built-in defaults, then the TOML file, then environment
//! variables `KEYWARD__SECTION__KEY`. Raw values are validated into [`Settings`]; a bad one
//! stops start-up with a message naming the setting.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{Lifetime, Secret, byte_size_text, duration_text, parse_byte_size};

/// A setting that could not be read or is out of range.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

fn bad(setting: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{setting}: {reason}"))
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub cluster: ClusterSettings,
    pub auth: AuthSettings,
    pub keys: KeySettings,
    pub dialects: DialectSettings,
    pub log: LogSettings,
    pub metrics: MetricsSettings,
    pub ui: UiSettings,
}

#[derive(Clone, Debug)]
pub struct UiSettings {
    /// Serve the web console under `/ui`.
    pub enabled: bool,
    /// How long a console session lasts after sign-in.
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` even on plain HTTP (a TLS proxy in front). It is
    /// always `Secure` with `[server.tls]` or behind a trusted proxy saying `https`.
    pub secure_cookie: bool,
}

#[derive(Clone, Debug)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` (Prometheus).
    pub enabled: bool,
    /// Serve it on this address instead of the main one; `None`: the main listener.
    pub bind: Option<SocketAddr>,
    /// On the main listener, serve it to anyone (otherwise only to an admin or a key with
    /// `metrics:read`). A separate `bind` is always public: keep it on a private address.
    pub public: bool,
}

#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    /// HTTP worker threads.
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    pub shutdown_timeout: Duration,
    /// Origins allowed to call the API from a browser; empty: CORS off.
    pub cors_origins: Vec<String>,
    /// Only requests from these addresses may set `X-Forwarded-For` / `-Proto`.
    pub trusted_proxies: Vec<IpNet>,
    /// Serve HTTPS with this certificate chain and key; `None`: plain HTTP.
    pub tls: Option<TlsSettings>,
    /// Most connections open at once, across all workers.
    pub max_connections: usize,
    /// Longest time a client may take to send a whole request (headers and body); 408 past it.
    pub request_timeout: Duration,
}

/// PEM files of the certificate chain and its private key.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug)]
pub struct DatabaseSettings {
    /// PostgreSQL (`postgres://…`): several nodes on one database. `None`: SQLite at `path`.
    pub url: Option<Secret>,
    pub path: PathBuf,
    /// Read connections in the pool.
    pub pool_size: u32,
    /// Largest the database file may grow, in bytes; `None`: no cap.
    pub max_size: Option<u64>,
    /// Serve from the database without writing to it: every write is a 503.
    pub read_only: bool,
}

/// How a node keeps up with the others on PostgreSQL.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// The change feed is read at least this often (a NOTIFY wakes it sooner).
    pub poll_interval: Duration,
    /// Past this since the last successful read of the feed, the node refuses credentials.
    pub max_staleness: Duration,
    /// Wake on the feed's NOTIFY (off: poll only, for measuring the poll alone).
    pub notify: bool,
}

#[derive(Clone, Debug)]
pub struct AuthSettings {
    pub access_token_ttl: Duration,
    /// `None`: generated once and kept in the database.
    pub secret: Option<Secret>,
    /// The bootstrap admin's password; `None`: generated on first start.
    pub admin_password: Option<Secret>,
}

#[derive(Clone, Debug)]
pub struct KeySettings {
    pub issuer: String,
    /// Sign keys with Ed25519 (`algorithm = "EdDSA"`) instead of HS256.
    pub eddsa: bool,
    pub default_lifetime: Lifetime,
    pub max_lifetime: Option<Duration>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialectSettings {
    pub seed000: bool,
    pub seed001: bool,
    pub seed002: bool,
}

impl Default for DialectSettings {
    fn default() -> Self {
        DialectSettings {
            seed000: true,
            seed001: true,
            seed002: true,
        }
    }
}

#[derive(Clone, Debug)]
pub struct LogSettings {
    /// An env_logger filter: `info`, `debug`, `keyward=debug,actix_web=warn`.
    pub level: String,
}

/// An address or a CIDR block, for `trusted_proxies`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn parse(s: &str) -> Option<IpNet> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
            None => (s.parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpNet {
    /// `10.0.0.0/8`; a single address without its prefix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let whole = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == whole {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// `text` (TOML) with each note's line added at the end of its table's lines.
fn with_notes(text: &str, notes: &[(&str, String)]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut table = "";
    let flush = |out: &mut Vec<String>, table: &str| {
        // Before the blank lines that end the table.
        let at = out.len() - out.iter().rev().take_while(|l| l.is_empty()).count();
        let lines = notes.iter().filter(|(t, _)| *t == table).map(|(_, line)| line.clone());
        out.splice(at..at, lines);
    };
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            flush(&mut out, table);
            table = name;
        }
        out.push(line.to_owned());
    }
    flush(&mut out, table);
    let mut text = out.join("\n");
    text.push('\n');
    text
}

// ---- raw, as written in TOML / env -----------------------------------------------------

// Raw settings are also what `keyward config` prints (serialized back from `Settings`), so
// a printed file loads to the same settings.
#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Raw {
    server: RawServer,
    database: RawDatabase,
    cluster: RawCluster,
    auth: RawAuth,
    keys: RawKeys,
    dialects: DialectSettings,
    log: RawLog,
    metrics: RawMetrics,
    ui: RawUi,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawUi {
    enabled: bool,
    session_ttl: String,
    secure_cookie: bool,
}

impl Default for RawUi {
    fn default() -> Self {
        RawUi {
            enabled: true,
            session_ttl: "12h".into(),
            secure_cookie: false,
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawMetrics {
    enabled: bool,
    bind: String,
    public: bool,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            enabled: true,
            bind: String::new(),
            public: false,
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawServer {
    bind: String,
    workers: usize,
    body_limit: String,
    shutdown_timeout: String,
    cors_origins: Vec<String>,
    trusted_proxies: Vec<String>,
    tls: RawTls,
    max_connections: usize,
    request_timeout: String,
}

#[derive(Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RawTls {
    cert: String,
    key: String,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            bind: "127.0.0.1:8080".into(),
            workers: 0,
            body_limit: "64KiB".into(),
            shutdown_timeout: "10s".into(),
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            tls: RawTls::default(),
            max_connections: 4096,
            request_timeout: "10s".into(),
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    url: String,
    path: PathBuf,
    pool_size: u32,
    max_size: Option<String>,
    read_only: bool,
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase {
            url: String::new(),
            path: PathBuf::from("keyward.db"),
            pool_size: 8,
            max_size: None,
            read_only: false,
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawCluster {
    poll_interval: String,
    max_staleness: String,
    notify: bool,
}

impl Default for RawCluster {
    fn default() -> Self {
        RawCluster {
            poll_interval: "1s".into(),
            max_staleness: "10s".into(),
            notify: true,
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawAuth {
    access_token_ttl: String,
    // Secrets are never printed (`Secret` cannot be serialized); `to_toml` adds a comment.
    #[serde(skip_serializing)]
    secret: Option<Secret>,
    #[serde(skip_serializing)]
    admin_password: Option<Secret>,
}

impl Default for RawAuth {
    fn default() -> Self {
        RawAuth {
            access_token_ttl: "30m".into(),
            secret: None,
            admin_password: None,
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawKeys {
    issuer: String,
    default_lifetime: String,
    max_lifetime: Option<String>,
    algorithm: String,
}

impl Default for RawKeys {
    fn default() -> Self {
        RawKeys {
            issuer: "keyward".into(),
            default_lifetime: "never".into(),
            max_lifetime: None,
            algorithm: "HS256".into(),
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog { level: "info".into() }
    }
}

fn finite(setting: &str, text: &str) -> Result<Duration, ConfigError> {
    Lifetime::parse(text)
        .map_err(|e| bad(setting, e))?
        .finite()
        .ok_or_else(|| bad(setting, "must be a finite duration, not \"never\""))
}

impl Settings {
    /// Loads defaults, then `file` (or `./config.toml` if it exists), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder();
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError(format!("config file {} does not exist", path.display())));
                }
                builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
            }
            None => {
                builder =
                    builder.add_source(config::File::new("config.toml", config::FileFormat::Toml).required(false));
            }
        }
        builder = builder.add_source(
            config::Environment::with_prefix("KEYWARD")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.cors_origins")
                .with_list_parse_key("server.trusted_proxies"),
        );
        let raw: Raw = builder
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| ConfigError(e.to_string()))?;
        let mut settings = Settings::from_raw(raw)?;
        if settings.auth.admin_password.is_none()
            && let Ok(p) = std::env::var("KEYWARD_ADMIN_PASSWORD")
        {
            settings.auth.admin_password = Some(Secret::new(p));
        }
        Ok(settings)
    }

    /// The effective settings as a config file (`keyward config`): it loads back to the same
    /// settings, with durations and sizes in the units people write (`64KiB`, `30m`). Secrets
    /// are never printed: each is a comment saying whether it is set, as are unset options.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let text = toml::to_string(&self.to_raw()).map_err(|e| ConfigError(format!("printing the settings: {e}")))?;
        let secret = |s: &Option<Secret>, unset: &str| {
            if s.is_some() {
                "(set, not shown)".to_owned()
            } else {
                format!("(unset: {unset})")
            }
        };
        let mut notes: Vec<(&str, String)> = vec![
            (
                "auth",
                format!(
                    "# secret = {}",
                    secret(&self.auth.secret, "generated, kept in the database")
                ),
            ),
            (
                "auth",
                format!(
                    "# admin_password = {}",
                    secret(&self.auth.admin_password, "generated on first start")
                ),
            ),
        ];
        if self.database.url.is_some() {
            notes.push((
                "database",
                "# url = (set, not shown: it holds the password; give it as KEYWARD__DATABASE__URL)".to_owned(),
            ));
        }
        if self.database.max_size.is_none() {
            notes.push(("database", "# max_size = (unset: no cap), e.g. \"1GiB\"".to_owned()));
        }
        if self.keys.max_lifetime.is_none() {
            notes.push(("keys", "# max_lifetime = (unset: no maximum), e.g. \"365d\"".to_owned()));
        }
        Ok(with_notes(&text, &notes))
    }

    /// The settings as they would be written in the file.
    fn to_raw(&self) -> Raw {
        let s = &self.server;
        let d = &self.database;
        let k = &self.keys;
        Raw {
            server: RawServer {
                bind: s.bind.to_string(),
                workers: s.workers,
                body_limit: byte_size_text(s.body_limit as u64),
                shutdown_timeout: duration_text(s.shutdown_timeout),
                cors_origins: s.cors_origins.clone(),
                trusted_proxies: s.trusted_proxies.iter().map(IpNet::to_string).collect(),
                tls: s.tls.as_ref().map_or_else(RawTls::default, |t| RawTls {
                    cert: t.cert.display().to_string(),
                    key: t.key.display().to_string(),
                }),
                max_connections: s.max_connections,
                request_timeout: duration_text(s.request_timeout),
            },
            database: RawDatabase {
                // Never printed: it holds the password (a note says whether it is set).
                url: String::new(),
                path: d.path.clone(),
                pool_size: d.pool_size,
                max_size: d.max_size.map(byte_size_text),
                read_only: d.read_only,
            },
            cluster: RawCluster {
                poll_interval: duration_text(self.cluster.poll_interval),
                max_staleness: duration_text(self.cluster.max_staleness),
                notify: self.cluster.notify,
            },
            auth: RawAuth {
                access_token_ttl: duration_text(self.auth.access_token_ttl),
                secret: None,
                admin_password: None,
            },
            keys: RawKeys {
                issuer: k.issuer.clone(),
                default_lifetime: k.default_lifetime.text(),
                max_lifetime: k.max_lifetime.map(duration_text),
                algorithm: if k.eddsa { "EdDSA" } else { "HS256" }.to_owned(),
            },
            dialects: self.dialects.clone(),
            log: RawLog {
                level: self.log.level.clone(),
            },
            metrics: RawMetrics {
                enabled: self.metrics.enabled,
                bind: self.metrics.bind.map(|b| b.to_string()).unwrap_or_default(),
                public: self.metrics.public,
            },
            ui: RawUi {
                enabled: self.ui.enabled,
                session_ttl: duration_text(self.ui.session_ttl),
                secure_cookie: self.ui.secure_cookie,
            },
        }
    }

    /// The built-in defaults (no file, no environment).
    pub fn defaults() -> Settings {
        // The defaults are valid by construction; a unit test keeps them so.
        Settings::from_raw(Raw::default()).unwrap_or_else(|e| unreachable!("built-in defaults are invalid: {e}"))
    }

    fn from_raw(raw: Raw) -> Result<Settings, ConfigError> {
        let bind = raw.server.bind.parse().map_err(|_| {
            bad(
                "server.bind",
                format!(
                    "expected an address such as \"127.0.0.1:8080\"; got {:?}",
                    raw.server.bind
                ),
            )
        })?;
        let workers = match raw.server.workers {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        let body_limit = parse_byte_size(&raw.server.body_limit).map_err(|e| bad("server.body_limit", e))?;
        let shutdown_timeout = finite("server.shutdown_timeout", &raw.server.shutdown_timeout)?;
        let request_timeout = finite("server.request_timeout", &raw.server.request_timeout)?;
        if request_timeout < Duration::from_secs(1) {
            return Err(bad("server.request_timeout", "must be at least 1 second"));
        }
        if raw.server.max_connections == 0 {
            return Err(bad("server.max_connections", "must be at least 1"));
        }
        let trusted_proxies = raw
            .server
            .trusted_proxies
            .iter()
            .map(|s| {
                IpNet::parse(s.trim()).ok_or_else(|| {
                    bad(
                        "server.trusted_proxies",
                        format!("expected an address or CIDR block; got {s:?}"),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        for origin in &raw.server.cors_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/') {
                return Err(bad(
                    "server.cors_origins",
                    format!("expected an origin such as \"http://localhost:3000\"; got {origin:?}"),
                ));
            }
        }
        let tls = match (raw.server.tls.cert.trim(), raw.server.tls.key.trim()) {
            ("", "") => None,
            ("", _) => return Err(bad("server.tls.cert", "is needed with server.tls.key")),
            (_, "") => return Err(bad("server.tls.key", "is needed with server.tls.cert")),
            (cert, key) => Some(TlsSettings {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            }),
        };
        let metrics_bind = match raw.metrics.bind.trim() {
            "" => None,
            text => Some(text.parse().map_err(|_| {
                bad(
                    "metrics.bind",
                    "expected an address such as \"127.0.0.1:9100\", or \"\" for the main listener",
                )
            })?),
        };
        let max_size = raw
            .database
            .max_size
            .as_deref()
            .map(|m| {
                parse_byte_size(m)
                    .map(|b| b as u64)
                    .map_err(|e| bad("database.max_size", e))
            })
            .transpose()?;
        if raw.database.pool_size == 0 {
            return Err(bad("database.pool_size", "must be at least 1"));
        }
        let url = match raw.database.url.trim() {
            "" => None,
            url if url.starts_with("postgres://") || url.starts_with("postgresql://") => Some(Secret::new(url)),
            _ => {
                return Err(bad(
                    "database.url",
                    "expected a PostgreSQL url such as \"postgres://keyward:…@db:5432/keyward\", or empty for SQLite",
                ));
            }
        };
        if url.is_some() && max_size.is_some() {
            return Err(bad(
                "database.max_size",
                "caps a SQLite file; on PostgreSQL (database.url is set) limit the database in PostgreSQL itself",
            ));
        }
        let poll_interval = finite("cluster.poll_interval", &raw.cluster.poll_interval)?;
        let max_staleness = finite("cluster.max_staleness", &raw.cluster.max_staleness)?;
        if max_staleness <= poll_interval {
            return Err(bad(
                "cluster.max_staleness",
                "must be longer than cluster.poll_interval (a node reads the feed at least that often)",
            ));
        }
        if raw.database.path.as_os_str().is_empty() {
            return Err(bad("database.path", "must not be empty"));
        }
        let access_token_ttl = finite("auth.access_token_ttl", &raw.auth.access_token_ttl)?;
        if let Some(secret) = &raw.auth.secret
            && secret.reveal().len() < 32
        {
            return Err(bad("auth.secret", "must be at least 32 bytes"));
        }
        if let Some(p) = &raw.auth.admin_password
            && !(8..=1024).contains(&p.reveal().chars().count())
        {
            return Err(bad("auth.admin_password", "must be 8 to 1024 characters"));
        }
        if raw.keys.issuer.trim().is_empty() {
            return Err(bad("keys.issuer", "must not be empty"));
        }
        let default_lifetime =
            Lifetime::parse(&raw.keys.default_lifetime).map_err(|e| bad("keys.default_lifetime", e))?;
        let max_lifetime = raw
            .keys
            .max_lifetime
            .as_deref()
            .map(|m| finite("keys.max_lifetime", m))
            .transpose()?;
        if let Some(max) = max_lifetime
            && default_lifetime.finite().is_none_or(|d| d > max)
        {
            return Err(bad("keys.default_lifetime", "must not exceed keys.max_lifetime"));
        }
        let eddsa = match raw.keys.algorithm.as_str() {
            "HS256" => false,
            "EdDSA" => true,
            other => {
                return Err(bad(
                    "keys.algorithm",
                    format!("expected \"HS256\" or \"EdDSA\"; got {other:?}"),
                ));
            }
        };
        let session_ttl = finite("ui.session_ttl", &raw.ui.session_ttl)?;
        Ok(Settings {
            server: ServerSettings {
                bind,
                workers,
                body_limit,
                shutdown_timeout,
                cors_origins: raw.server.cors_origins,
                trusted_proxies,
                tls,
                max_connections: raw.server.max_connections,
                request_timeout,
            },
            database: DatabaseSettings {
                url,
                path: raw.database.path,
                pool_size: raw.database.pool_size,
                max_size,
                read_only: raw.database.read_only,
            },
            cluster: ClusterSettings {
                poll_interval,
                max_staleness,
                notify: raw.cluster.notify,
            },
            auth: AuthSettings {
                access_token_ttl,
                secret: raw.auth.secret,
                admin_password: raw.auth.admin_password,
            },
            keys: KeySettings {
                issuer: raw.keys.issuer,
                eddsa,
                default_lifetime,
                max_lifetime,
            },
            dialects: raw.dialects,
            log: LogSettings { level: raw.log.level },
            metrics: MetricsSettings {
                enabled: raw.metrics.enabled,
                bind: metrics_bind,
                public: raw.metrics.public,
            },
            ui: UiSettings {
                enabled: raw.ui.enabled,
                session_ttl,
                secure_cookie: raw.ui.secure_cookie,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = Settings::from_raw(Raw::default()).map_err(|e| e.to_string());
        let s = s.as_ref().map_err(String::as_str);
        assert_eq!(s.map(|s| s.server.bind.to_string()), Ok("127.0.0.1:8080".to_owned()));
        assert_eq!(s.map(|s| s.server.body_limit), Ok(65536));
        assert_eq!(s.map(|s| s.auth.access_token_ttl), Ok(Duration::from_secs(1800)));
        assert_eq!(s.map(|s| s.keys.default_lifetime), Ok(Lifetime::Never));
    }

    #[test]
    fn the_shipped_config_file_matches_the_defaults() {
        let text = include_str!("../config.toml");
        let raw: Raw = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize)
            .unwrap_or_else(|e| panic!("config.toml: {e}"));
        let shipped = Settings::from_raw(raw)
            .map(|s| format!("{s:?}"))
            .map_err(|e| e.to_string());
        let defaults = Settings::from_raw(Raw::default())
            .map(|s| format!("{s:?}"))
            .map_err(|e| e.to_string());
        assert_eq!(shipped, defaults);
    }

    /// Settings from a TOML text, as `Settings::load` reads a file (without the environment).
    fn from_toml(text: &str) -> Result<Settings, String> {
        let raw: Raw = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()
            .and_then(config::Config::try_deserialize)
            .map_err(|e| e.to_string())?;
        Settings::from_raw(raw).map_err(|e| e.to_string())
    }

    #[test]
    fn the_printed_settings_load_back_to_the_same_settings() {
        let changed = r#"
            [server]
            body_limit = "1MiB"
            shutdown_timeout = "90s"
            trusted_proxies = ["10.0.0.0/8", "127.0.0.1"]
            cors_origins = ["http://localhost:3000"]
            [database]
            path = "/var/lib/keyward/keyward.db"
            max_size = "1GiB"
            [keys]
            default_lifetime = "30d"
            max_lifetime = "1 year"
            [metrics]
            bind = "127.0.0.1:9100"
            [ui]
            session_ttl = "8 hours"
        "#;
        for text in ["", changed] {
            let settings = from_toml(text).unwrap_or_else(|e| panic!("{e}"));
            let printed = settings.to_toml().unwrap_or_else(|e| panic!("{e}"));
            let again = from_toml(&printed).unwrap_or_else(|e| panic!("{e}\n{printed}"));
            assert_eq!(format!("{again:?}"), format!("{settings:?}"), "{printed}");
        }
        let printed = from_toml(changed).and_then(|s| s.to_toml().map_err(|e| e.to_string()));
        let printed = printed.unwrap_or_default();
        for line in [
            "body_limit = \"1MiB\"",
            "shutdown_timeout = \"90s\"",
            "max_lifetime = \"365d\"",
            "session_ttl = \"8h\"",
            "trusted_proxies = [\"10.0.0.0/8\", \"127.0.0.1\"]",
            "# secret = (unset: generated, kept in the database)",
        ] {
            assert!(printed.lines().any(|l| l == line), "{line} in\n{printed}");
        }
    }

    #[test]
    fn secrets_are_printed_as_comments_only() {
        let mut settings = Settings::defaults();
        settings.auth.secret = Some(Secret::new("a configured secret of thirty-two bytes"));
        settings.auth.admin_password = Some(Secret::new("an admin password"));
        let printed = settings.to_toml().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !printed.contains("thirty-two") && !printed.contains("an admin password"),
            "{printed}"
        );
        let auth: Vec<&str> = printed
            .lines()
            .skip_while(|l| *l != "[auth]")
            .take_while(|l| !l.is_empty())
            .collect();
        assert_eq!(
            auth,
            [
                "[auth]",
                "access_token_ttl = \"30m\"",
                "# secret = (set, not shown)",
                "# admin_password = (set, not shown)"
            ]
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let raw = Raw {
            auth: RawAuth {
                secret: Some(Secret::new("short")),
                ..RawAuth::default()
            },
            ..Raw::default()
        };
        let err = Settings::from_raw(raw).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("auth.secret"), "{err}");
        let raw = Raw {
            server: RawServer {
                bind: "nowhere".into(),
                ..RawServer::default()
            },
            ..Raw::default()
        };
        let err = Settings::from_raw(raw).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("server.bind"), "{err}");
    }

    #[test]
    fn cidr_blocks() {
        let net = IpNet::parse("10.0.0.0/8");
        assert!(net.is_some_and(|n| n.contains("10.1.2.3".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))));
        assert!(net.is_some_and(|n| !n.contains("11.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])))));
        assert!(IpNet::parse("127.0.0.1").is_some_and(|n| n.contains(IpAddr::from([127, 0, 0, 1]))));
        assert!(IpNet::parse("10.0.0.0/33").is_none());
    }
}
