//! Vendor targets: how credits become a vendor's money, and what a target cannot express.
//!
//! The one owner of both rules: `validate` reports them as findings when a
//! Workspace declares a target under `vendors`, and the reconciler's vendor
//! adapters convert with the same [`Money`], so a limit that validates is a
//! limit the adapter can write. Conversion is exact integer arithmetic on
//! micro-credits; an amount that is not a whole number of minor units is an
//! error, never a rounding.

use crate::Credits;
use crate::model::VendorMoney;

/// The name of the Claude Enterprise target (`--target`, `vendors:` key).
pub const CLAUDE_ENTERPRISE: &str = "claude-enterprise";

/// The name of the OpenAI target (`--target`, `vendors:` key).
pub const OPENAI: &str = "openai";

/// The one currency OpenAI's spend limits and alerts are written in.
pub const OPENAI_CURRENCY: &str = "USD";

/// Currencies whose minor unit is not a hundredth: ISO 4217 exponents 0 and 3.
const NO_MINOR_UNIT: [&str; 16] = [
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF",
    "XOF",
];
const THOUSANDTHS: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// Why an amount cannot be written in a vendor's money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The currency is not three capital letters.
    #[error("`{0}` is not an ISO 4217 currency code")]
    BadCurrency(String),
    /// A credit worth nothing (or less) cannot be converted.
    #[error("a credit must be worth more than zero, not `{0}`")]
    BadCredit(Credits),
    /// A credit's worth with more decimals than credits have.
    #[error("a credit's worth `{0}` is not an amount budgit converts exactly (at most 6 decimals)")]
    NotACredit(String),
    /// Not a whole number of minor units.
    #[error("{credits} credits are {value} {currency}, not a whole number of {currency} minor units")]
    NotRepresentable {
        /// The credits.
        credits: Credits,
        /// Their value in the currency, exactly.
        value: String,
        /// The currency.
        currency: String,
    },
    /// A negative amount or one past the vendor's range.
    #[error("{0} credits are outside the range a vendor limit can hold")]
    OutOfRange(Credits),
    /// A vendor amount that is no exact number of credits.
    #[error("`{amount}` {currency} minor units are not an exact number of credits")]
    NotCredits {
        /// The vendor's amount.
        amount: String,
        /// The currency.
        currency: String,
    },
}

/// A declared mapping of credits to a currency, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// The ISO 4217 code.
    pub currency: String,
    /// One credit in major units.
    pub credit: Credits,
    /// Decimal places of the minor unit (2 for USD).
    pub digits: u32,
}

impl Money {
    /// Checks a declared mapping.
    pub fn new(declared: &VendorMoney) -> Result<Money, MoneyError> {
        // Declared lowercase (`usd`, as the OpenAI API writes it); vendors that write
        // ISO codes uppercase are compared in that form.
        let upper = declared.currency.to_ascii_uppercase();
        let code = upper.as_str();
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(MoneyError::BadCurrency(declared.currency.clone()));
        }
        let credit: Credits =
            declared.credit.parse().map_err(|_| MoneyError::NotACredit(declared.credit.clone()))?;
        if credit <= Credits::ZERO {
            return Err(MoneyError::BadCredit(credit));
        }
        let digits = if NO_MINOR_UNIT.contains(&code) {
            0
        } else if THOUSANDTHS.contains(&code) {
            3
        } else {
            2
        };
        Ok(Money { currency: code.to_string(), credit, digits })
    }

    /// `credits` in minor units of the currency, exactly.
    pub fn to_minor(&self, credits: Credits) -> Result<u64, MoneyError> {
        if credits.is_negative() {
            return Err(MoneyError::OutOfRange(credits));
        }
        // value × 10¹² = credits.micros × credit.micros; minor = value × 10^digits.
        let scaled =
            i128::from(credits.micros()) * i128::from(self.credit.micros()) * 10i128.pow(self.digits);
        let unit = 10i128.pow(12);
        if scaled % unit != 0 {
            return Err(MoneyError::NotRepresentable {
                credits,
                value: exact(scaled, 12 + self.digits),
                currency: self.currency.clone(),
            });
        }
        u64::try_from(scaled / unit).map_err(|_| MoneyError::OutOfRange(credits))
    }

    /// Minor units (a vendor's decimal string) back to credits, exactly.
    pub fn from_minor(&self, amount: &str) -> Result<Credits, MoneyError> {
        let not = || MoneyError::NotCredits { amount: amount.to_string(), currency: self.currency.clone() };
        if amount.is_empty() || amount.len() > 19 || !amount.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not());
        }
        let minor: i128 = amount.parse().map_err(|_| not())?;
        // micros = minor × 10¹² / (10^digits × credit.micros)
        let num = minor * 10i128.pow(12);
        let den = 10i128.pow(self.digits) * i128::from(self.credit.micros());
        if den == 0 || num % den != 0 {
            return Err(not());
        }
        i64::try_from(num / den).map(Credits::from_micros).map_err(|_| not())
    }
}

