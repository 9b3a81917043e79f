//! Helpers of the route-model unit tests: a one-host table and the field errors of a refusal.

use crate::{ConfigError, RouteTable};

/// A table of the one host `app.example.com` with these rules (YAML list items indented 6).
pub(crate) fn one_host(rules: &str) -> Result<RouteTable, ConfigError> {
    RouteTable::parse(&format!("schema: weir/v1\nhosts:\n  - host: app.example.com\n    rules:\n{rules}"))
}

/// The (field, reason) pairs of a validation error; panics on anything else.
pub(crate) fn field_errors(r: Result<RouteTable, ConfigError>) -> Vec<(String, String)> {
    match r {
        Err(ConfigError::Invalid(errs)) => errs.into_iter().map(|e| (e.field, e.reason)).collect(),
        Err(other) => panic!("not a validation error: {other}"),
        Ok(_) => panic!("accepted"),
    }
}
