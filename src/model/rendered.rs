//! [`Rendered`]: what an adapter makes of a record once, kept with the record.

use std::sync::OnceLock;

/// What an adapter renders of a record (a JSON object, a header's value), made at the first
/// request that needs it and kept with the record, so the hot path copies it instead of
/// writing it again. Only for records that are replaced, never edited, once shared (the
/// view's `Arc`s): a clone starts empty, so a record cloned to be edited renders anew.
pub struct Rendered<T>(OnceLock<T>);

impl<T> Rendered<T> {
    /// The rendering, made by `render` the first time.
    pub fn get_or_init(&self, render: impl FnOnce() -> T) -> &T {
        self.0.get_or_init(render)
    }
}

impl<T> Default for Rendered<T> {
    fn default() -> Self {
        Rendered(OnceLock::new())
    }
}

impl<T> Clone for Rendered<T> {
    /// Empty: a clone is made to be changed, and what was rendered of the original may no
    /// longer be true of it.
    fn clone(&self) -> Self {
        Rendered::default()
    }
}

#[cfg(test)]
mod tests {
    use super::Rendered;

    #[test]
    fn a_clone_renders_anew() {
        let first: Rendered<String> = Rendered::default();
        assert_eq!(first.get_or_init(|| "first".into()), "first");
        assert_eq!(first.get_or_init(|| "second".into()), "first", "made once");
        let clone = first.clone();
        assert_eq!(clone.get_or_init(|| "changed".into()), "changed");
    }
}
