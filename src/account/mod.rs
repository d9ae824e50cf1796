//! Accounts: one debt of one person. Owns the account shape (CSV columns and
//! JSON keys are the same names) and its validation; never dials or decides.

pub mod csv;
pub mod history;
pub mod hours;
pub mod lists;
pub mod tz;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Language of the call's script and recognizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English.
    #[default]
    En,
    /// Mandarin Chinese.
    Zh,
}

impl Language {
    /// `en` or `zh`.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Zh => "zh",
        }
    }
}

/// One debt of one person, as the dialogue and the policy see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// The lender's id for this debt.
    pub account_id: String,
    /// The debtor's name as it is spoken ("Maria Lopez", "王伟").
    pub name: String,
    /// Main phone, E.164.
    pub phone: String,
    /// Amount due, exact decimal (accepts "125.50" and 125.5).
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub amount: Decimal,
    /// ISO 4217 currency code (default USD for en, CNY for zh).
    #[serde(default)]
    pub currency: Option<String>,
    /// Due date.
    pub due_date: chrono::NaiveDate,
    /// IANA time zone of the debtor.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Script language.
    #[serde(default)]
    pub language: Language,
    /// Jurisdiction preset (cn, us, uk, au).
    #[serde(default)]
    pub jurisdiction: Option<String>,
    /// Other numbers of the same person, E.164.
    #[serde(default)]
    pub alt_phones: Vec<String>,
    /// Days past due as the lender counts them (else from due_date).
    #[serde(default)]
    pub days_past_due: Option<i64>,
    /// Where a live transfer for this account goes.
    #[serde(default)]
    pub agent_uri: Option<String>,
    /// The caller ID this account is called from (E.164), over the
    /// campaign's and the trunk's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
}

/// English number words 0-19, shared by the speaking of amounts and dates
/// (`dialogue::speak`) and their reading in replies (`intent::dates`).
pub const EN_NUMBER_WORDS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];

/// Masks a phone number for logs: keeps the country code and last two digits
/// (`+1******67`). Never log a full number at info level.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().collect();
    if digits.len() <= 4 {
        return "*".repeat(digits.len());
    }
    let keep_head = if phone.starts_with('+') { 2 } else { 0 };
    let n = digits.len();
    digits
        .iter()
        .enumerate()
        .map(|(i, c)| if i < keep_head || i >= n - 2 { *c } else { '*' })
        .collect()
}

/// Masks a person's name for logs: initials only ("M. L.").
pub fn mask_name(name: &str) -> String {
    name.split_whitespace()
        .filter_map(|w| w.chars().next())
        .map(|c| format!("{c}."))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_phone_keeps_only_country_code_and_last_two_digits() {
        assert_eq!(mask_phone("+14155550167"), "+1********67");
        assert_eq!(mask_name("Maria Lopez"), "M. L.");
    }

    #[test]
    fn account_amount_accepts_string_and_number_exactly() {
        let a: Account = serde_json::from_str(
            r#"{"account_id":"a1","name":"N","phone":"+14155550100","amount":"125.50","due_date":"2026-11-20"}"#,
        ).unwrap();
        let b: Account = serde_json::from_str(
            r#"{"account_id":"a1","name":"N","phone":"+14155550100","amount":125.5,"due_date":"2026-11-20"}"#,
        ).unwrap();
        assert_eq!(a.amount, b.amount);
        assert_eq!(a.amount.to_string(), "125.50");
    }
}
