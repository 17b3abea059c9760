//! Typed, layered configuration: built-in defaults, then the TOML file, then environment
//! variables `KEYWARD__SECTION__KEY` (lists comma-separated). One tree of serde types: each
//! setting is read straight into its validated form (addresses, durations, byte sizes, CIDR
//! blocks, lifetimes) by the `with` module it names below, and printed back by the same
//! module in the units people write, so `keyward config` loads back to the same settings. A
//! bad value stops start-up with a message naming the setting (`server.bind: …`).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::{Lifetime, Secret};

/// A setting that could not be read or is out of range.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

fn bad(setting: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError(format!("{setting}: {reason}"))
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
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
    pub usage: UsageSettings,
    pub dev: DevSettings,
}

/// Keys' hourly usage (`GET /v1/keys/{id}/usage`, the console's chart).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UsageSettings {
    /// How long hourly usage is kept; older hours are deleted.
    #[serde(with = "finite_duration")]
    pub retention: Duration,
}

impl Default for UsageSettings {
    fn default() -> Self {
        UsageSettings {
            retention: Duration::from_secs(90 * 86_400),
        }
    }
}

/// Local development.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevSettings {
    /// Let `serve --fixtures` load fixtures while the server binds an address other than
    /// loopback (known passwords and keys for anyone who reaches it).
    pub allow_fixtures: bool,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiSettings {
    /// Serve the web console under `/ui`.
    pub enabled: bool,
    /// How long a console session lasts after sign-in.
    #[serde(with = "finite_duration")]
    pub session_ttl: Duration,
    /// Mark the session cookie `Secure` even on plain HTTP (a TLS proxy in front). It is
    /// always `Secure` with `[server.tls]` or behind a trusted proxy saying `https`.
    pub secure_cookie: bool,
}

impl Default for UiSettings {
    fn default() -> Self {
        UiSettings {
            enabled: true,
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookie: false,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` (Prometheus).
    pub enabled: bool,
    /// Serve it on this address instead of the main one; `None` (`""`): the main listener.
    #[serde(with = "address_or_empty")]
    pub bind: Option<SocketAddr>,
    /// On the main listener, serve it to anyone (otherwise only to an admin or a key with
    /// `metrics:read`). A separate `bind` is always public: keep it on a private address.
    pub public: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            bind: None,
            public: false,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    #[serde(with = "address")]
    pub bind: SocketAddr,
    /// HTTP worker threads; 0 in the file: one per CPU.
    #[serde(deserialize_with = "workers")]
    pub workers: usize,
    /// Largest request body accepted, in bytes.
    #[serde(with = "byte_size")]
    pub body_limit: usize,
    #[serde(with = "finite_duration")]
    pub shutdown_timeout: Duration,
    /// Origins allowed to call the API from a browser; empty: CORS off.
    #[serde(deserialize_with = "origins")]
    pub cors_origins: Vec<String>,
    /// Only requests from these addresses may set `X-Forwarded-For` / `-Proto`.
    pub trusted_proxies: Vec<IpNet>,
    /// Serve HTTPS with this certificate chain and key; `None` (both empty): plain HTTP.
    #[serde(with = "tls")]
    pub tls: Option<TlsSettings>,
    /// Most connections open at once, across all workers.
    #[serde(deserialize_with = "at_least_one")]
    pub max_connections: usize,
    /// Longest time a client may take to send a whole request (headers and body); 408 past it.
    #[serde(with = "request_timeout")]
    pub request_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            workers: one_per_cpu(),
            body_limit: 64 * 1024,
            shutdown_timeout: Duration::from_secs(10),
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            tls: None,
            max_connections: 4096,
            request_timeout: Duration::from_secs(10),
        }
    }
}

fn one_per_cpu() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// PEM files of the certificate chain and its private key.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// PostgreSQL (`postgres://…`): several nodes on one database; `None` (`""`): SQLite at
    /// `path`. Never printed: it holds the password (`to_toml` says whether it is set).
    #[serde(deserialize_with = "postgres_url", skip_serializing)]
    pub url: Option<Secret>,
    #[serde(deserialize_with = "not_empty")]
    pub path: PathBuf,
    /// Read connections in the pool.
    #[serde(deserialize_with = "at_least_one")]
    pub pool_size: u32,
    /// Largest the database file may grow, in bytes; `None`: no cap.
    #[serde(with = "optional_byte_size", skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Serve from the database without writing to it: every write is a 503.
    pub read_only: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: None,
            path: PathBuf::from("keyward.db"),
            pool_size: 8,
            max_size: None,
            read_only: false,
        }
    }
}

