//! The Cookie parser behind `canary-by-cookie` on arbitrary Cookie lines and names.
//!
//! Properties: never a panic; a value found holds no `;`, is a slice of one of the lines
//! (taken as received, never rebuilt), and that line carries the cookie's name (any case)
//! somewhere before it, followed by `=`.
#![no_main]

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, arbitrary::Arbitrary)]
struct Input<'a> {
    name: &'a str,
    lines: Vec<&'a [u8]>,
}

fuzz_target!(|input: Input<'_>| {
    let mut headers = HeaderMap::new();
    for line in input.lines.iter().take(8) {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    // The table's validation admits only token names; others never reach the parser.
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if input.name.is_empty() || !input.name.bytes().all(token) {
        return;
    }
    let name = input.name.to_ascii_lowercase();
    let Some(value) = weir_config::canary::cookie_value(&headers, &name) else { return };
    assert!(!value.contains(&b';'), "a value spans a pair separator: {value:?}");
    let inside = |line: &[u8]| {
        let range = line.as_ptr_range();
        range.start <= value.as_ptr() && value.as_ptr_range().end <= range.end
    };
    let line = headers
        .get_all(COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .find(|l| inside(l))
        .expect("the value is a slice of one of the Cookie lines");
    let before = &line[..value.as_ptr() as usize - line.as_ptr() as usize];
    let lower = before.to_ascii_lowercase();
    let named = lower.windows(name.len()).any(|w| w == name.as_bytes());
    assert!(named && before.contains(&b'='), "{value:?} found in {line:?} without {name:?}=");
});
