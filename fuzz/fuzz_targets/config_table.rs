//! The config file parser and validator on arbitrary text.
//!
//! Properties: never a panic; a table that is accepted once is accepted again after its
//! document is written back out as JSON (what `GET /config` shows is loadable), and a
//! rejected document names at least one field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_config::{ConfigError, RouteTable, TableDoc};

fuzz_target!(|text: &str| {
    match RouteTable::parse(text) {
        Ok(_) => {
            let doc: TableDoc = serde_yaml_ng::from_str(text).expect("parsed once, parses again");
            let json = serde_json::to_string(&doc).expect("a parsed document serializes");
            if let Err(e) = RouteTable::parse(&json) {
                panic!("accepted, but its JSON form is refused: {e}\n{json}");
            }
        }
        Err(ConfigError::Invalid(errors)) => assert!(!errors.is_empty(), "refused with no field named"),
        Err(ConfigError::Parse(_)) => {}
    }
});