/// How a node keeps up with the others on PostgreSQL.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// The change feed is read at least this often (a NOTIFY wakes it sooner).
    #[serde(with = "fine_duration")]
    pub poll_interval: Duration,
    /// Past this since the last successful read of the feed, the node refuses credentials.
    #[serde(with = "fine_duration")]
    pub max_staleness: Duration,
    /// Wake on the feed's NOTIFY (off: poll only, to measure the poll alone).
    pub notify: bool,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            poll_interval: Duration::from_secs(1),
            max_staleness: Duration::from_secs(10),
            notify: true,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    #[serde(with = "finite_duration")]
    pub access_token_ttl: Duration,
    /// `None`: generated once and kept in the database. Never printed (`to_toml` says
    /// whether it is set).
    #[serde(deserialize_with = "master_secret", skip_serializing)]
    pub secret: Option<Secret>,
    /// The bootstrap admin's password; `None`: generated on first start. Never printed.
    #[serde(deserialize_with = "admin_password", skip_serializing)]
    pub admin_password: Option<Secret>,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            access_token_ttl: Duration::from_secs(30 * 60),
            secret: None,
            admin_password: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySettings {
    #[serde(deserialize_with = "not_empty")]
    pub issuer: String,
    #[serde(with = "lifetime")]
    pub default_lifetime: Lifetime,
    #[serde(with = "optional_finite_duration", skip_serializing_if = "Option::is_none")]
    pub max_lifetime: Option<Duration>,
    /// Sign keys with Ed25519 (`algorithm = "EdDSA"`) instead of HS256.
    #[serde(rename = "algorithm", with = "algorithm")]
    pub eddsa: bool,
    /// Most credits a node reserves for a key at once (blocks start at 64, then are sized to
    /// last 30 s at the key's pace, between 64 and this): what a crash can lose of a key's
    /// balance at most, per node (under-serving it), and how many uses one database write
    /// covers at most.
    pub credit_block: u64,
}

impl Default for KeySettings {
    fn default() -> Self {
        KeySettings {
            issuer: "keyward".into(),
            default_lifetime: Lifetime::Never,
            max_lifetime: None,
            eddsa: false,
            credit_block: 1024,
        }
    }
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

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// An env_logger filter: `info`, `debug`, `keyward=debug,actix_web=warn`.
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings { level: "info".into() }
    }
}

/// An address or a CIDR block, for `trusted_proxies`: `10.0.0.0/8`, or `127.0.0.1` alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet(ipnet::IpNet);

impl IpNet {
    pub fn parse(s: &str) -> Option<IpNet> {
        let s = s.trim();
        let net = s
            .parse::<ipnet::IpNet>()
            .ok()
            .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))?;
        Some(IpNet(net))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client on a dual-stack socket shows as `::ffff:a.b.c.d`.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl std::fmt::Display for IpNet {
    /// `10.0.0.0/8`; a single address without its prefix.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

impl<'de> Deserialize<'de> for IpNet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        IpNet::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("expected an address or CIDR block; got {text:?}")))
    }
}

impl Serialize for IpNet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

// ---- how each kind of setting is read and written ----------------------------------------
//
// Each reads the setting's text (TOML, or an environment variable) into its validated form,
// and writes it back as people write it; a refusal says what is expected, and the loader
// puts the setting's name in front.

use serde::de::Error as _;
use serde::{Deserializer, Serializer};

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d)
}

mod address {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        let text = text(d)?;
        text.trim()
            .parse()
            .map_err(|_| D::Error::custom(format!("expected an address such as \"127.0.0.1:8080\"; got {text:?}")))
    }

    pub fn serialize<S: Serializer>(addr: &SocketAddr, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(addr)
    }
}

mod address_or_empty {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        match text(d)?.trim() {
            "" => Ok(None),
            text => text.parse().map(Some).map_err(|_| {
                D::Error::custom("expected an address such as \"127.0.0.1:9100\", or \"\" for the main listener")
            }),
        }
    }

    pub fn serialize<S: Serializer>(addr: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&addr.map(|a| a.to_string()).unwrap_or_default())
    }
}

