//! Who may act on what: the rules every protocol shares.

use super::Error;
use super::service::{Caller, Via};

/// Scopes only an admin may grant: a key holding one is honoured for it only if an admin
/// granted it (the grant is recorded with the key).
pub const PRIVILEGED_SCOPES: [&str; 3] = ["keys:verify", "users:admin", "metrics:read"];

pub fn is_privileged(scope: &str) -> bool {
    PRIVILEGED_SCOPES.contains(&scope)
}

/// A privileged capability (`keys:verify`, `metrics:read`): an admin whose credential may
/// act with `scope`, or a key that holds `scope` explicitly and was granted it by an admin
/// (ungranted privileged scopes never reach a caller's scopes: see the key view). A key
/// without scopes does not get it implicitly unless its user is an admin.
pub fn require_privileged(caller: &Caller, scope: &str) -> Result<(), Error> {
    let explicit = matches!(&caller.via, Via::ApiKey { scopes: Some(s), .. } if s.iter().any(|x| x == scope));
    if explicit || (caller.is_admin() && caller.has_scope(scope)) {
        Ok(())
    } else {
        Err(Error::InsufficientScope(scope.into()))
    }
}
