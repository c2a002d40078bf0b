//! Parsed CEL programs shared by validation and resolution, keyed by the expression's text.
//!
//! Parsing is the costly part of compiling a selector (≈ 0.5 ms with `cel`'s parser,
//! against microseconds for the rest), and one run parses the same text several
//! times: validation checks it, resolution compiles it, and a plan resolves a base
//! whose selectors are mostly the head's. A program depends on its text only (the
//! standard environment's macros are expanded while parsing), so one parse serves
//! all of them. Failed parses are not kept (they are rare; their errors are returned).
//! Programs are parsed as [`Program::compile`] parses (CEL's optional syntax off), the
//! parse resolution has always used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use cel::Program;

/// Texts kept before the cache starts over; a long-running server sees many revisions.
const MAX_ENTRIES: usize = 4096;

fn cache() -> &'static Mutex<HashMap<Box<str>, Arc<Program>>> {
    static CACHE: OnceLock<Mutex<HashMap<Box<str>, Arc<Program>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The program of `expr`, parsed once per text with the standard environment.
///
/// Run it on a large stack: the parser recurses. Callers check the length cap first.
pub fn program(expr: &str) -> Result<Arc<Program>, cel::ParseErrors> {
    if let Some(p) = cache().lock().ok().and_then(|c| c.get(expr).cloned()) {
        return Ok(p);
    }
    let parsed = Arc::new(Program::compile(expr)?);
    if let Ok(mut c) = cache().lock() {
        if c.len() >= MAX_ENTRIES {
            c.clear();
        }
        c.insert(expr.into(), Arc::clone(&parsed));
    }
    Ok(parsed)
}

/// Forgets every parsed program, so the next run parses as a fresh process would.
pub fn clear() {
    if let Ok(mut c) = cache().lock() {
        c.clear();
    }
}
