//! The `expires` grammar: how long a key (or a configured duration) lasts.
//!
//! Accepted, every word case-insensitive: `never`; a number of seconds (`3600`); a compact
//! duration (`30s`, `30m`, `12h`, `90d`, `2w`, `1y`); a phrase (`One Month`, `1 week`,
//! `90 days`, `a year`); and, for key expiry only, an RFC 3339 timestamp. A month is 31 days
//! (seed 001's own token shows it), a year 365 days.

use std::time::Duration;

use super::Timestamp;

const SECOND: u64 = 1;
const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;
/// Nothing lasts longer than this; it also keeps every sum far from overflow.
const LONGEST: u64 = 1000 * 365 * DAY;

/// What the `expires` field accepts, for error messages.
pub const EXPIRES_ACCEPTS: &str = "expected \"never\", a number of seconds, a duration such as \"30m\" or \"90d\", a phrase such as \"One Month\", \"1 week\", \"90 days\" or \"1 year\", or an RFC 3339 timestamp";
const LIFETIME_ACCEPTS: &str = "expected \"never\", a number of seconds, a duration such as \"30m\" or \"90d\", or a phrase such as \"One Month\", \"1 week\" or \"1 year\"";

/// A span of time that may be endless: config lifetimes, and the relative forms of `expires`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifetime {
    Never,
    For(Duration),
}

/// A requested key expiry: endless, relative to now, or an absolute instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    Never,
    After(Duration),
    At(Timestamp),
}

impl Lifetime {
    /// Parses the relative forms of the grammar (no timestamps).
    pub fn parse(text: &str) -> Result<Self, String> {
        // The input is not echoed: whatever was typed there may be a secret.
        parse_relative(text).ok_or_else(|| LIFETIME_ACCEPTS.to_owned())
    }

    /// A finite duration, or an error for `never`.
    pub fn finite(self) -> Option<Duration> {
        match self {
            Lifetime::Never => None,
            Lifetime::For(d) => Some(d),
        }
    }

    /// As people write it, and [`Self::parse`] reads it back: `never`, `90d`, `30m`.
    pub fn text(self) -> String {
        self.finite().map_or_else(|| "never".to_owned(), duration_text)
    }
}

/// A duration in the largest unit that divides it exactly, as the grammar reads it back:
/// `90d`, `12h`, `30m`, `10s` (whole seconds; anything shorter is shown as `0s`).
pub fn duration_text(d: Duration) -> String {
    let secs = d.as_secs();
    let (count, unit) = [(DAY, "d"), (HOUR, "h"), (MINUTE, "m")]
        .into_iter()
        .find(|(size, _)| secs > 0 && secs.is_multiple_of(*size))
        .map_or((secs, "s"), |(size, unit)| (secs / size, unit));
    format!("{count}{unit}")
}

impl Expiry {
    /// Parses the whole grammar, timestamps included.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(lifetime) = parse_relative(text) {
            return Ok(match lifetime {
                Lifetime::Never => Expiry::Never,
                Lifetime::For(d) => Expiry::After(d),
            });
        }
        Timestamp::parse_rfc3339(text.trim())
            .map(Expiry::At)
            .ok_or_else(|| EXPIRES_ACCEPTS.to_owned())
    }

    /// A JSON number of seconds (at least 1).
    pub fn from_seconds(secs: u64) -> Result<Self, String> {
        if secs == 0 || secs > LONGEST {
            return Err(format!("a number of seconds must be between 1 and {LONGEST}"));
        }
        Ok(Expiry::After(Duration::from_secs(secs)))
    }

    /// The instant this expiry names, `None` for never.
    pub fn resolve(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Expiry::Never => None,
            Expiry::After(d) => Some(now.plus(d)),
            Expiry::At(t) => Some(t),
        }
    }
}

impl From<Lifetime> for Expiry {
    fn from(l: Lifetime) -> Self {
        match l {
            Lifetime::Never => Expiry::Never,
            Lifetime::For(d) => Expiry::After(d),
        }
    }
}

