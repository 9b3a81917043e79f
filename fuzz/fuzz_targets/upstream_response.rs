//! weir's own HTTP/1.1 exchange on arbitrary upstream response bytes: the head parser, the
//! framing rules (RFC 9112 §6) and the chunked-body reader.
//!
//! Properties (asserted inside `weir_proxy::fuzzing`): never a panic, a hang or an
//! overflow; decoded chunked data is never longer than its wire.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    weir_proxy::fuzzing::upstream_response(bytes);
});
