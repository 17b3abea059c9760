//! Typed, layered configuration: built-in defaults, then the TOML file, then environment
//! variables `KEYWARD__SECTION__KEY`. Raw values are validated into [`Settings`]; a bad one
//! stops start-up with a message naming the setting.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::domain::{Lifetime, Secret, parse_byte_size};

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
    pub path: PathBuf,
    /// Read connections in the pool.
    pub pool_size: u32,
    /// Largest the database file may grow, in bytes; `None`: no cap.
    pub max_size: Option<u64>,
    /// Serve from the database without writing to it: every write is a 503.
    pub read_only: bool,
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

#[derive(Clone, Debug, Deserialize)]
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

// ---- raw, as written in TOML / env -----------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Raw {
    server: RawServer,
    database: RawDatabase,
    auth: RawAuth,
    keys: RawKeys,
    dialects: DialectSettings,
    log: RawLog,
    metrics: RawMetrics,
    ui: RawUi,
}

#[derive(Deserialize)]
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

#[derive(Deserialize)]
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

#[derive(Deserialize)]
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

#[derive(Deserialize, Default)]
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDatabase {
    path: PathBuf,
    pool_size: u32,
    max_size: Option<String>,
    read_only: bool,
}

impl Default for RawDatabase {
    fn default() -> Self {
        RawDatabase {
            path: PathBuf::from("keyward.db"),
            pool_size: 8,
            max_size: None,
            read_only: false,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAuth {
    access_token_ttl: String,
    secret: Option<Secret>,
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

#[derive(Deserialize)]
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

#[derive(Deserialize)]
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

    /// The effective settings as TOML, every secret shown as `"***"` (for `keyward config`).
    pub fn to_toml_redacted(&self) -> String {
        let list = |items: &[String]| {
            format!(
                "[{}]",
                items.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
            )
        };
        let lifetime = |l: Lifetime| match l.finite() {
            None => "\"never\"".to_owned(),
            Some(d) => format!("\"{}s\"", d.as_secs()),
        };
        let secret = |s: &Option<Secret>| {
            if s.is_some() {
                "\"***\"".to_owned()
            } else {
                "\"\" # unset".to_owned()
            }
        };
        let s = &self.server;
        let d = &self.database;
        let a = &self.auth;
        let k = &self.keys;
        let proxies: Vec<String> = s
            .trusted_proxies
            .iter()
            .map(|p| format!("{}/{}", p.addr, p.prefix))
            .collect();
        format!(
            "[server]\nbind = \"{}\"\nworkers = {}\nbody_limit = \"{}B\"\nshutdown_timeout = \"{}s\"\ncors_origins = {}\ntrusted_proxies = {}\nmax_connections = {}\nrequest_timeout = \"{}s\"\n\n\
             [server.tls]\ncert = {:?}\nkey = {:?}\n\n\
             [database]\npath = {:?}\npool_size = {}\nmax_size = {}\nread_only = {}\n\n\
             [auth]\naccess_token_ttl = \"{}s\"\nsecret = {}\nadmin_password = {}\n\n\
             [keys]\nissuer = {:?}\ndefault_lifetime = {}\nmax_lifetime = {}\nalgorithm = \"{}\"\n\n\
             [dialects]\nseed000 = {}\nseed001 = {}\nseed002 = {}\n\n\
             [log]\nlevel = {:?}\n\n\
             [metrics]\nenabled = {}\nbind = \"{}\"\npublic = {}\n\n\
             [ui]\nenabled = {}\nsession_ttl = \"{}s\"\nsecure_cookie = {}\n",
            s.bind,
            s.workers,
            s.body_limit,
            s.shutdown_timeout.as_secs(),
            list(&s.cors_origins),
            list(&proxies),
            s.max_connections,
            s.request_timeout.as_secs(),
            s.tls.as_ref().map(|t| t.cert.display().to_string()).unwrap_or_default(),
            s.tls.as_ref().map(|t| t.key.display().to_string()).unwrap_or_default(),
            d.path.display().to_string(),
            d.pool_size,
            d.max_size
                .map_or_else(|| "\"\" # unset".to_owned(), |m| format!("\"{m}B\"")),
            d.read_only,
            a.access_token_ttl.as_secs(),
            secret(&a.secret),
            secret(&a.admin_password),
            k.issuer,
            lifetime(k.default_lifetime),
            k.max_lifetime
                .map_or_else(|| "\"\" # unset".to_owned(), |m| format!("\"{}s\"", m.as_secs())),
            if k.eddsa { "EdDSA" } else { "HS256" },
            self.dialects.seed000,
            self.dialects.seed001,
            self.dialects.seed002,
            self.log.level,
            self.metrics.enabled,
            self.metrics.bind.map(|b| b.to_string()).unwrap_or_default(),
            self.metrics.public,
            self.ui.enabled,
            self.ui.session_ttl.as_secs(),
            self.ui.secure_cookie,
        )
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
                path: raw.database.path,
                pool_size: raw.database.pool_size,
                max_size,
                read_only: raw.database.read_only,
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
