//! Web console sessions: a random token in a cookie, its hash in the database, and the CSRF
//! token that every form of the session must carry.
//!
//! A session is checked on every page: it must exist (sign-out deletes it), not have
//! expired, and its user must be active with the token epoch it signed in under, so a
//! password change, disable or delete ends it as it ends access tokens.

use std::net::IpAddr;

use super::caller::{Caller, Via};
use super::{Error, Secret};
use crate::model::{SessionRecord, hex, os_random};

/// Bytes of randomness in a session token (and a sign-in form's token).
const TOKEN_BYTES: usize = 32;
/// blake3 `derive_key` contexts: one per use of a token, so one can never stand for another.
const SESSION_HASH_CONTEXT: &str = "keyward 2026-11 web console session token hash";
const CSRF_CONTEXT: &str = "keyward 2026-11 web console form token";

/// A fresh random token, as 64 hex chars.
pub fn random_token() -> Result<Secret, Error> {
    let mut bytes = [0u8; TOKEN_BYTES];
    os_random(&mut bytes)?;
    Ok(Secret::new(hex(&bytes)))
}

/// What the database keeps of a session token.
fn session_hash(token: &str) -> [u8; 32] {
    blake3::derive_key(SESSION_HASH_CONTEXT, token.as_bytes())
}

/// The form token that goes with a session (or sign-in) token: derived from it, so nothing
/// more is stored, and unguessable without the cookie, which pages cannot read.
pub fn csrf_token(token: &Secret) -> String {
    form_token(token).to_hex().to_string()
}

/// Whether `presented` is the form token of `token`, compared in constant time.
pub fn csrf_matches(token: &Secret, presented: &str) -> bool {
    // blake3::Hash compares in constant time.
    blake3::Hash::from_hex(presented.trim()).is_ok_and(|p| p == form_token(token))
}

fn form_token(token: &Secret) -> blake3::Hash {
    blake3::Hash::from(blake3::derive_key(CSRF_CONTEXT, token.reveal().as_bytes()))
}

impl super::Keyward {
    /// Signs in with a username (or email) and password, with the same throttling and
    /// failed-login audit as every other password check. Returns the session token (for the
    /// cookie) and the caller.
    pub async fn start_session(
        &self,
        login: &str,
        password: &Secret,
        source: Option<IpAddr>,
    ) -> Result<(Secret, Caller), Error> {
        let now = self.now();
        let mut caller = self.authenticate_password(login, password, source).await?;
        caller.via = Via::Session;
        let token = random_token()?;
        let session = SessionRecord {
            user_id: caller.user.id,
            token_epoch: caller.user.token_epoch,
            expires_at: now.plus(self.config().session_ttl),
        };
        let audit = caller.audit("session.start", Some(("user", caller.user.id.to_string())), now);
        self.store()
            .insert_session(session_hash(token.reveal()), session, now, audit)
            .await
            .map_err(|e| e.into_domain("the session could not be stored"))?;
        Ok((token, caller))
    }

    /// The caller a session token stands for; `None` when it is unknown, expired, or its user
    /// is no longer active or has changed their password since.
    pub async fn session(&self, token: &Secret, source: Option<IpAddr>) -> Result<Option<Caller>, Error> {
        let now = self.now();
        if token.reveal().len() != TOKEN_BYTES * 2 {
            return Ok(None);
        }
        let Some(row) = self
            .store()
            .find_session(session_hash(token.reveal()))
            .await
            .map_err(|e| e.into_domain("sessions could not be read"))?
        else {
            return Ok(None);
        };
        if row.expires_at <= now {
            return Ok(None);
        }
        Ok(self
            .view()
            .user(row.user_id)
            .filter(|user| user.active() && user.token_epoch == row.token_epoch)
            .map(|user| Caller {
                user,
                via: Via::Session,
                source,
            }))
    }

    /// Signs out: the session is deleted, so its cookie is worthless from now on.
    pub async fn end_session(&self, caller: &Caller, token: &Secret) -> Result<(), Error> {
        let now = self.now();
        let audit = caller.audit("session.end", Some(("user", caller.user.id.to_string())), now);
        self.store()
            .delete_session(session_hash(token.reveal()), audit)
            .await
            .map_err(|e| e.into_domain("the session could not be ended"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_tokens_belong_to_their_session() {
        let a = Secret::new("a".repeat(64));
        let b = Secret::new("b".repeat(64));
        let token_a = csrf_token(&a);
        assert_eq!(token_a.len(), 64);
        assert!(csrf_matches(&a, &token_a));
        assert!(!csrf_matches(&b, &token_a));
        assert!(!csrf_matches(&a, ""));
        assert!(!csrf_matches(&a, &token_a[..63]));
        assert_ne!(session_hash(a.reveal()).as_slice(), hex_bytes(&token_a).as_slice());
    }

    fn hex_bytes(s: &str) -> Vec<u8> {
        blake3::Hash::from_hex(s)
            .map(|h| h.as_bytes().to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn random_tokens_differ() {
        let (Ok(a), Ok(b)) = (random_token(), random_token()) else {
            panic!("no randomness");
        };
        assert_eq!(a.reveal().len(), 64);
        assert_ne!(a.reveal(), b.reveal());
    }
}
