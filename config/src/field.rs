//! The field error every validation step reports, re-exported by `validate`.

use std::fmt;

/// One problem in a document: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Field path as in the document, e.g. `hosts[0].rules[1].canary.weightTotal`.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}
