//! [`Rendered`]: what an adapter makes of a record once, kept with the record.

use std::any::Any;
use std::sync::OnceLock;

/// What an adapter renders of a record (a JSON object, a header's value), made at the first
/// request that needs it and kept with the record, so the hot path copies it instead of
/// writing it again. Of a type the model does not know (the adapter's). Only for records
/// that are replaced, never edited, once shared (the view's `Arc`s): a clone starts empty,
/// so a record cloned to be edited renders anew.
#[derive(Default)]
pub struct Rendered(OnceLock<Box<dyn Any + Send + Sync>>);

impl Rendered {
    /// The rendering, made by `render` the first time; `None` if it was made as another
    /// type than `T` (then the caller renders for itself).
    pub fn get_or_init<T: Any + Send + Sync>(&self, render: impl FnOnce() -> T) -> Option<&T> {
        self.0.get_or_init(|| Box::new(render())).downcast_ref()
    }
}

impl Clone for Rendered {
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
        let first = Rendered::default();
        assert_eq!(first.get_or_init(|| "first"), Some(&"first"));
        assert_eq!(first.get_or_init(|| "second"), Some(&"first"), "made once");
        assert_eq!(first.get_or_init(|| 2_u8), None, "another type");
        let clone = first.clone();
        assert_eq!(clone.get_or_init(|| "changed"), Some(&"changed"));
    }
}
