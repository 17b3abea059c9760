//! The fixtures file (`keyward serve --fixtures FILE`, `keyward fixtures apply|keys FILE`):
//! TOML read into the domain's [`Fixtures`], every value checked, errors naming the entry.
//! The example is `dev.toml` at the top of the repository.
//!
//! ```toml
//! [[users]]
//! username = "ada"            # password, email?, role? ("user" or "admin")
//! password = "ada-dev-password"
//!
//! [[keys]]
//! user = "ada"                # name, id?, scopes?, meta?, expires? ("never" or RFC 3339)
//! name = "frontend"
//! key = "dev_ada_frontend"    # a literal key; without one, `id` is required and the key
//!                             # is a JWT minted from it and the configured [auth] secret
//! ratelimits = [{ name = "requests", limit = 100, duration = "1m" }]
//! credits = { remaining = 1000, refill = { interval = "monthly", amount = 1000 } }
//! ```
//!
//! `ratelimits` and `credits` have the shapes of the native API's key create, and are read
//! by its functions (`crate::api::limits`): one parser, the same errors.

use std::path::Path;

use serde::Deserialize;

use crate::api::limits::{CreditsRequest, RateLimitJson, parse_new_credits, parse_ratelimits};
use crate::config::Settings;
use crate::domain::fixtures::{FixtureKey, FixtureSecret, FixtureUser, Fixtures, fixture_key_id};
use crate::domain::{Email, KeyId, KeyName, LiteralKey, Meta, Password, Role, Scopes, Secret, Timestamp, Username};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FixturesFile {
    #[serde(default)]
    users: Vec<UserEntry>,
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    username: String,
    password: String,
    email: Option<String>,
    role: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    user: String,
    name: String,
    id: Option<String>,
    key: Option<String>,
    scopes: Option<Vec<String>>,
    meta: Option<toml::Value>,
    expires: Option<String>,
    ratelimits: Option<Vec<RateLimitJson>>,
    credits: Option<CreditsRequest>,
}