/// A duration of the `expires` grammar that is not `never`.
fn finite(text: &str) -> Result<Duration, String> {
    Lifetime::parse(text)?
        .finite()
        .ok_or_else(|| "must be a finite duration, not \"never\"".to_owned())
}

mod finite_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        finite(&text(d)?).map_err(D::Error::custom)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::domain::duration_text(*d))
    }
}

/// A duration that may be shorter than a second: `250ms`, or the grammar's `1s`, `2m`, …
/// (for how often a node reads the change feed).
mod fine_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        const EXPECTED: &str = "expected a duration such as \"250ms\", \"1s\" or \"2m\"";
        let text = text(d)?.trim().to_ascii_lowercase();
        let duration = match text.strip_suffix("ms") {
            Some(n) => Duration::from_millis(n.trim().parse::<u64>().map_err(|_| D::Error::custom(EXPECTED))?),
            None if text.ends_with(|c: char| c.is_ascii_alphabetic()) && !text.contains(' ') => {
                finite(&text).map_err(|_| D::Error::custom(EXPECTED))?
            }
            None => return Err(D::Error::custom(EXPECTED)),
        };
        if duration < Duration::from_millis(10) {
            return Err(D::Error::custom("must be at least 10ms"));
        }
        Ok(duration)
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        if d.subsec_millis() == 0 {
            finite_duration::serialize(d, s)
        } else {
            s.serialize_str(&format!("{}ms", d.as_millis()))
        }
    }
}

mod optional_finite_duration {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        finite_duration::deserialize(d).map(Some)
    }

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => finite_duration::serialize(d, s),
            None => s.serialize_none(),
        }
    }
}

mod request_timeout {
    use super::*;
    pub use finite_duration::serialize;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let timeout = finite_duration::deserialize(d)?;
        if timeout < Duration::from_secs(1) {
            return Err(D::Error::custom("must be at least 1 second"));
        }
        Ok(timeout)
    }
}

mod lifetime {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Lifetime, D::Error> {
        Lifetime::parse(&text(d)?).map_err(D::Error::custom)
    }

    pub fn serialize<S: Serializer>(l: &Lifetime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&l.text())
    }
}

mod byte_size {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
        crate::domain::parse_byte_size(&text(d)?).map_err(D::Error::custom)
    }

    pub fn serialize<S: Serializer>(bytes: &usize, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::domain::byte_size_text(*bytes as u64))
    }
}

mod optional_byte_size {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        byte_size::deserialize(d).map(|b| Some(b as u64))
    }

    pub fn serialize<S: Serializer>(bytes: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => s.serialize_str(&crate::domain::byte_size_text(*b)),
            None => s.serialize_none(),
        }
    }
}

mod algorithm {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match text(d)?.as_str() {
            "HS256" => Ok(false),
            "EdDSA" => Ok(true),
            other => Err(D::Error::custom(format!(
                "expected \"HS256\" or \"EdDSA\"; got {other:?}"
            ))),
        }
    }

    pub fn serialize<S: Serializer>(eddsa: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *eddsa { "EdDSA" } else { "HS256" })
    }
}

/// `[server.tls]`: both files, or neither (both empty).
mod tls {
    use super::*;

    #[derive(Deserialize, Serialize, Default)]
    #[serde(deny_unknown_fields, default)]
    struct Files {
        cert: String,
        key: String,
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TlsSettings>, D::Error> {
        let files = Files::deserialize(d)?;
        match (files.cert.trim(), files.key.trim()) {
            ("", "") => Ok(None),
            ("", _) => Err(D::Error::custom("cert is needed with key")),
            (_, "") => Err(D::Error::custom("key is needed with cert")),
            (cert, key) => Ok(Some(TlsSettings {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            })),
        }
    }

    pub fn serialize<S: Serializer>(tls: &Option<TlsSettings>, s: S) -> Result<S::Ok, S::Error> {
        let shown = |p: &PathBuf| p.display().to_string();
        tls.as_ref()
            .map_or_else(Files::default, |t| Files {
                cert: shown(&t.cert),
                key: shown(&t.key),
            })
            .serialize(s)
    }
}

fn workers<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    Ok(match usize::deserialize(d)? {
        0 => one_per_cpu(),
        n => n,
    })
}

