//! Value types shared by the events. Each one can only hold a valid value: deserialising checks it.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

/// Defines a string newtype whose only way in is `parse`, used by serde as well.
macro_rules! parsed_string {
    ($(#[$doc:meta])* $name:ident, $parse:expr, $pattern:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
        #[serde(transparent)]
        pub struct $name(#[schemars(regex(pattern = $pattern))] String);

        impl $name {
            /// Parses `raw`; the error states the rule it broke.
            pub fn parse(raw: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<String, String> = $parse;
                check(raw).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                $name::parse(&raw).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// ISO 4217 currencies we accept, with their number of minor-unit digits.
const CURRENCIES: &[(&str, u32)] = &[
    ("AUD", 2),
    ("BHD", 3),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PLN", 2),
    ("RON", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("TND", 3),
    ("USD", 2),
    ("ZAR", 2),
];

parsed_string!(
    /// An ISO 4217 currency code we know the minor units of, e.g. `EUR`.
    Currency,
    |raw| {
        if CURRENCIES.iter().any(|(code, _)| *code == raw) {
            Ok(raw.to_owned())
        } else {
            Err(format!("`{raw}` is not a supported ISO 4217 currency code"))
        }
    },
    "^[A-Z]{3}$"
);

impl Currency {
    /// Digits after the decimal point: 2 for EUR, 0 for JPY, 3 for KWD.
    pub fn minor_units(&self) -> u32 {
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == self.0)
            .map_or(2, |(_, digits)| *digits)
    }
}

parsed_string!(
    /// An ISO 3166-1 alpha-2 country code, upper case, e.g. `DE`.
    CountryCode,
    |raw| {
        if raw.len() == 2 && raw.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(raw.to_owned())
        } else {
            Err(format!("`{raw}` is not an ISO 3166-1 alpha-2 country code (two capital letters)"))
        }
    },
    "^[A-Z]{2}$"
);

parsed_string!(
    /// A stock-keeping unit: 1–64 characters of `A-Z a-z 0-9 - _ .`.
    Sku,
    |raw| {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if ok {
            Ok(raw.to_owned())
        } else {
            Err(format!("`{raw}` is not a SKU (1-64 of A-Z, a-z, 0-9, '-', '_', '.')"))
        }
    },
    "^[A-Za-z0-9._-]{1,64}$"
);

parsed_string!(
    /// An e-mail address: one `@`, a non-empty local part and a dotted domain, at most 254 chars.
    EmailAddress,
    |raw| {
        let valid = raw.len() <= 254
            && !raw.chars().any(char::is_whitespace)
            && raw.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if valid {
            Ok(raw.to_owned())
        } else {
            Err(format!("`{raw}` is not an e-mail address"))
        }
    },
    "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"
);

/// An amount of money in integer minor units of its currency (cents for EUR, yen for JPY).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Money {
    /// Minor units; negative only on credits and discounts.
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Money { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Money {
            amount: 0,
            currency,
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_units();
        if digits == 0 {
            return write!(f, "{} {}", self.amount, self.currency);
        }
        let scale = 10_i64.pow(digits);
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        let (whole, frac) = (abs / scale as u64, abs % scale as u64);
        write!(
            f,
            "{sign}{whole}.{frac:0width$} {}",
            self.currency,
            width = digits as usize
        )
    }
}

/// Where an order came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Api,
    Phone,
    Email,
    InPerson,
    Marketplace,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Api => "api",
            Channel::Phone => "phone",
            Channel::Email => "email",
            Channel::InPerson => "in_person",
            Channel::Marketplace => "marketplace",
        }
    }
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Address {
    pub name: String,
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub postal_code: String,
    pub city: String,
    pub country: CountryCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// How the customer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    /// A card, represented by a provider token (never a card number).
    Card,
    /// Pay against the invoice.
    Invoice,
    /// Cash on delivery, collected by the carrier.
    CashOnDelivery,
    /// Bank transfer before shipping.
    BankTransfer,
    /// Paid in the shop beforehand; `token` carries the shop's payment reference.
    Prepaid,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentMethod::Card => "card",
            PaymentMethod::Invoice => "invoice",
            PaymentMethod::CashOnDelivery => "cash_on_delivery",
            PaymentMethod::BankTransfer => "bank_transfer",
            PaymentMethod::Prepaid => "prepaid",
        }
    }
}

/// The customer's choice of payment, as placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Payment {
    pub method: PaymentMethod,
    /// Provider token for `card` (e.g. `tok_visa`), never a card number; for `prepaid` the
    /// shop's payment reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Weight and size of a parcel or product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Dimensions {
    pub length_mm: u32,
    pub width_mm: u32,
    pub height_mm: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_prints_in_its_currencys_minor_units() {
        let eur = Currency::parse("EUR").expect("EUR");
        let jpy = Currency::parse("JPY").expect("JPY");
        let kwd = Currency::parse("KWD").expect("KWD");
        assert_eq!(Money::new(1999, eur.clone()).to_string(), "19.99 EUR");
        assert_eq!(Money::new(-5, eur).to_string(), "-0.05 EUR");
        assert_eq!(Money::new(1999, jpy).to_string(), "1999 JPY");
        assert_eq!(Money::new(1, kwd).to_string(), "0.001 KWD");
    }

    #[test]
    fn invalid_values_do_not_deserialise_and_say_why() {
        let err = serde_json::from_str::<Currency>("\"EURO\"").expect_err("bad currency");
        assert!(err.to_string().contains("ISO 4217"));
        assert!(serde_json::from_str::<CountryCode>("\"de\"").is_err());
        assert!(serde_json::from_str::<Sku>("\"has space\"").is_err());
        assert!(serde_json::from_str::<EmailAddress>("\"a@b\"").is_err());
        assert!(serde_json::from_str::<EmailAddress>("\"ann@example.com\"").is_ok());
    }
}
