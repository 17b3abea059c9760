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
        let matched = self.bounded(move || verify_blocking(&password, &phc)).await?;
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

/// The prefix of a password hash imported from Better Auth: `IMPORTED_SCRYPT` then its
/// `salt:key` as Better Auth stores it (hex; scrypt N=16384, r=16, p=1, 64 bytes, of the
/// NFKC-normalised password with the salt's hex text as the salt). Verified as it is, then
/// replaced by argon2id at the first sign-in.
pub const IMPORTED_SCRYPT: &str = "$better-auth-scrypt$";

/// A password hash that never verifies: a user imported without a password (signed in
/// elsewhere by OAuth) until an admin sets one.
pub const NO_PASSWORD: &str = "$none$";

/// Whether `phc` is a hash to replace by argon2id at the next successful sign-in.
pub fn is_imported_hash(phc: &str) -> bool {
    phc.starts_with(IMPORTED_SCRYPT)
}

/// Checks a password against an argon2id PHC string or an imported hash; for the blocking
/// pool only.
fn verify_blocking(password: &Secret, phc: &str) -> bool {
    if let Some(stored) = phc.strip_prefix(IMPORTED_SCRYPT) {
        return verify_better_auth(password.reveal(), stored);
    }
    PasswordHash::new(phc)
        .map(|parsed| argon2().verify_password(password.reveal().as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// Better Auth's `verifyPassword` (better-auth `src/crypto/password.ts` before 1.4, now
/// `@better-auth/utils/password`): `salt:key`, key = scrypt(NFKC(password), salt text).
fn verify_better_auth(password: &str, stored: &str) -> bool {
    use unicode_normalization::UnicodeNormalization;
    let Some((salt, key)) = stored.split_once(':') else {
        return false;
    };
    let Ok(expected) = hex::decode(key) else {
        return false;
    };
    let Ok(params) = scrypt::Params::new(14, 16, 1, expected.len()) else {
        return false;
    };
    let normalized: String = password.nfkc().collect();
    let mut derived = vec![0u8; expected.len()];
    if scrypt::scrypt(normalized.as_bytes(), salt.as_bytes(), &params, &mut derived).is_err() {
        return false;
    }
    // Constant time: every byte is compared whatever the first difference.
    derived.len() == expected.len() && derived.iter().zip(&expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
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
    fn better_auth_scrypt_hashes_verify() {
        // As Better Auth's hashPassword makes them (scrypt N=16384 r=16 p=1 dkLen=64, the
        // salt's hex text as the salt); the key computed independently by Python's
        // hashlib.scrypt(b"correct horse", salt=b"0123…cdef", n=16384, r=16, p=1, dklen=64).
        let phc = format!(
            "{IMPORTED_SCRYPT}0123456789abcdef0123456789abcdef:c967f8a4438e68448871a4fbb9b41b2aacaa6d9d98bf76d9740467af6a3305c6\
             601235ae3706eaeaafd4c037201f630b3c3670caf74d8be1d22256672828773e"
        );
        assert!(verify_blocking(&Secret::new("correct horse"), &phc));
        assert!(!verify_blocking(&Secret::new("wrong horse"), &phc));
        assert!(!verify_blocking(&Secret::new("correct horse"), NO_PASSWORD));
        assert!(is_imported_hash(&phc));
    }

    #[test]
    fn hashes_are_argon2id_phc_strings() {
        let h = hash_blocking(&Secret::new("correct horse")).unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }
}