/// Reads and checks a fixtures file.
pub fn read(path: &Path) -> Result<Fixtures, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse(text: &str) -> Result<Fixtures, String> {
    let file: FixturesFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let users = file
        .users
        .into_iter()
        .enumerate()
        .map(|(i, u)| user(u).map_err(|e| format!("users[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let keys = file
        .keys
        .into_iter()
        .enumerate()
        .map(|(i, k)| key(k).map_err(|e| format!("keys[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ids: Vec<KeyId> = keys.iter().map(|k| k.id).collect();
    ids.sort();
    if ids.windows(2).any(|w| w[0] == w[1]) {
        return Err("two keys have the same id (or the same literal key)".into());
    }
    Ok(Fixtures { users, keys })
}

fn user(u: UserEntry) -> Result<FixtureUser, String> {
    let show = |e: &dyn std::fmt::Display| e.to_string();
    Ok(FixtureUser {
        username: Username::parse(&u.username).map_err(|e| show(&e))?,
        password: Password::parse(Secret::new(u.password)).map_err(|e| show(&e))?,
        email: u.email.as_deref().map(Email::parse).transpose().map_err(|e| show(&e))?,
        role: Role::parse(u.role.as_deref().unwrap_or("user")).map_err(|e| show(&e))?,
    })
}

fn key(k: KeyEntry) -> Result<FixtureKey, String> {
    let show = |e: &dyn std::fmt::Display| e.to_string();
    let id =
        k.id.as_deref()
            .map(|id| KeyId::parse(id).ok_or_else(|| "id: must be 24 lowercase hex characters".to_owned()))
            .transpose()?;
    let (id, secret) = match (k.key, id) {
        (Some(literal), id) => {
            let literal = LiteralKey::parse(&literal).map_err(|e| show(&e))?;
            (
                id.unwrap_or_else(|| fixture_key_id(&literal)),
                FixtureSecret::Literal(literal),
            )
        }
        (None, Some(id)) => (id, FixtureSecret::Minted),
        (None, None) => {
            return Err("a key without a literal `key` needs an `id` (24 hex): its JWT is minted from it".into());
        }
    };
    let meta = k
        .meta
        .map(|m| serde_json::to_value(m).map_err(|e| show(&e)))
        .transpose()?
        .map(Meta::parse)
        .transpose()
        .map_err(|e| show(&e))?;
    Ok(FixtureKey {
        user: k.user,
        name: KeyName::parse(&k.name).map_err(|e| show(&e))?,
        id,
        secret,
        scopes: k.scopes.map(Scopes::parse).transpose().map_err(|e| show(&e))?,
        meta,
        ratelimits: parse_ratelimits(k.ratelimits).map_err(|e| show(&e))?,
        credits: parse_new_credits(k.credits).map_err(|e| show(&e))?,
        expires_at: match k.expires.as_deref() {
            None => None,
            Some(never) if never.eq_ignore_ascii_case("never") => None,
            Some(t) => Some(Timestamp::parse_rfc3339(t).ok_or_else(|| {
                "expires: must be \"never\" or an RFC 3339 time (fixture keys are the same on every start)".to_owned()
            })?),
        },
    })
}

/// Refuses fixtures the settings cannot honour: minted keys without a configured HS256
/// secret (they would differ on every fresh database).
pub fn check_settings(fixtures: &Fixtures, settings: &Settings) -> Result<(), String> {
    if fixtures.mints_keys() && (settings.auth.secret.is_none() || settings.keys.eddsa) {
        return Err(
            "the fixtures mint keys (keys without a literal `key`): that needs a configured [auth] secret \
             (e.g. KEYWARD__AUTH__SECRET) and keys.algorithm = \"HS256\"; a generated secret lives in the \
             database and would give other keys after every fresh start. Configure one, or give the keys a literal `key`"
                .into(),
        );
    }
    Ok(())
}

/// Refuses `serve --fixtures` on an address others may reach, unless `[dev] allow_fixtures`.
pub fn check_bind(settings: &Settings) -> Result<(), String> {
    if !settings.server.bind.ip().is_loopback() && !settings.dev.allow_fixtures {
        return Err(format!(
            "fixtures hold known passwords and keys: refused while server.bind ({}) is not a loopback address; \
             set [dev] allow_fixtures = true to allow it",
            settings.server.bind
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_reads() {
        let fixtures = parse(include_str!("../dev.toml")).unwrap_or_else(|e| panic!("{e}"));
        assert!(!fixtures.users.is_empty() && !fixtures.keys.is_empty());
    }

    #[test]
    fn bad_entries_are_named() {
        let no_id = "[[keys]]\nuser = \"ada\"\nname = \"x\"\n";
        assert!(parse(no_id).err().is_some_and(|e| e.starts_with("keys[0]: ")));
        let short = "[[keys]]\nuser = \"ada\"\nname = \"x\"\nkey = \"short\"\n";
        assert!(parse(short).err().is_some_and(|e| e.contains("key")));
        let relative = "[[keys]]\nuser = \"ada\"\nname = \"x\"\nkey = \"dev_key_long_enough\"\nexpires = \"30d\"\n";
        assert!(parse(relative).err().is_some_and(|e| e.contains("expires")));
        let twice = "[[keys]]\nuser = \"a\"\nname = \"x\"\nkey = \"dev_key_long_enough\"\n\
                     [[keys]]\nuser = \"a\"\nname = \"y\"\nkey = \"dev_key_long_enough\"\n";
        assert!(parse(twice).is_err());
        let credits = "[[keys]]\nuser = \"a\"\nname = \"x\"\nkey = \"dev_key_long_enough\"\ncredits = 5\n";
        assert!(parse(credits).err().is_some_and(|e| e.contains("remaining")));
        let add = "[[keys]]\nuser = \"a\"\nname = \"x\"\nkey = \"dev_key_long_enough\"\ncredits = { add = 5 }\n";
        assert!(parse(add).err().is_some_and(|e| e.starts_with("keys[0]: ")));
        let slow = "[[keys]]\nuser = \"a\"\nname = \"x\"\nkey = \"dev_key_long_enough\"\n\
                    ratelimits = [{ name = \"r\", limit = 1, duration = \"0s\" }]\n";
        assert!(parse(slow).err().is_some_and(|e| e.contains("duration")));
    }

    #[test]
    fn ratelimits_and_credits_read_as_the_api_reads_them() {
        let text = "[[keys]]\nuser = \"a\"\nname = \"x\"\nkey = \"dev_key_long_enough\"\n\
                    ratelimits = [{ name = \"requests\", limit = 100, duration = \"1m\" }, \
                                  { name = \"burst\", limit = 5, duration = 1 }]\n\
                    credits = { remaining = 1000, refill = { interval = \"monthly\", amount = 500 } }\n";
        let fixtures = parse(text).unwrap_or_else(|e| panic!("{e}"));
        let key = &fixtures.keys[0];
        let limits: Vec<(&str, u32, u64)> = key
            .ratelimits
            .as_slice()
            .iter()
            .map(|l| (l.name(), l.limit(), l.seconds()))
            .collect();
        assert_eq!(limits, vec![("requests", 100, 60), ("burst", 5, 1)]);
        let credits = key.credits.unwrap_or_else(|| panic!("credits"));
        assert_eq!(credits.remaining, 1000);
        assert_eq!(
            credits.refill.map(|r| (r.interval.as_str(), r.amount)),
            Some(("monthly", 500))
        );
    }
}
