//! Password hashing with argon2id (m = 19 MiB, t = 2, p = 1), bounded in how many hashes run
//! at once so a flood of logins cannot exhaust memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use super::{Error, Secret};

const MIN_LEN: usize = 8;
const MAX_LEN: usize = 1024;

/// A password that satisfies the rules (8 to 1024 characters, nothing else).
#[derive(Clone, Debug)]
pub struct Password(Secret);

impl Password {
    pub fn parse(s: Secret) -> Result<Self, Error> {
        let n = s.reveal().chars().count();
        if !(MIN_LEN..=MAX_LEN).contains(&n) {
            return Err(Error::invalid(
                "password",
                format!("must be {MIN_LEN} to {MAX_LEN} characters"),
            ));
        }
        Ok(Password(s))
    }

    pub fn secret(&self) -> &Secret {
        &self.0
    }
}

fn argon2() -> Argon2<'static> {
    // The OWASP minimum for argon2id, the parameters. Params::DEFAULT is the same.
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Hashes and verifies passwords on the blocking pool, at most `permits` at a time.
#[derive(Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    /// A real hash of a random password: unknown usernames are verified against it so they
    /// cost the same work as known ones.
    dummy_hash: Arc<str>,
    verifications: Arc<AtomicU64>,
    load: Arc<Load>,
}

/// How many hashes run now, and the most that ever ran at once.
#[derive(Default)]
struct Load {
    running: AtomicUsize,
    peak: AtomicUsize,
}

impl Passwords {
    pub fn new(concurrency: usize) -> Result<Self, Error> {
        let mut random = [0u8; 16];
        crate::model::os_random(&mut random)?;
        let dummy = hash_blocking(&Secret::new(crate::model::hex(&random)))?;
        Ok(Passwords {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: dummy.into(),
            verifications: Arc::new(AtomicU64::new(0)),
            load: Arc::default(),
        })
    }

    /// Runs `work` on the blocking pool holding a permit. The permit moves into the blocking
    /// task, so even if the request goes away, no more than `permits` hashes ever run.
    async fn bounded<R: Send + 'static>(&self, work: impl FnOnce() -> R + Send + 'static) -> Result<R, Error> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(Error::internal)?;
        let load = Arc::clone(&self.load);
        tokio::task::spawn_blocking(move || {
            let now = load.running.fetch_add(1, Ordering::SeqCst) + 1;
            load.peak.fetch_max(now, Ordering::SeqCst);
            let result = work();
            load.running.fetch_sub(1, Ordering::SeqCst);
            drop(permit);
            result
        })
        .await
        .map_err(Error::internal)
    }

    /// The PHC string of a new argon2id hash.
    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let secret = password.secret().clone();
        self.bounded(move || hash_blocking(&secret)).await?
    }

    /// Checks `password` against `phc`, or against the dummy hash when there is no user, so
    /// both cases do the same work. True only for a real match.
    pub async fn verify(&self, password: &Secret, phc: Option<&str>) -> Result<bool, Error> {
        let known = phc.is_some();
        let phc: String = phc.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.clone();
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let matched = self
            .bounded(move || {
                PasswordHash::new(&phc)
                    .map(|parsed| argon2().verify_password(password.reveal().as_bytes(), &parsed).is_ok())
                    .unwrap_or(false)
            })
            .await?;
        Ok(known && matched)
    }

    /// The most argon2 hashes that ever ran at once.
    pub fn peak_concurrency(&self) -> usize {
        self.load.peak.load(Ordering::SeqCst)
    }

    /// How many argon2 verifications ran (known and unknown users alike).
    pub fn verification_count(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

/// Hashes synchronously; for start-up and the blocking pool only.
pub fn hash_blocking(password: &Secret) -> Result<String, Error> {
    argon2()
        .hash_password(password.reveal().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("argon2: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_length_rules() {
        assert!(Password::parse(Secret::new("short")).is_err());
        assert!(Password::parse(Secret::new("x".repeat(1025))).is_err());
        assert!(Password::parse(Secret::new("eight ch")).is_ok());
    }

    #[test]
    fn hashes_are_argon2id_phc_strings() {
        let h = hash_blocking(&Secret::new("correct horse")).unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }
}
