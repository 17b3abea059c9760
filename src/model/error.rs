//! The model's own small error: a value of the wrong shape, or no randomness to make an id.
//! The domain turns it into its `Error` (`Invalid` → 400, `Randomness` → 500).

/// Why a value could not be made. `Display` is the public message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// Input of the wrong shape: which field, and what is accepted.
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    /// The operating system's random source failed.
    #[error("OS random source failed: {0}")]
    Randomness(String),
}

impl ModelError {
    pub(super) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        ModelError::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
