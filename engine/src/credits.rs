//! Exact decimal credits.
//!
//! Credits are stored as a signed count of micro-credits (10⁻⁶) in an `i64`, so
//! summing never drifts (0.1 ten times is exactly 1) and aggregation over
//! millions of usage rows is a plain integer add. Six decimal places cover every
//! price the OpenAI Costs API reports; more precise input is rejected rather
//! than rounded, because silently rounding money is a bug.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of decimal places kept exactly.
pub const SCALE_DIGITS: u32 = 6;
/// Micro-credits per credit.
pub const SCALE: i64 = 1_000_000;

/// An exact amount of credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Credits(i64);

/// Why a text is not an amount of credits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditsError {
    /// Not a decimal number.
    #[error("`{0}` is not a decimal number")]
    NotANumber(String),
    /// More decimal places than can be kept exactly.
    #[error("`{0}` has more than {SCALE_DIGITS} decimal places")]
    TooPrecise(String),
    /// Outside the range that can be stored.
    #[error("`{0}` is too large")]
    TooLarge(String),
}

impl Credits {
    /// Zero credits.
    pub const ZERO: Credits = Credits(0);
    /// The largest representable amount.
    pub const MAX: Credits = Credits(i64::MAX);

    /// Credits from a count of micro-credits.
    pub const fn from_micros(micros: i64) -> Self {
        Credits(micros)
    }

    /// Whole credits.
    pub const fn from_whole(credits: i64) -> Self {
        Credits(credits.saturating_mul(SCALE))
    }

    /// The amount in micro-credits.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// True when the amount is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// True when the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Adds, saturating at the bounds instead of overflowing.
    pub const fn saturating_add(self, other: Credits) -> Credits {
        Credits(self.0.saturating_add(other.0))
    }

    /// Subtracts, saturating at the bounds instead of overflowing.
    pub const fn saturating_sub(self, other: Credits) -> Credits {
        Credits(self.0.saturating_sub(other.0))
    }

    /// The amount as a float, for display ratios and CEL rules only — never for accounting.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// `self / whole` as a percentage with two exact decimal places (rounded half up),
    /// `None` when `whole` is zero.
    pub fn percent_of(self, whole: Credits) -> Option<f64> {
        if whole.0 == 0 {
            return None;
        }
        let num = i128::from(self.0) * 10_000;
        let den = i128::from(whole.0);
        let q = (num * 2 + den.signum() * den) / (2 * den);
        Some(q as f64 / 100.0)
    }

    /// Parses a float as written by a YAML or JSON parser, exactly as its shortest
    /// decimal representation reads.
    pub fn from_f64(value: f64) -> Result<Self, CreditsError> {
        if !value.is_finite() {
            return Err(CreditsError::NotANumber(value.to_string()));
        }
        // `{}` on f64 prints the shortest text that round-trips, so `0.1` stays `0.1`.
        format!("{value}").parse()
    }
}

impl FromStr for Credits {
    type Err = CreditsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        let not_a_number = || CreditsError::NotANumber(text.to_string());
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        // Accept exponent notation as floats print it (`1e-7`, `2.5e10`).
        let (mantissa, exponent) = match digits.find(['e', 'E']) {
            Some(i) => {
                let exp: i32 = digits[i + 1..].parse().map_err(|_| not_a_number())?;
                (&digits[..i], exp)
            }
            None => (digits, 0),
        };
        let (int_part, frac_part) = match mantissa.split_once('.') {
            Some((i, f)) => (i, f),
            None => (mantissa, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty())
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(not_a_number());
        }
        let mut all: String = format!("{int_part}{frac_part}");
        let point = i64::try_from(int_part.len()).map_err(|_| not_a_number())? + i64::from(exponent);
        // Shift so exactly SCALE_DIGITS digits follow the point.
        let frac_len = i64::try_from(all.len()).map_err(|_| not_a_number())? - point;
        let want = i64::from(SCALE_DIGITS);
        if frac_len > want {
            let extra = usize::try_from(frac_len - want).map_err(|_| not_a_number())?;
            let cut = all.len().saturating_sub(extra);
            if all[cut..].bytes().any(|b| b != b'0') {
                return Err(CreditsError::TooPrecise(text.to_string()));
            }
            all.truncate(cut);
        } else {
            for _ in 0..(want - frac_len) {
                all.push('0');
            }
        }
        let trimmed = all.trim_start_matches('0');
        if trimmed.len() > 19 {
            return Err(CreditsError::TooLarge(text.to_string()));
        }
        let magnitude: i64 = if trimmed.is_empty() {
            0
        } else {
            trimmed.parse().map_err(|_| CreditsError::TooLarge(text.to_string()))?
        };
        Ok(Credits(if negative { -magnitude } else { magnitude }))
    }
}

