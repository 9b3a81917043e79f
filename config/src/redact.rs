//! The marker that stands in for a secret in anything weir shows, re-exported by `wire`.

/// Stands in for a private key in anything weir shows.
pub const REDACTED: &str = "<redacted>";
