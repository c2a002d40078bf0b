//! The decimal parser: `Credits::from_str` on any text.
//!
//! Laws beyond "no panic":
//! - an accepted value prints (`Display`) as plain decimal that parses back to itself;
//! - an accepted value of at most 15 significant digits survives a JSON round trip
//!   (the precision `Credits`'s `Serialize` promises);
//! - the parser agrees with an independent reference on short inputs: every value it
//!   accepts is the exact value of the text, and every exact, in-range text of at
//!   most 64 bytes is accepted.
#![no_main]

use std::str::FromStr;

use budgit_engine::Credits;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let parsed = Credits::from_str(text);
    let reference = if text.len() <= 64 { reference_micros(text) } else { Reference::Unknown };
    match parsed {
        Ok(value) => {
            let shown = value.to_string();
            assert!(
                shown.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-'),
                "`{text}` displays as `{shown}`, not plain decimal"
            );
            assert_eq!(Credits::from_str(&shown), Ok(value), "`{text}` displays as `{shown}`");
            if value.micros().unsigned_abs() < 1_000_000_000_000_000 {
                let json = serde_json::to_string(&value).unwrap_or_default();
                let back: Result<Credits, _> = serde_json::from_str(&json);
                assert_eq!(back.ok(), Some(value), "`{text}` encodes as JSON `{json}`");
            }
            match reference {
                Reference::Exact(micros) => assert_eq!(value.micros(), micros, "`{text}`"),
                Reference::Refused => panic!("`{text}` is not an exact amount, yet parsed as {value}"),
                Reference::Unknown => {}
            }
        }
        Err(e) => {
            if let Reference::Exact(micros) = reference {
                panic!("`{text}` is exactly {micros} micro-credits, yet refused: {e}");
            }
        }
    }
});

/// What a text is worth, decided without the parser under test.
enum Reference {
    /// An exact amount in range, in micro-credits.
    Exact(i64),
    /// Not a number, more than six decimal places, or out of range.
    Refused,
    /// Beyond what this reference decides (huge exponents).
    Unknown,
}

/// `[+-]? digits [. digits]? ([eE] [+-]? digits)?` (at least one mantissa digit),
/// surrounding whitespace ignored, worth `mantissa × 10^exponent`.
fn reference_micros(text: &str) -> Reference {
    let s = text.trim();
    let (negative, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => {
            let e = &rest[i + 1..];
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Reference::Refused;
            }
            match e.parse::<i64>() {
                // Beyond i32 the parser's own exponent type refuses it.
                Ok(x) if i32::try_from(x).is_err() => return Reference::Refused,
                Ok(x) if x.abs() <= 1000 => (&rest[..i], x),
                _ => return Reference::Unknown,
            }
        }
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Reference::Refused;
    }
    let digits = format!("{int}{frac}");
    // micro-credits = digits × 10^shift
    let shift = exponent - frac.len() as i64 + 6;
    let significant = digits.trim_start_matches('0');
    let magnitude: u128 = if significant.is_empty() {
        0
    } else if shift >= 0 {
        if significant.len() as i64 + shift > 19 {
            return Reference::Refused;
        }
        let mut m: u128 = significant.parse().unwrap_or(u128::MAX);
        for _ in 0..shift {
            m *= 10;
        }
        m
    } else {
        let cut = (-shift) as usize;
        let kept = if cut >= significant.len() { "" } else { &significant[..significant.len() - cut] };
        let dropped = &significant[significant.len().saturating_sub(cut)..];
        if dropped.bytes().any(|b| b != b'0') {
            return Reference::Refused;
        }
        if kept.len() > 19 {
            return Reference::Refused;
        }
        if kept.is_empty() { 0 } else { kept.parse().unwrap_or(u128::MAX) }
    };
    match i64::try_from(magnitude) {
        Ok(m) => Reference::Exact(if negative { -m } else { m }),
        Err(_) => Reference::Refused,
    }
}