/// A rotation's grace period: "0" (or nothing) for none, else a finite duration of the
/// grammar ("1h", "7 days", seconds).
pub fn parse_grace(text: &str) -> Result<Duration, super::Error> {
    match text.trim() {
        "" | "0" => Ok(Duration::ZERO),
        text => Lifetime::parse(text).ok().and_then(Lifetime::finite).ok_or_else(|| {
            super::Error::invalid(
                "grace",
                "expected a duration such as \"1h\" or \"7 days\", or a number of seconds",
            )
        }),
    }
}

fn parse_relative(text: &str) -> Option<Lifetime> {
    let text = text.trim().to_ascii_lowercase();
    if text == "never" {
        return Some(Lifetime::Never);
    }
    let secs = if let Ok(n) = text.parse::<u64>() {
        n
    } else if let Some(split) = text.find(|c: char| !c.is_ascii_digit()).filter(|&i| i > 0)
        && !text.contains(char::is_whitespace)
    {
        // Compact form: "30m", "90d".
        let (count, unit) = text.split_at(split);
        count.parse::<u64>().ok()?.checked_mul(unit_seconds(unit, true)?)?
    } else {
        // Phrase: "One Month", "90 days".
        let mut words = text.split_whitespace();
        let (count, unit) = (words.next()?, words.next()?);
        if words.next().is_some() {
            return None;
        }
        let count = count.parse::<u64>().ok().or_else(|| number_word(count))?;
        count.checked_mul(unit_seconds(unit, false)?)?
    };
    (1..=LONGEST)
        .contains(&secs)
        .then(|| Lifetime::For(Duration::from_secs(secs)))
}

fn unit_seconds(unit: &str, compact: bool) -> Option<u64> {
    let short = match unit {
        "s" => Some(SECOND),
        "m" => Some(MINUTE),
        "h" => Some(HOUR),
        "d" => Some(DAY),
        "w" => Some(7 * DAY),
        "y" => Some(365 * DAY),
        _ => None,
    };
    if compact && short.is_some() {
        return short;
    }
    let singular = unit.strip_suffix('s').unwrap_or(unit);
    match singular {
        "second" | "sec" => Some(SECOND),
        "minute" | "min" => Some(MINUTE),
        "hour" | "hr" => Some(HOUR),
        "day" => Some(DAY),
        "week" => Some(7 * DAY),
        "month" => Some(31 * DAY),
        "year" => Some(365 * DAY),
        _ => None,
    }
}

fn number_word(word: &str) -> Option<u64> {
    const WORDS: [&str; 12] = [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    ];
    if word == "a" || word == "an" {
        return Some(1);
    }
    WORDS
        .iter()
        .position(|w| *w == word)
        .and_then(|i| u64::try_from(i + 1).ok())
}

/// Parses a byte size: `65536`, `64KiB`, `64 KB`, `1MiB`, `2GiB` (KB and KiB both mean 1024).
pub fn parse_byte_size(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("expected a size such as \"64KiB\"; got {text:?}"))?;
    let mult = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return Err(format!("expected a size such as \"64KiB\"; got {text:?}")),
    };
    n.checked_mul(mult)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("size out of range: {text:?}"))
}