impl fmt::Display for Credits {
    /// Plain decimal notation without trailing zeros: `1234.5`, `2000`, `-0.25`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / SCALE.unsigned_abs();
        let frac = abs % SCALE.unsigned_abs();
        if frac == 0 {
            return write!(f, "{sign}{whole}");
        }
        let frac = format!("{frac:06}");
        write!(f, "{sign}{whole}.{}", frac.trim_end_matches('0'))
    }
}

impl Add for Credits {
    type Output = Credits;
    fn add(self, rhs: Credits) -> Credits {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Credits {
    fn add_assign(&mut self, rhs: Credits) {
        *self = self.saturating_add(rhs);
    }
}

impl Sub for Credits {
    type Output = Credits;
    fn sub(self, rhs: Credits) -> Credits {
        self.saturating_sub(rhs)
    }
}

impl SubAssign for Credits {
    fn sub_assign(&mut self, rhs: Credits) {
        *self = self.saturating_sub(rhs);
    }
}

impl Neg for Credits {
    type Output = Credits;
    fn neg(self) -> Credits {
        Credits(self.0.saturating_neg())
    }
}

impl Sum for Credits {
    fn sum<I: Iterator<Item = Credits>>(iter: I) -> Credits {
        iter.fold(Credits::ZERO, Add::add)
    }
}

impl Serialize for Credits {
    /// A JSON number in exact decimal notation. Amounts of up to 15 significant
    /// digits (every realistic budget) round-trip through `f64` exactly, so the
    /// shortest float text equals the decimal text.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % SCALE == 0 {
            serializer.serialize_i64(self.0 / SCALE)
        } else {
            serializer.serialize_f64(self.to_f64())
        }
    }
}

impl<'de> Deserialize<'de> for Credits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Credits;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of credits")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Credits, E> {
                v.checked_mul(SCALE)
                    .map(Credits)
                    .ok_or_else(|| E::custom(CreditsError::TooLarge(v.to_string())))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Credits, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(SCALE))
                    .map(Credits)
                    .ok_or_else(|| E::custom(CreditsError::TooLarge(v.to_string())))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Credits, E> {
                Credits::from_f64(v).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Credits, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl schemars::JsonSchema for Credits {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Credits".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An exact amount of credits (up to 6 decimal places), zero or more.",
            "type": "number",
            "minimum": 0
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints_exactly() {
        for (text, shown) in [
            ("0.1", "0.1"),
            ("2000", "2000"),
            ("1234.50", "1234.5"),
            ("-0.25", "-0.25"),
            ("1e3", "1000"),
            ("1.5e-3", "0.0015"),
            ("0.000001", "0.000001"),
        ] {
            let c: Credits = text.parse().unwrap();
            assert_eq!(c.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn rejects_bad_text() {
        assert!(matches!("abc".parse::<Credits>(), Err(CreditsError::NotANumber(_))));
        assert!(matches!("".parse::<Credits>(), Err(CreditsError::NotANumber(_))));
        assert!(matches!("0.0000001".parse::<Credits>(), Err(CreditsError::TooPrecise(_))));
        assert!(matches!("99999999999999999999".parse::<Credits>(), Err(CreditsError::TooLarge(_))));
    }

    #[test]
    fn tenths_sum_exactly() {
        let tenth: Credits = "0.1".parse().unwrap();
        let sum: Credits = std::iter::repeat_n(tenth, 10).sum();
        assert_eq!(sum, Credits::from_whole(1));
    }

    #[test]
    fn serializes_as_exact_json_numbers() {
        let c: Credits = "1234.5".parse().unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), "1234.5");
        assert_eq!(serde_json::to_string(&Credits::from_whole(7)).unwrap(), "7");
        let back: Credits = serde_json::from_str("0.3").unwrap();
        assert_eq!(back.micros(), 300_000);
    }

    #[test]
    fn percent_is_rounded_half_up() {
        let used = Credits::from_micros(1);
        let limit = Credits::from_micros(3);
        assert_eq!(used.percent_of(limit), Some(33.33));
        assert_eq!(Credits::from_whole(2).percent_of(Credits::from_whole(3)), Some(66.67));
        assert_eq!(used.percent_of(Credits::ZERO), None);
    }

    proptest! {
        #[test]
        fn display_round_trips(micros in -1_000_000_000_000i64..1_000_000_000_000) {
            let c = Credits::from_micros(micros);
            prop_assert_eq!(c.to_string().parse::<Credits>().unwrap(), c);
            let json = serde_json::to_string(&c).unwrap();
            prop_assert_eq!(serde_json::from_str::<Credits>(&json).unwrap(), c);
        }

        #[test]
        fn sums_never_drift(cents in proptest::collection::vec(0i64..100_000, 0..200)) {
            let total: Credits = cents.iter().map(|c| format!("{}.{:02}", c / 100, c % 100).parse::<Credits>().unwrap()).sum();
            prop_assert_eq!(total.micros(), cents.iter().sum::<i64>() * 10_000);
        }
    }
}
