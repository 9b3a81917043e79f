//! The catalog's one table of every key, by name, and look-ups in it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use super::entry::Entry;
use super::{access, backend, routing};

/// Every key, by name.
pub static ENTRIES: LazyLock<BTreeMap<&'static str, &'static Entry>> = LazyLock::new(|| {
    [backend::ENTRIES, access::ENTRIES.as_slice(), routing::ENTRIES]
        .into_iter()
        .flatten()
        .map(|e| (e.name, e))
        .collect()
});

/// The entry for a key without prefix.
pub fn lookup(name: &str) -> Option<&'static Entry> {
    ENTRIES.get(name).copied()
}

/// The known key nearest to an unknown one (edit distance at most 2, and less than half
/// its length), to suggest for typos.
pub fn nearest(name: &str) -> Option<&'static str> {
    let limit = 2.min(name.chars().count().saturating_sub(1) / 2);
    ENTRIES.keys().map(|k| (edit_distance(name, k), *k)).filter(|(d, _)| *d <= limit).min().map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != *cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}
