//! Paging of lists: page sizes and cursors as the protocols give them.

use super::Error;

/// Default page size of key and user lists, and the largest one may ask for.
pub const DEFAULT_PAGE: u32 = 50;

pub const MAX_PAGE: u32 = 500;

/// Parses a page size: default 50, 1 to 500.
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, Error> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(Error::invalid("limit", format!("must be 1 to {MAX_PAGE}"))),
    }
}

/// Parses a cursor given back from a previous page.
pub(crate) fn parse_cursor<T>(cursor: Option<&str>, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, Error> {
    cursor
        .map(|c| parse(c).ok_or_else(|| Error::invalid("cursor", "not a cursor from a previous page")))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_limits() {
        assert_eq!(page_limit(None).ok(), Some(50));
        assert_eq!(page_limit(Some(500)).ok(), Some(500));
        assert!(page_limit(Some(0)).is_err());
        assert!(page_limit(Some(501)).is_err());
    }
}
