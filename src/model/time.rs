//! Wall-clock instants as integer unix milliseconds, the unit the database stores.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The instant `t` of the system clock. Only a clock reads the system's time (the
    /// domain's `Clock`): everything else is handed the time.
    pub fn of_system_time(t: SystemTime) -> Self {
        let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Timestamp(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
    }

    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs.saturating_mul(1000))
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds, rounded down (JWT `iat`/`exp`, seed 000's `created_at`).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    pub fn minus(self, d: Duration) -> Self {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_sub(ms))
    }

    /// The stand-in expiry of a key that never expires: the same instant 100 calendar years
    /// on, as seed 001 shows (`createdAt` 2021-05-03, `expireAt` 2121-05-03).
    pub fn never_expiry(self) -> Self {
        let dt = self.to_datetime();
        let later = dt
            .replace_year(dt.year() + 100)
            .or_else(|_| dt.replace_day(28).and_then(|d| d.replace_year(d.year() + 100)));
        later.map_or(Timestamp(i64::MAX), |l| {
            Timestamp(i64::try_from(l.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX))
        })
    }

    fn to_datetime(self) -> OffsetDateTime {
        let nanos = i128::from(self.0) * 1_000_000;
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// RFC 3339 in UTC with whole seconds: `2026-11-23T16:01:10Z` (the native API).
    pub fn rfc3339(self) -> String {
        let mut out = String::with_capacity(20);
        self.write_rfc3339(&mut out);
        out
    }

    /// Appends [`Self::rfc3339`] to `out` without the `time` crate's formatting machinery:
    /// it is on the path of every `/v1/me`. Years 0 to 9999.
    pub fn write_rfc3339(self, out: &mut String) {
        let secs = self.secs();
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let two = |n: i64| {
            let n = u8::try_from(n.clamp(0, 99)).unwrap_or(0);
            [b'0' + n / 10, b'0' + n % 10]
        };
        let year = year.clamp(0, 9999);
        let [y1, y2] = two(year / 100);
        let [y3, y4] = two(year % 100);
        let [mo1, mo2] = two(month);
        let [d1, d2] = two(day);
        let [h1, h2] = two(rem / 3600);
        let [mi1, mi2] = two(rem / 60 % 60);
        let [s1, s2] = two(rem % 60);
        let text = [
            y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2, b'T', h1, h2, b':', mi1, mi2, b':', s1, s2, b'Z',
        ];
        // Digits and separators are ASCII: this never fails.
        out.push_str(std::str::from_utf8(&text).unwrap_or_default());
    }

    /// ISO 8601 with milliseconds: `2021-05-03T16:57:20.259Z` (seed 001's format).
    pub fn iso_millis(self) -> String {
        let dt = self.to_datetime();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        )
    }

    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
        let ms = dt.unix_timestamp_nanos() / 1_000_000;
        i64::try_from(ms).ok().map(Timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_the_apis_expect() {
        let t = Timestamp::from_millis(1_620_061_040_259);
        assert_eq!(t.iso_millis(), "2021-05-03T16:57:20.259Z");
        assert_eq!(t.rfc3339(), "2021-05-03T16:57:20Z");
        assert_eq!(t.secs(), 1_620_061_040);
    }

    #[test]
    fn never_is_a_hundred_calendar_years_on() {
        let t = Timestamp::from_millis(1_620_061_040_261);
        assert_eq!(t.never_expiry().iso_millis(), "2121-05-03T16:57:20.261Z");
        let leap = Timestamp::parse_rfc3339("2000-02-29T12:00:00Z").unwrap_or(t);
        assert_eq!(leap.never_expiry().rfc3339(), "2100-02-28T12:00:00Z");
    }

    #[test]
    fn the_fast_formatter_agrees_with_the_time_crate() {
        let mut ms: i64 = -86_400_000 * 366;
        while ms < 253_402_300_799_000 {
            let t = Timestamp::from_millis(ms);
            let slow = t
                .to_datetime()
                .replace_nanosecond(0)
                .map(|d| d.format(&Rfc3339).unwrap_or_default());
            assert_eq!(Ok(t.rfc3339()), slow, "{ms}");
            ms += 7_654_321_987;
        }
    }

    #[test]
    fn parses_rfc3339_with_offsets() {
        let t = Timestamp::parse_rfc3339("2021-05-03T18:57:20+02:00");
        assert_eq!(t, Some(Timestamp::from_secs(1_620_061_040)));
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }
}
