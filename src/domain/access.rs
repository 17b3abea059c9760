//! Who may act on what: the rules every protocol shares.

use super::Error;
use super::service::{Caller, Via};

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