fn at_least_one<'de, D: Deserializer<'de>, T: Deserialize<'de> + PartialOrd + From<u8>>(d: D) -> Result<T, D::Error> {
    let n = T::deserialize(d)?;
    if n < T::from(1) {
        return Err(D::Error::custom("must be at least 1"));
    }
    Ok(n)
}

fn not_empty<'de, D: Deserializer<'de>, T: Deserialize<'de> + AsRef<std::ffi::OsStr>>(d: D) -> Result<T, D::Error> {
    let value = T::deserialize(d)?;
    if value.as_ref().to_string_lossy().trim().is_empty() {
        return Err(D::Error::custom("must not be empty"));
    }
    Ok(value)
}

fn origins<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let origins = Vec::<String>::deserialize(d)?;
    for origin in &origins {
        if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/') {
            return Err(D::Error::custom(format!(
                "expected an origin such as \"http://localhost:3000\"; got {origin:?}"
            )));
        }
    }
    Ok(origins)
}

fn postgres_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    let url = Secret::deserialize(d)?;
    match url.reveal().trim() {
        "" => Ok(None),
        text if text.starts_with("postgres://") || text.starts_with("postgresql://") => Ok(Some(Secret::new(text))),
        _ => Err(D::Error::custom(
            "expected a PostgreSQL url such as \"postgres://keyward:…@db:5432/keyward\", or \"\" for SQLite",
        )),
    }
}

fn master_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    let secret = Secret::deserialize(d)?;
    if secret.reveal().len() < 32 {
        return Err(D::Error::custom("must be at least 32 bytes"));
    }
    Ok(Some(secret))
}

fn admin_password<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    let password = Secret::deserialize(d)?;
    if !(8..=1024).contains(&password.reveal().chars().count()) {
        return Err(D::Error::custom("must be 8 to 1024 characters"));
    }
    Ok(Some(password))
}

