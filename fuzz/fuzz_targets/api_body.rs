//! The API's JSON bodies: `budgit_service::fuzz::parse`, each body parsed by its
//! handler's own types and checks. The first byte picks the endpoint.
//!
//! Laws beyond "no panic":
//! - a refused body gets a client error (400, 413 or 422) with a stable
//!   `area/what` code and a message, never a server error;
//! - a reconciler message that parses (`PUT /v1/limits`, `PUT /v1/reconciler/status`)
//!   re-encodes to JSON that parses again to the same encoding.
#![no_main]

use budgit_service::fuzz::{Body, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let body = Body::ALL[usize::from(selector) % Body::ALL.len()];
    match parse(body, bytes) {
        Ok(None) => {}
        Ok(Some(json)) => {
            let again = parse(body, json.as_bytes());
            assert_eq!(
                again.as_ref().ok(),
                Some(&Some(json.clone())),
                "{body:?}: re-encoded as {json}: {again:?}"
            );
        }
        Err(e) => {
            assert!(
                [400, 413, 422].contains(&e.status.as_u16()),
                "{body:?}: refused with {} `{}`: {}",
                e.status,
                e.code,
                e.message
            );
            let stable = e.code.split_once('/').is_some_and(|(area, what)| {
                [area, what]
                    .iter()
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'))
            });
            assert!(stable && !e.message.is_empty(), "{body:?}: error code `{}` ({})", e.code, e.message);
        }
    }
});
