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
/// The key under which serde_json (with exact numbers) hands a number's text to a
/// visitor; part of serde_json's serde protocol for `arbitrary_precision`.
const JSON_NUMBER_KEY: &str = "$serde_json::private::Number";

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

/// The most credits one usage event (a usage row, a check, a commit, a credit
/// request) may carry: one million. Far above any real single spend, and low
/// enough that millions of events still sum without overflow.
pub const MAX_USAGE_AMOUNT: Credits = Credits(1_000_000 * SCALE);

/// Why an amount is not a usage amount (see [`Credits::usage_amount`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsageAmountError {
    /// Below zero: usage is a fact of spend, never a credit back.
    #[error("credits `{0}` are negative")]
    Negative(Credits),
    /// Above [`MAX_USAGE_AMOUNT`].
    #[error("credits `{0}` are more than the largest usage amount ({MAX_USAGE_AMOUNT})")]
    TooLarge(Credits),
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

    /// The amount when it may be recorded as usage: zero to [`MAX_USAGE_AMOUNT`].
    ///
    /// The one rule for usage amounts, shared by the CLI's usage reader and the
    /// workspace service's events, checks and commits.
    pub fn usage_amount(self) -> Result<Credits, UsageAmountError> {
        if self.is_negative() {
            Err(UsageAmountError::Negative(self))
        } else if self > MAX_USAGE_AMOUNT {
            Err(UsageAmountError::TooLarge(self))
        } else {
            Ok(self)
        }
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

    /// Parses decimal text, with an optional exponent as floats print it (`1e-7`,
    /// `2.5e10`).
    ///
    /// The work is bounded by the text's length whatever the exponent says: the
    /// significant digits are located first and the exponent is only compared with
    /// their count, so `1e2147483647` is refused as too large without ever writing
    /// out its zeros (a 60-byte request once allocated gigabytes that way).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let s = text.trim();
        let not_a_number = || CreditsError::NotANumber(shown(text));
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (mantissa, exponent) = match digits.find(['e', 'E']) {
            Some(i) => {
                let exp: i32 = digits.get(i + 1..).unwrap_or("").parse().map_err(|_| not_a_number())?;
                (digits.get(..i).unwrap_or(""), exp)
            }
            None => (digits, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if (int_part.is_empty() && frac_part.is_empty())
            || !int_part.bytes().all(|b| b.is_ascii_digit())
            || !frac_part.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(not_a_number());
        }
        // The digits without leading and trailing zeros, as one run over `int ++ frac`:
        // `sig` are its significant digits and the value is `sig × 10^scale`.
        let all = || int_part.bytes().chain(frac_part.bytes());
        let total = int_part.len() + frac_part.len();
        let lead = all().take_while(|&b| b == b'0').count();
        if lead == total {
            return Ok(Credits::ZERO);
        }
        let trail = frac_part.bytes().rev().take_while(|&b| b == b'0').count();
        let trail = if trail == frac_part.len() {
            trail + int_part.bytes().rev().take_while(|&b| b == b'0').count()
        } else {
            trail
        };
        let sig_len = total - lead - trail;
        // Lengths are at most the text's length (< 2^63), so these sums cannot overflow.
        let as_i64 = |n: usize| i64::try_from(n).map_err(|_| CreditsError::TooLarge(shown(text)));
        let scale = as_i64(trail)? - as_i64(frac_part.len())? + i64::from(exponent) + i64::from(SCALE_DIGITS);
        if scale < 0 {
            // the last significant digit lies past the sixth decimal place
            return Err(CreditsError::TooPrecise(shown(text)));
        }
        // i64::MAX has 19 digits
        if as_i64(sig_len)? + scale > 19 {
            return Err(CreditsError::TooLarge(shown(text)));
        }
        let mut magnitude: i64 = 0;
        for b in all().skip(lead).take(sig_len) {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(b - b'0')))
                .ok_or_else(|| CreditsError::TooLarge(shown(text)))?;
        }
        for _ in 0..scale {
            magnitude = magnitude.checked_mul(10).ok_or_else(|| CreditsError::TooLarge(shown(text)))?;
        }
        Ok(Credits(if negative { -magnitude } else { magnitude }))
    }
}