/// What the config crate says is wrong, without the key it appends: the path in front names
/// the setting. Where the value came from (a file, the environment) is kept.
fn reason(e: config::ConfigError, from: Option<String>) -> String {
    let from = |origin: Option<String>| origin.or(from).map(|o| format!(" (in {o})")).unwrap_or_default();
    match e {
        config::ConfigError::At { error, origin, .. } => reason(*error, origin),
        config::ConfigError::Type {
            unexpected,
            expected,
            origin,
            ..
        } => format!("invalid type: {unexpected}, expected {expected}{}", from(origin)),
        config::ConfigError::Message(message) => format!("{message}{}", from(None)),
        other => other.to_string(),
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
        let mut settings = Settings::read(builder)?;
        if settings.auth.admin_password.is_none()
            && let Ok(p) = std::env::var("KEYWARD_ADMIN_PASSWORD")
        {
            settings.auth.admin_password = Some(Secret::new(p));
        }
        Ok(settings)
    }

    /// The settings `builder`'s sources make, each checked as it is read; an error names
    /// the setting from where the reader stood.
    fn read(builder: config::ConfigBuilder<config::builder::DefaultState>) -> Result<Settings, ConfigError> {
        let config = builder.build().map_err(|e| ConfigError(e.to_string()))?;
        let settings: Settings = serde_path_to_error::deserialize(config).map_err(|e| {
            let setting = e.path().to_string();
            bad(&setting, reason(e.into_inner(), None))
        })?;
        settings.check()?;
        Ok(settings)
    }

    /// The rules between settings.
    fn check(&self) -> Result<(), ConfigError> {
        if self.database.url.is_some() && self.database.max_size.is_some() {
            return Err(bad(
                "database.max_size",
                "caps a SQLite file; on PostgreSQL (database.url is set) limit the database in PostgreSQL itself",
            ));
        }
        if self.cluster.max_staleness <= self.cluster.poll_interval {
            return Err(bad(
                "cluster.max_staleness",
                "must be longer than cluster.poll_interval (a node reads the feed at least that often)",
            ));
        }
        if let Some(max) = self.keys.max_lifetime
            && self.keys.default_lifetime.finite().is_none_or(|d| d > max)
        {
            return Err(bad("keys.default_lifetime", "must not exceed keys.max_lifetime"));
        }
        if !(1..=1_000_000).contains(&self.keys.credit_block) {
            return Err(bad("keys.credit_block", "must be 1 to 1000000"));
        }
        Ok(())
    }

    /// The effective settings as a config file (`keyward config`): it loads back to the same
    /// settings, with durations and sizes in the units people write (`64KiB`, `30m`). Secrets
    /// are never printed: each is a comment saying whether it is set, as are unset options.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        let text = toml::to_string(self).map_err(|e| ConfigError(format!("printing the settings: {e}")))?;
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
        notes.push((
            "database",
            match self.database.url {
                Some(_) => "# url = (set, not shown: it holds the password; give it as KEYWARD__DATABASE__URL)",
                None => "# url = (unset: SQLite at path), e.g. \"postgres://keyward:…@db:5432/keyward\"",
            }
            .to_owned(),
        ));
        if self.database.max_size.is_none() {
            notes.push(("database", "# max_size = (unset: no cap), e.g. \"1GiB\"".to_owned()));
        }
        if self.keys.max_lifetime.is_none() {
            notes.push(("keys", "# max_lifetime = (unset: no maximum), e.g. \"365d\"".to_owned()));
        }
        Ok(with_notes(&text, &notes))
    }

    /// The built-in defaults (no file, no environment).
    pub fn defaults() -> Settings {
        Settings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = from_toml("");
        let s = s.as_ref().map_err(String::as_str);
        assert_eq!(s.map(|s| s.server.bind.to_string()), Ok("127.0.0.1:8080".to_owned()));
        assert_eq!(s.map(|s| s.server.body_limit), Ok(65536));
        assert_eq!(s.map(|s| s.auth.access_token_ttl), Ok(Duration::from_secs(1800)));
        assert_eq!(s.map(|s| s.keys.default_lifetime), Ok(Lifetime::Never));
    }

    #[test]
    fn the_shipped_config_file_matches_the_defaults() {
        let text = include_str!("../config.toml");
        let shipped = from_toml(text).map(|s| format!("{s:?}"));
        let defaults = from_toml("").map(|s| format!("{s:?}"));
        assert_eq!(shipped, defaults);
        assert_eq!(defaults, Ok(format!("{:?}", Settings::defaults())));
    }

    /// Settings from a TOML text, as `Settings::load` reads a file (without the environment).
    fn from_toml(text: &str) -> Result<Settings, String> {
        Settings::read(config::Config::builder().add_source(config::File::from_str(text, config::FileFormat::Toml)))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_feed_can_be_read_more_often_than_once_a_second() {
        let s = from_toml("[cluster]\npoll_interval = \"250ms\"\nmax_staleness = \"3s\"");
        let s = s.as_ref().map_err(String::as_str);
        assert_eq!(s.map(|s| s.cluster.poll_interval), Ok(Duration::from_millis(250)));
        let printed = s.map(|s| s.to_toml().unwrap_or_default()).unwrap_or_default();
        assert!(printed.contains("poll_interval = \"250ms\""), "{printed}");
        assert!(printed.contains("max_staleness = \"3s\""), "{printed}");
        for refused in ["5ms", "xms", "-1ms"] {
            let text = format!("[cluster]\npoll_interval = \"{refused}\"");
            assert!(from_toml(&text).is_err(), "{refused}");
        }
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
        let err = from_toml("[auth]\nsecret = \"short\"").err().unwrap_or_default();
        assert!(err.contains("auth.secret"), "{err}");
        let err = from_toml("[server]\nbind = \"nowhere\"").err().unwrap_or_default();
        assert!(err.contains("server.bind"), "{err}");
        for (text, setting) in [
            (
                "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"nowhere\"]",
                "server.trusted_proxies",
            ),
            ("[server]\nrequest_timeout = \"0s\"", "server.request_timeout"),
            ("[server.tls]\ncert = \"cert.pem\"", "server.tls"),
            ("[database]\npool_size = 0", "database.pool_size"),
            ("[keys]\nmax_lifetime = \"forever\"", "keys.max_lifetime"),
            ("[keys]\nmax_lifetime = \"30d\"", "keys.default_lifetime"),
            ("[keys]\nalgorithm = \"RS256\"", "keys.algorithm"),
            ("[metrics]\nbind = \"nowhere\"", "metrics.bind"),
            ("[ui]\ncolour = \"blue\"", "ui"),
        ] {
            let err = from_toml(text).err().unwrap_or_default();
            assert!(err.contains(setting), "{text}: {err}");
        }
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