/// A byte size in the largest binary unit that divides it exactly, as [`parse_byte_size`]
/// reads it back: `64KiB`, `1GiB`, `1000B`.
pub fn byte_size_text(bytes: u64) -> String {
    [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        .into_iter()
        .find(|(size, _)| bytes > 0 && bytes.is_multiple_of(*size))
        .map_or_else(|| format!("{bytes}B"), |(size, unit)| format!("{}{unit}", bytes / size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods() {
        assert_eq!(parse_grace("").ok(), Some(Duration::ZERO));
        assert_eq!(parse_grace(" 0 ").ok(), Some(Duration::ZERO));
        assert_eq!(parse_grace("3600").ok(), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grace("7 days").ok(), Some(Duration::from_secs(7 * 86_400)));
        for bad in ["never", "-1", "1.5", "true", "soon"] {
            assert!(parse_grace(bad).is_err(), "{bad}");
        }
    }

    fn secs(text: &str) -> Option<u64> {
        match Expiry::parse(text) {
            Ok(Expiry::After(d)) => Some(d.as_secs()),
            _ => None,
        }
    }

    #[test]
    fn phrases_and_compact_forms() {
        let cases = [
            ("One Month", 31 * DAY),
            ("one month", 31 * DAY),
            ("ONE WEEK", 7 * DAY),
            ("1 week", 7 * DAY),
            ("90 days", 90 * DAY),
            ("1 year", 365 * DAY),
            ("One Year", 365 * DAY),
            ("a day", DAY),
            ("Six Months", 6 * 31 * DAY),
            ("30m", 30 * MINUTE),
            ("10s", 10),
            ("12h", 12 * HOUR),
            ("90d", 90 * DAY),
            ("3600", 3600),
            ("  2 hours ", 2 * HOUR),
        ];
        for (text, want) in cases {
            assert_eq!(secs(text), Some(want), "{text:?}");
        }
    }

    #[test]
    fn never_in_any_case() {
        for text in ["never", "Never", "NEVER"] {
            assert_eq!(Expiry::parse(text), Ok(Expiry::Never));
        }
    }

    #[test]
    fn timestamps_are_absolute() {
        assert_eq!(
            Expiry::parse("2030-01-01T00:00:00Z"),
            Ok(Expiry::At(Timestamp::from_secs(1_893_456_000)))
        );
        assert!(Lifetime::parse("2030-01-01T00:00:00Z").is_err());
    }

    #[test]
    fn nonsense_is_refused_with_what_is_accepted() {
        for text in [
            "",
            "0",
            "soon",
            "1 fortnight",
            "-5",
            "1.5 days",
            "one two days",
            "99999999999999999999",
            "m30",
        ] {
            let err = Expiry::parse(text).err();
            assert!(err.as_deref().is_some_and(|e| e.contains("never")), "{text:?}");
        }
    }

    #[test]
    fn seconds_must_be_positive() {
        assert!(Expiry::from_seconds(0).is_err());
        assert_eq!(Expiry::from_seconds(60), Ok(Expiry::After(Duration::from_secs(60))));
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panicking(text in "\\PC{0,40}") {
            let _ = Expiry::parse(&text);
            let _ = Lifetime::parse(&text);
            let _ = parse_byte_size(&text);
        }

        #[test]
        fn phrase_shaped_text_never_panics(n in proptest::num::u64::ANY, unit in "(sec|second|min|minute|hour|day|week|month|year)s?|[smhdwy]") {
            let _ = Expiry::parse(&format!("{n} {unit}"));
            let _ = Expiry::parse(&format!("{n}{unit}"));
            let _ = Expiry::from_seconds(n);
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("64KiB"), Ok(65536));
        assert_eq!(parse_byte_size("64 KB"), Ok(65536));
        assert_eq!(parse_byte_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_byte_size("100"), Ok(100));
        assert!(parse_byte_size("lots").is_err());
        assert!(parse_byte_size("0").is_err());
    }

    #[test]
    fn sizes_and_durations_print_as_people_write_them_and_read_back() {
        for (bytes, text) in [(65536, "64KiB"), (1 << 30, "1GiB"), (3 << 20, "3MiB"), (1000, "1000B")] {
            assert_eq!(byte_size_text(bytes), text);
            assert_eq!(parse_byte_size(text).ok().map(|b| b as u64), Some(bytes));
        }
        for (secs, text) in [
            (1800, "30m"),
            (43_200, "12h"),
            (10, "10s"),
            (90 * DAY, "90d"),
            (3601, "3601s"),
        ] {
            let d = Duration::from_secs(secs);
            assert_eq!(duration_text(d), text);
            assert_eq!(Lifetime::parse(text), Ok(Lifetime::For(d)));
        }
        assert_eq!(Lifetime::Never.text(), "never");
    }
}
