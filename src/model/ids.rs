//! User and key ids: 96 random bits from the OS, written as 24 lowercase hex chars (the shape
//! of seed 001's `_id`). The same id is used by every API.

use std::fmt;

use super::ModelError;

const ID_BYTES: usize = 12;

/// Fills `buf` from the operating system's random source.
pub fn os_random(buf: &mut [u8]) -> Result<(), ModelError> {
    getrandom::fill(buf).map_err(|e| ModelError::Randomness(e.to_string()))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Appends the lowercase hex of `bytes` to `out` (on the hot path: no allocation of its own).
pub fn push_hex(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        let digits = &mut buf[..2 * chunk.len()];
        // The buffer is exactly twice the chunk, and hex digits are ASCII: neither fails.
        if hex::encode_to_slice(chunk, digits).is_ok() {
            out.push_str(std::str::from_utf8(digits).unwrap_or_default());
        }
    }
}

fn parse_hex_id(s: &str) -> Option<[u8; ID_BYTES]> {
    if s.len() != ID_BYTES * 2 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; ID_BYTES];
    for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
        out[i] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; ID_BYTES]);

        impl $name {
            /// A fresh random id (never [`Self::nil`]).
            pub fn generate() -> Result<Self, ModelError> {
                let mut bytes = [0u8; ID_BYTES];
                while bytes == [0; ID_BYTES] {
                    os_random(&mut bytes)?;
                }
                Ok(Self(bytes))
            }

            /// All zeros: the id of no record. [`Self::generate`] never makes it and
            /// [`Self::parse`] never reads it, so it is free to name "no one" (the CLI's
            /// operator) or "no such record" (a malformed id in a path).
            pub const fn nil() -> Self {
                Self([0; ID_BYTES])
            }

            /// An id from 12 bytes chosen elsewhere (derived ids of fixtures); never nil
            /// in practice, as the bytes are a hash.
            pub const fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
                Self(bytes)
            }

            /// Parses the 24-lowercase-hex form; anything else, and the nil id, is `None`.
            pub fn parse(s: &str) -> Option<Self> {
                parse_hex_id(s).filter(|b| *b != [0; ID_BYTES]).map(Self)
            }
        }

        impl $name {
            /// Appends the 24-hex form to `out` (the hot path writes ids without allocating).
            pub fn write_to(&self, out: &mut String) {
                push_hex(out, &self.0);
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut text = String::with_capacity(2 * ID_BYTES);
                self.write_to(&mut text);
                f.write_str(&text)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }
    };
}

id_type!(
    /// A user's id.
    UserId
);
id_type!(
    /// A key's id: the `jti` claim of the key.
    KeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text_form() {
        let id = KeyId::generate().unwrap_or_else(|_| unreachable!());
        let text = id.to_string();
        assert_eq!(text.len(), 24);
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert_eq!(KeyId::parse(&text), Some(id));
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "60902b70b281af121fcda4c",
            "60902B70B281AF121FCDA4CE",
            "60902b70b281af121fcda4cz",
            "60902b70b281af121fcda4ce0",
            "000000000000000000000000",
        ] {
            assert_eq!(UserId::parse(bad), None, "{bad:?}");
        }
        assert!(UserId::parse("60902b70b281af121fcda4ce").is_some());
    }
}