/// `scaled / 10^places` as an exact decimal text, trailing zeros dropped.
fn exact(scaled: i128, places: u32) -> String {
    let unit = 10i128.pow(places);
    let (whole, frac) = (scaled / unit, scaled % unit);
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:0width$}", width = places as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// The vendor's name for a budgit period, when the target has one.
pub fn claude_period(period: crate::model::Period) -> Option<&'static str> {
    use crate::model::Period;
    match period {
        Period::Day => Some("daily"),
        Period::Week => Some("weekly"),
        Period::Month => Some("monthly"),
        Period::Quarter => None,
    }
}

/// `level` percent of `credits`, exactly; `None` when it is no whole number of micro-credits.
pub fn percent_of(credits: Credits, level: u32) -> Option<Credits> {
    let scaled = i128::from(credits.micros()) * i128::from(level);
    if scaled % 100 != 0 {
        return None;
    }
    i64::try_from(scaled / 100).ok().map(Credits::from_micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(credit: &str) -> Money {
        Money::new(&VendorMoney { currency: "usd".into(), credit: credit.into(), reconcile: None }).unwrap()
    }

    #[test]
    fn credits_become_cents_exactly_and_back() {
        let m = usd("0.01");
        assert_eq!(m.to_minor(Credits::from_whole(500)), Ok(500));
        assert_eq!(
            m.to_minor("12.5".parse().unwrap()).unwrap_err().to_string(),
            "12.5 credits are 0.125 USD, not a whole number of USD minor units"
        );
        assert_eq!(m.from_minor("500"), Ok(Credits::from_whole(500)));
        let dollars = usd("1");
        assert_eq!(dollars.to_minor("0.01".parse().unwrap()), Ok(1));
        assert_eq!(dollars.from_minor("50000"), Ok(Credits::from_whole(500)));
        // a third of a cent per credit: 3 credits are a cent, 1 is not
        let third = usd("0.003");
        assert_eq!(third.to_minor(Credits::from_whole(1000)), Ok(300));
        assert!(third.to_minor(Credits::from_whole(1)).is_err());
    }

    #[test]
    fn percentages_are_exact_or_nothing() {
        assert_eq!(percent_of(Credits::from_whole(5000), 80), Some(Credits::from_whole(4000)));
        assert_eq!(percent_of("0.000001".parse().unwrap(), 50), None);
        assert_eq!(percent_of(Credits::from_whole(3), 150), Some("4.5".parse().unwrap()));
    }

    #[test]
    fn currencies_have_their_minor_units_and_bad_ones_are_refused() {
        let yen =
            Money::new(&VendorMoney { currency: "jpy".into(), credit: "2".into(), reconcile: None }).unwrap();
        assert_eq!(yen.to_minor(Credits::from_whole(10)), Ok(20));
        let dinar =
            Money::new(&VendorMoney { currency: "kwd".into(), credit: "0.001".into(), reconcile: None })
                .unwrap();
        assert_eq!(dinar.to_minor(Credits::from_whole(7)), Ok(7));
        assert!(
            Money::new(&VendorMoney { currency: "us".into(), credit: "1".into(), reconcile: None }).is_err()
        );
        assert!(
            Money::new(&VendorMoney { currency: "usd".into(), credit: "0".into(), reconcile: None }).is_err()
        );
        assert!(
            Money::new(&VendorMoney { currency: "usd".into(), credit: "0.0000001".into(), reconcile: None })
                .is_err()
        );
        assert!(usd("1").from_minor("-5").is_err());
        assert!(usd("1").from_minor("1e3").is_err());
        assert!(usd("1").to_minor(Credits::from_whole(-1)).is_err());
    }
}
