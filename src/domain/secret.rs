//! A string that must never be printed: passwords, keys, tokens, the master secret.

use std::fmt;

use serde::Deserialize;

/// No `Display`, no `Serialize`; `Debug` prints `***`. The one way to the text is
/// [`Secret::reveal`], so a search for it finds every place a secret is used.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Secret::new("hunter2hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.reveal(), "hunter2hunter2");
    }
}