/// Input text as an error message shows it: at most 40 characters, so a long
/// number does not come back whole in every message.
fn shown(text: &str) -> String {
    let t = text.trim();
    if t.chars().count() <= 40 {
        return t.to_string();
    }
    let mut out: String = t.chars().take(40).collect();
    out.push('…');
    out
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

impl Credits {
    /// The amount as a JSON number in exact decimal notation, the one representation
    /// of credits in every JSON output and API response: `1234.5`, `0.000001`,
    /// `9007199254.740993` — never float-rounded, never in exponent notation.
    pub fn to_json_number(self) -> serde_json::Number {
        // The text is plain decimal digits, which is always a valid JSON number; the
        // fallback only keeps this total.
        self.to_string().parse().unwrap_or_else(|_| serde_json::Number::from(self.0 / SCALE))
    }
}

impl Serialize for Credits {
    /// A JSON number in exact decimal notation ([`Credits::to_json_number`]).
    ///
    /// Whole amounts are plain integers, and a fraction whose shortest `f64` text is
    /// its exact decimal text (`1234.5`, `0.25`) goes out as that float, so formats
    /// other than JSON read them as numbers too. Anything else — more than 15
    /// significant digits, or a small fraction a float would print in exponent
    /// notation — goes out as serde_json's exact number, which JSON writers copy
    /// verbatim.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0 % SCALE == 0 {
            return serializer.serialize_i64(self.0 / SCALE);
        }
        let exact = self.to_string();
        let float = self.to_f64();
        if serde_json::Number::from_f64(float).is_some_and(|n| n.as_str() == exact) {
            return serializer.serialize_f64(float);
        }
        self.to_json_number().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Credits {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
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
            /// A JSON number too precise for `f64` arrives as serde_json's exact
            /// number: a one-entry map from its private key to the number's text.
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Credits, A::Error> {
                let exact = match map.next_key::<String>()? {
                    Some(key) if key == JSON_NUMBER_KEY => map.next_value::<String>()?,
                    _ => return Err(serde::de::Error::invalid_type(serde::de::Unexpected::Map, &self)),
                };
                exact.parse().map_err(serde::de::Error::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl schemars::JsonSchema for Credits {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Credits".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // Policies only hold amounts of zero or more; outputs also print differences
        // (a plan's `delta`), which are negative when a limit is lowered.
        if generator.contract().is_serialize() {
            return schemars::json_schema!({
                "description": "An exact amount of credits (up to 6 decimal places); a difference is negative when it lowers.",
                "type": "number"
            });
        }
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
    fn huge_exponents_are_refused_without_expanding() {
        // each would need gigabytes of zeros if the exponent were written out
        for text in ["1e2147483647", "1e2000000000", "-7.5e999999999", "1E+2147483647"] {
            assert!(matches!(text.parse::<Credits>(), Err(CreditsError::TooLarge(_))), "{text}");
        }
        for text in ["1e-2147483648", "5e-2000000000"] {
            assert!(matches!(text.parse::<Credits>(), Err(CreditsError::TooPrecise(_))), "{text}");
        }
        // zero stays zero at any exponent, and the exponent is still exact
        assert_eq!("0e2147483647".parse::<Credits>(), Ok(Credits::ZERO));
        assert_eq!("0.000e-2147483648".parse::<Credits>(), Ok(Credits::ZERO));
        assert_eq!("120000e-10".parse::<Credits>(), Ok(Credits::from_micros(12)));
        assert_eq!("0.00000000012e10".parse::<Credits>(), Ok(Credits::from_micros(1_200_000)));
        assert_eq!("9223372036854.775807".parse::<Credits>(), Ok(Credits::MAX));
        assert!(matches!("9223372036854.775808".parse::<Credits>(), Err(CreditsError::TooLarge(_))));
        assert_eq!("-9223372036854.775807".parse::<Credits>(), Ok(-Credits::MAX));
        // leading and trailing zeros in any number do not count as digits
        let long = format!("{}1.5{}", "0".repeat(100_000), "0".repeat(100_000));
        assert_eq!(long.parse::<Credits>(), Ok(Credits::from_micros(1_500_000)));
        // a message quotes at most 40 characters of the text
        let err = format!("1{}", "0".repeat(1000)).parse::<Credits>().unwrap_err().to_string();
        assert!(err.len() < 60, "{err}");
    }

    #[test]
    fn usage_amounts_are_zero_to_a_million() {
        assert_eq!(Credits::ZERO.usage_amount(), Ok(Credits::ZERO));
        assert_eq!(MAX_USAGE_AMOUNT.usage_amount(), Ok(MAX_USAGE_AMOUNT));
        let over = MAX_USAGE_AMOUNT + Credits::from_micros(1);
        assert_eq!(over.usage_amount(), Err(UsageAmountError::TooLarge(over)));
        let minus = Credits::from_micros(-1);
        assert_eq!(minus.usage_amount(), Err(UsageAmountError::Negative(minus)));
        assert_eq!(
            UsageAmountError::TooLarge(over).to_string(),
            "credits `1000000.000001` are more than the largest usage amount (1000000)"
        );
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
    fn json_numbers_are_exact_decimals_in_and_out() {
        for text in ["9007199254.740993", "0.000001", "0.1", "1234.5", "-0.000001", "92233720368.547758"] {
            let c: Credits = text.parse().unwrap();
            assert_eq!(serde_json::to_string(&c).unwrap(), text, "written");
            assert_eq!(serde_json::to_value(c).unwrap().to_string(), text, "through a Value");
            assert_eq!(serde_json::json!({ "c": c }).to_string(), format!("{{\"c\":{text}}}"));
            assert_eq!(serde_json::from_str::<Credits>(text).unwrap(), c, "read");
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::from_value::<Credits>(value).unwrap(), c, "read from a Value");
            assert_eq!(c.to_json_number().to_string(), text);
        }
        // a map that is not an exact number is not credits
        assert!(serde_json::from_str::<Credits>(r#"{"value": 1}"#).is_err());
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
        fn text_parses_to_the_value_it_spells(micros in -1_000_000_000_000_000i64..1_000_000_000_000_000, shift in -12i32..12) {
            // `m e s` written with the point moved: the same value, whatever the spelling
            let c = Credits::from_micros(micros);
            let text = c.to_string();
            let (int, frac) = text.trim_start_matches('-').split_once('.').unwrap_or((text.trim_start_matches('-'), ""));
            let digits = format!("{int}{frac}");
            let exp = i64::from(shift) - i64::try_from(frac.len()).unwrap();
            let sign = if c.is_negative() { "-" } else { "" };
            let spelled = format!("{sign}{digits}e{exp}");
            let shifted: Result<Credits, _> = spelled.parse();
            // the reference: the value times 10^shift, when it stays exact and in range
            let want = i128::from(micros) * if shift >= 0 { 10i128.pow(shift.unsigned_abs()) } else { 1 };
            let exact = shift >= 0 || micros % 10i64.pow(shift.unsigned_abs()) == 0;
            let want = if shift < 0 { i128::from(micros) / 10i128.pow(shift.unsigned_abs()) } else { want };
            match shifted {
                Ok(v) => prop_assert!(exact && i128::from(v.micros()) == want, "{spelled}"),
                Err(CreditsError::TooPrecise(_)) => prop_assert!(!exact, "{spelled}"),
                Err(CreditsError::TooLarge(_)) => prop_assert!(want.abs() > i128::from(i64::MAX), "{spelled}"),
                Err(e) => prop_assert!(false, "{spelled}: {e}"),
            }
        }

        #[test]
        fn sums_never_drift(cents in proptest::collection::vec(0i64..100_000, 0..200)) {
            let total: Credits = cents.iter().map(|c| format!("{}.{:02}", c / 100, c % 100).parse::<Credits>().unwrap()).sum();
            prop_assert_eq!(total.micros(), cents.iter().sum::<i64>() * 10_000);
        }
    }
}
