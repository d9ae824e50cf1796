//! The accounts CSV: reads it, validates every row, keeps the good rows and
//! reports the bad ones with their line numbers. Owns the column list and its
//! defaults; never dials, never decides whether a call is allowed.
//!
//! Required columns: `account_id, name, phone, amount, due_date`.
//! Optional columns and their defaults (also printed by [`write_defaults`]):
//!
//! | column | default when absent or empty |
//! |---|---|
//! | `currency` | from the jurisdiction (cn CNY, us USD, uk GBP, au AUD), else from the language (zh CNY, en USD) |
//! | `timezone` | none: the zones come from the phone numbers' prefixes (the weaker source, see `account::tz::zones_for`) |
//! | `language` | `zh` when the jurisdiction is cn, else `en` |
//! | `jurisdiction` | from the main phone's country (+86 cn, +1 us, +44 uk, +61 au), else none (the policy's `default_jurisdiction`) |
//! | `alt_phones` | none; several numbers are separated by `;` or `|` |
//! | `days_past_due` | none: the gate counts days from `due_date` |
//! | `agent_uri` | none: the campaign's default agent |
//! | `caller_id` | none: the campaign's `caller_id`, else the trunk's (E.164, `+14155550100`) |
//! | `call_hours` | none: the jurisdiction's window; `18:00-20:00`, several separated by `;`, a range may cross midnight |
//! | `night_call_consent` | `false`; `true` lets the jurisdiction's consent window apply (cn night calls) |
//!
//! Phones are normalised to E.164; numbers without `+` are read in the default
//! region (config, "US" unless set). Names may be in any script. Columns not in
//! the list are reported as warnings and ignored (a misspelt `timezon` would
//! otherwise silently lose the time zone).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

use super::hours::{parse_call_hours, ContactPrefs};
use super::{Account, Language};

/// Columns every file must have.
pub const REQUIRED_COLUMNS: [&str; 5] = ["account_id", "name", "phone", "amount", "due_date"];
/// Columns a file may have.
pub const OPTIONAL_COLUMNS: [&str; 10] = [
    "call_hours",
    "night_call_consent",
    "currency",
    "timezone",
    "language",
    "jurisdiction",
    "alt_phones",
    "days_past_due",
    "agent_uri",
    "caller_id",
];
/// Jurisdictions with a policy preset.
pub const JURISDICTIONS: [&str; 4] = ["cn", "us", "uk", "au"];

/// The optional columns' defaults, as documented in this module.
pub const DEFAULTS: [(&str, &str); 10] = [
    ("call_hours", "none: the jurisdiction's window (ranges like 18:00-20:00, several separated by ;, may cross midnight)"),
    ("night_call_consent", "false (true: the jurisdiction's consent window applies, cn night calls)"),
    ("currency", "from the jurisdiction (cn CNY, us USD, uk GBP, au AUD), else from the language (zh CNY, en USD)"),
    ("timezone", "none: zones from the phone numbers' prefixes (weaker source)"),
    ("language", "zh when the jurisdiction is cn, else en"),
    ("jurisdiction", "from the main phone's country (+86 cn, +1 us, +44 uk, +61 au), else the policy's default_jurisdiction"),
    ("alt_phones", "none (separate several with ; or |)"),
    ("days_past_due", "none: counted from due_date"),
    ("agent_uri", "none: the campaign's default agent"),
    ("caller_id", "none: the campaign's caller_id, else the trunk's (E.164)"),
];

/// Prints the optional columns and their defaults, one per line.
pub fn write_defaults(out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "required columns: {}", REQUIRED_COLUMNS.join(", "))?;
    for (col, d) in DEFAULTS {
        writeln!(out, "{col}: {d}")?;
    }
    Ok(())
}

/// One rejected row (or, with `account_id` None and line 1, a file-level problem).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowError {
    /// 1-based line number in the file (1 is the header).
    pub line: u64,
    /// The row's account id when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// What was wrong, naming the column and the value.
    pub reason: String,
}

/// The result of reading an accounts file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    /// Accounts accepted, in file order.
    pub accounts: Vec<Account>,
    /// Rows rejected (and file-level errors, which reject every row).
    pub errors: Vec<RowError>,
    /// Things that did not reject anything (unknown columns).
    pub warnings: Vec<String>,
    /// What each accepted account asked about when to be called, when the
    /// file has a `call_hours` or `night_call_consent` column (then every
    /// accepted account has an entry; else none does).
    pub contact: std::collections::BTreeMap<String, ContactPrefs>,
}

/// Options for reading the file.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// ISO 3166 region for numbers written without `+` ("US").
    pub default_region: String,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            default_region: "US".into(),
        }
    }
}

/// Reads accounts with the default options (region "US").
pub fn load_accounts<R: Read>(reader: R) -> CheckReport {
    load_accounts_with(reader, &LoadOptions::default())
}

/// Reads accounts; every row is validated, good rows are kept.
pub fn load_accounts_with<R: Read>(reader: R, opts: &LoadOptions) -> CheckReport {
    let mut report = CheckReport::default();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(reader);
    let headers = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            report.errors.push(RowError {
                line: 1,
                account_id: None,
                reason: format!("cannot read the header: {e}"),
            });
            return report;
        }
    };
    let mut cols: Vec<String> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        match std::str::from_utf8(h) {
            Ok(s) => cols.push(s.trim().trim_start_matches('\u{feff}').to_ascii_lowercase()),
            Err(_) => {
                report.errors.push(RowError {
                    line: 1,
                    account_id: None,
                    reason: format!("header column {} is not valid UTF-8", i + 1),
                });
                return report;
            }
        }
    }
    let missing: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .copied()
        .filter(|c| !cols.iter().any(|h| h == c))
        .collect();
    if !missing.is_empty() {
        report.errors.push(RowError {
            line: 1,
            account_id: None,
            reason: format!(
                "missing required column(s): {} (required: {})",
                missing.join(", "),
                REQUIRED_COLUMNS.join(", ")
            ),
        });
        return report;
    }
    for (i, c) in cols.iter().enumerate() {
        if cols[..i].contains(c) {
            report.errors.push(RowError {
                line: 1,
                account_id: None,
                reason: format!("column '{c}' appears twice"),
            });
            return report;
        }
        if !REQUIRED_COLUMNS.contains(&c.as_str()) && !OPTIONAL_COLUMNS.contains(&c.as_str()) {
            report.warnings.push(format!(
                "unknown column '{c}' ignored (known: {}, {})",
                REQUIRED_COLUMNS.join(", "),
                OPTIONAL_COLUMNS.join(", ")
            ));
        }
    }
    let idx = |name: &str| cols.iter().position(|c| c == name);
    let ix = ColumnIndex {
        account_id: idx("account_id"),
        name: idx("name"),
        phone: idx("phone"),
        amount: idx("amount"),
        due_date: idx("due_date"),
        currency: idx("currency"),
        timezone: idx("timezone"),
        language: idx("language"),
        jurisdiction: idx("jurisdiction"),
        alt_phones: idx("alt_phones"),
        days_past_due: idx("days_past_due"),
        agent_uri: idx("agent_uri"),
        caller_id: idx("caller_id"),
    };
    let contact_cols = (idx("call_hours"), idx("night_call_consent"));
    let mut seen: HashSet<String> = HashSet::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(line);
                report.errors.push(RowError {
                    line,
                    account_id: None,
                    reason: format!("unreadable row: {e}"),
                });
                // A CSV syntax error may leave the reader mid-field; stop
                // rather than misreport every following line.
                if !matches!(e.kind(), csv::ErrorKind::UnequalLengths { .. }) {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(line);
        if record
            .iter()
            .all(|f| f.iter().all(|b| b.is_ascii_whitespace()))
        {
            continue;
        }
        let contact = if contact_cols.0.is_some() || contact_cols.1.is_some() {
            parse_contact(&record, contact_cols).map(Some)
        } else {
            Ok(None)
        };
        match parse_row(&record, &ix, cols.len(), opts).and_then(|acc| match contact {
            Ok(c) => Ok((acc, c)),
            Err(reason) => Err((Some(acc.account_id), reason)),
        }) {
            Ok((acc, contact)) => {
                if !seen.insert(acc.account_id.clone()) {
                    report.errors.push(RowError {
                        line,
                        account_id: Some(acc.account_id.clone()),
                        reason: format!(
                            "duplicate account_id '{}' (first row kept)",
                            acc.account_id
                        ),
                    });
                } else {
                    if let Some(c) = contact {
                        report.contact.insert(acc.account_id.clone(), c);
                    }
                    report.accounts.push(acc);
                }
            }
            Err((account_id, reason)) => report.errors.push(RowError {
                line,
                account_id,
                reason,
            }),
        }
    }
    report
}

/// The contact columns of a row; a value that cannot be read rejects the
/// row (never read as "no preference": that would call when asked not to).
fn parse_contact(
    rec: &csv::ByteRecord,
    (hours, consent): (Option<usize>, Option<usize>),
) -> Result<ContactPrefs, String> {
    let get = |i: Option<usize>| {
        i.and_then(|i| rec.get(i))
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
            .unwrap_or_default()
    };
    let h = get(hours);
    let call_hours = if h.is_empty() {
        Vec::new()
    } else {
        parse_call_hours(&h)?
    };
    let c = get(consent).to_ascii_lowercase();
    let night_call_consent = match c.as_str() {
        "" | "false" | "no" | "0" => false,
        "true" | "yes" | "1" => true,
        other => return Err(format!("night_call_consent '{other}' is not true or false")),
    };
    Ok(ContactPrefs {
        call_hours,
        night_call_consent,
    })
}

struct ColumnIndex {
    account_id: Option<usize>,
    name: Option<usize>,
    phone: Option<usize>,
    amount: Option<usize>,
    due_date: Option<usize>,
    currency: Option<usize>,
    timezone: Option<usize>,
    language: Option<usize>,
    jurisdiction: Option<usize>,
    alt_phones: Option<usize>,
    days_past_due: Option<usize>,
    agent_uri: Option<usize>,
    caller_id: Option<usize>,
}

type RowResult = Result<Account, (Option<String>, String)>;

fn parse_row(
    rec: &csv::ByteRecord,
    ix: &ColumnIndex,
    ncols: usize,
    opts: &LoadOptions,
) -> RowResult {
    let mut fields: Vec<&str> = Vec::with_capacity(rec.len());
    for (i, f) in rec.iter().enumerate() {
        match std::str::from_utf8(f) {
            Ok(s) => fields.push(s.trim()),
            Err(_) => return Err((None, format!("field {} is not valid UTF-8", i + 1))),
        }
    }
    let get = |i: Option<usize>| -> &str { i.and_then(|i| fields.get(i).copied()).unwrap_or("") };
    let account_id = get(ix.account_id).to_string();
    let id_opt = if account_id.is_empty() {
        None
    } else {
        Some(account_id.clone())
    };
    let fail = |reason: String| Err((id_opt.clone(), reason));
    if fields.len() != ncols {
        return fail(format!(
            "has {} fields, the header has {}",
            fields.len(),
            ncols
        ));
    }
    if account_id.is_empty() {
        return fail("account_id is empty".into());
    }
    let name = get(ix.name);
    if name.is_empty() {
        return fail("name is empty".into());
    }
    let phone_raw = get(ix.phone);
    if phone_raw.is_empty() {
        return fail("phone is empty".into());
    }
    let phone = match normalise_phone(phone_raw, &opts.default_region) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let amount_raw = get(ix.amount);
    let amount =
        match Decimal::from_str(amount_raw).or_else(|_| Decimal::from_scientific(amount_raw)) {
            Ok(a) if a.is_sign_negative() && !a.is_zero() => {
                return fail(format!("amount '{amount_raw}' is negative"))
            }
            Ok(a) => a,
            Err(_) => return fail(format!("amount '{amount_raw}' is not a decimal number")),
        };
    let due_raw = get(ix.due_date);
    let due_date = match NaiveDate::parse_from_str(due_raw, "%Y-%m-%d") {
        Ok(d) => d,
        Err(_) => return fail(format!("due_date '{due_raw}' is not a date (YYYY-MM-DD)")),
    };
    let tz_raw = get(ix.timezone);
    let timezone = if tz_raw.is_empty() {
        None
    } else if tz_raw.parse::<chrono_tz::Tz>().is_ok() {
        Some(tz_raw.to_string())
    } else {
        return fail(format!(
            "timezone '{tz_raw}' is not a known IANA time zone (e.g. America/New_York)"
        ));
    };
    let jur_raw = get(ix.jurisdiction).to_ascii_lowercase();
    let jurisdiction = if jur_raw.is_empty() {
        jurisdiction_for_phone(&phone).map(str::to_string)
    } else if JURISDICTIONS.contains(&jur_raw.as_str()) {
        Some(jur_raw)
    } else {
        return fail(format!(
            "jurisdiction '{}' is not one of cn, us, uk, au",
            get(ix.jurisdiction)
        ));
    };
    let lang_raw = get(ix.language).to_ascii_lowercase();
    let language = match lang_raw.as_str() {
        "" if jurisdiction.as_deref() == Some("cn") => Language::Zh,
        "" => Language::En,
        "en" => Language::En,
        "zh" => Language::Zh,
        _ => {
            return fail(format!(
                "language '{}' is not one of en, zh",
                get(ix.language)
            ))
        }
    };
    let cur_raw = get(ix.currency);
    let currency = if cur_raw.is_empty() {
        Some(default_currency(jurisdiction.as_deref(), language).to_string())
    } else if cur_raw.len() == 3 && cur_raw.bytes().all(|b| b.is_ascii_alphabetic()) {
        Some(cur_raw.to_ascii_uppercase())
    } else {
        return fail(format!(
            "currency '{cur_raw}' is not a three-letter ISO 4217 code"
        ));
    };
    let mut alt_phones = Vec::new();
    for p in get(ix.alt_phones)
        .split([';', '|'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match normalise_phone(p, &opts.default_region) {
            Ok(n) => {
                if n != phone && !alt_phones.contains(&n) {
                    alt_phones.push(n)
                }
            }
            Err(e) => return fail(format!("alt_phones: {e}")),
        }
    }
    let dpd_raw = get(ix.days_past_due);
    let days_past_due = if dpd_raw.is_empty() {
        None
    } else {
        match dpd_raw.parse::<i64>() {
            Ok(d) => Some(d),
            Err(_) => return fail(format!("days_past_due '{dpd_raw}' is not a whole number")),
        }
    };
    let uri_raw = get(ix.agent_uri);
    let agent_uri = if uri_raw.is_empty() {
        None
    } else if ["sip:", "sips:", "tel:"]
        .iter()
        .any(|s| uri_raw.to_ascii_lowercase().starts_with(s))
    {
        Some(uri_raw.to_string())
    } else {
        return fail(format!(
            "agent_uri '{uri_raw}' is not a sip:, sips: or tel: URI"
        ));
    };
    let cid_raw = get(ix.caller_id);
    let caller_id = if cid_raw.is_empty() {
        None
    } else if is_e164(cid_raw) {
        Some(cid_raw.to_string())
    } else {
        return fail(format!(
            "caller_id '{cid_raw}' is not an E.164 number (+14155550100)"
        ));
    };
    Ok(Account {
        account_id,
        name: name.to_string(),
        phone,
        amount,
        currency,
        due_date,
        timezone,
        language,
        jurisdiction,
        alt_phones,
        days_past_due,
        agent_uri,
        caller_id,
    })
}

/// Whether `s` is an E.164 number: `+`, then 2..=15 digits, the first not 0.
pub fn is_e164(s: &str) -> bool {
    let Some(d) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0')
}

/// Normalises a phone number to E.164, reading numbers without `+` in
/// `default_region` (ISO 3166, e.g. "US"). The error names the value.
pub fn normalise_phone(raw: &str, default_region: &str) -> Result<String, String> {
    let raw = raw.trim();
    let bad = || format!("phone '{raw}' is not a valid number");
    // The crate strips the default region's national prefix even from a
    // number written with '+' ("+86 138..." read in US loses its "1"), so a
    // '+' number is parsed without a region, and every result is re-read from
    // its E.164 form to prove it round-trips.
    let region = if raw.starts_with('+') {
        None
    } else {
        phonenumber::country::Id::from_str(&default_region.to_ascii_uppercase()).ok()
    };
    let parsed = phonenumber::parse(region, raw).map_err(|_| bad())?;
    if !parsed.is_valid() {
        return Err(bad());
    }
    let e164 = parsed.format().mode(phonenumber::Mode::E164).to_string();
    match phonenumber::parse(None, &e164) {
        Ok(again)
            if again.is_valid()
                && again.format().mode(phonenumber::Mode::E164).to_string() == e164 =>
        {
            Ok(e164)
        }
        _ => Err(bad()),
    }
}

/// The jurisdiction preset a number's country implies, if it has one.
pub fn jurisdiction_for_phone(e164: &str) -> Option<&'static str> {
    let d = e164.strip_prefix('+')?;
    if d.starts_with("86") {
        Some("cn")
    } else if d.starts_with("44") {
        Some("uk")
    } else if d.starts_with("61") {
        Some("au")
    } else if d.starts_with('1') {
        Some("us")
    } else {
        None
    }
}

fn default_currency(jurisdiction: Option<&str>, language: Language) -> &'static str {
    match (jurisdiction, language) {
        (Some("cn"), _) => "CNY",
        (Some("us"), _) => "USD",
        (Some("uk"), _) => "GBP",
        (Some("au"), _) => "AUD",
        (_, Language::Zh) => "CNY",
        (_, Language::En) => "USD",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "account_id,name,phone,amount,due_date,currency,timezone,language,jurisdiction,alt_phones,days_past_due,agent_uri\n";

    #[test]
    fn a_caller_id_column_must_be_e164_and_is_optional() {
        let r = load_accounts(
            "account_id,name,phone,amount,due_date,caller_id\n\
             A1,N,+14155550100,1,2026-01-01,+14155550199\n\
             A2,N,+14155550101,1,2026-01-01,\n\
             A3,N,+14155550102,1,2026-01-01,4155550199\n"
                .as_bytes(),
        );
        assert_eq!(r.accounts.len(), 2, "{:?}", r.errors);
        assert_eq!(r.accounts[0].caller_id.as_deref(), Some("+14155550199"));
        assert_eq!(r.accounts[1].caller_id, None);
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].line, 4);
        assert!(r.errors[0].reason.contains("caller_id"), "{:?}", r.errors);
        assert!(r.warnings.is_empty(), "a known column: {:?}", r.warnings);
    }

    #[test]
    fn call_hours_and_consent_columns_reach_the_report_or_reject_the_row() {
        let r = load_accounts(
            "account_id,name,phone,amount,due_date,call_hours,night_call_consent\n\
             A1,N,+14155550100,1,2026-01-01,18:00-20:00;21:30-01:00,true\n\
             A2,N,+14155550101,1,2026-01-01,,\n\
             A3,N,+14155550102,1,2026-01-01,after six,false\n\
             A4,N,+14155550103,1,2026-01-01,,maybe\n"
                .as_bytes(),
        );
        assert_eq!(r.accounts.len(), 2, "{:?}", r.errors);
        let a1 = &r.contact["A1"];
        assert_eq!(a1.call_hours.len(), 2);
        assert!(a1.night_call_consent);
        assert_eq!(r.contact["A2"], ContactPrefs::default());
        assert_eq!(r.errors.len(), 2);
        assert!(r.errors[0].reason.contains("after six"), "{:?}", r.errors);
        assert!(r.errors[1].reason.contains("maybe"), "{:?}", r.errors);
        assert!(load("A1,N,+14155550100,1,2026-01-01,,,,,,,\n")
            .contact
            .is_empty());
    }

    fn load(body: &str) -> CheckReport {
        load_accounts(format!("{HEADER}{body}").as_bytes())
    }

    #[test]
    fn good_rows_are_kept_with_normalised_phones_and_defaults() {
        let r = load(concat!(
            "A1,Maria López,(415) 555-0100,125.50,2026-11-20,,,,,+1 212 555 0100|646-555-0100,,\n",
            "A2,王伟,+86 138 1234 5678,3000,2026-11-20,,Asia/Shanghai,,,,,sip:agent@example.com\n",
        ));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.accounts.len(), 2);
        let a = &r.accounts[0];
        assert_eq!(a.phone, "+14155550100");
        assert_eq!(
            a.alt_phones,
            vec!["+12125550100".to_string(), "+16465550100".to_string()]
        );
        assert_eq!(a.amount.to_string(), "125.50");
        assert_eq!(a.jurisdiction.as_deref(), Some("us"));
        assert_eq!(a.currency.as_deref(), Some("USD"));
        assert_eq!(a.timezone, None);
        let b = &r.accounts[1];
        assert_eq!(b.name, "王伟");
        assert_eq!(b.phone, "+8613812345678");
        assert_eq!(b.language, Language::Zh);
        assert_eq!(b.currency.as_deref(), Some("CNY"));
    }

    #[test]
    fn each_bad_row_is_reported_with_its_line_and_reason() {
        let r = load(concat!(
            "A1,Ann,12ab,10,2026-11-20,,,,,,,\n",                  // line 2
            "A2,Bob,+14155550100,10,2026-11-20,,Mars/Base,,,,,\n", // 3
            "A3,Cy,+14155550100,-5,2026-11-20,,,,,,,\n",           // 4
            "A4,Di,+14155550100,10,2026-13-40,,,,,,,\n",           // 5
            "A5,Ed,+14155550100,10,2026-11-20,,,fr,,,,\n",         // 6
            "A6,Fa,+14155550100,10,2026-11-20,,,,mx,,,\n",         // 7
            "A7,Gu,+14155550100,10,2026-11-20,,,,,,,\n",           // 8
            "A7,Gu,+14155550100,10,2026-11-20,,,,,,,\n",           // 9 duplicate
            "A8,Hu,,10,2026-11-20,,,,,,,\n",                       // 10
        ));
        let got: Vec<(u64, &str)> = r
            .errors
            .iter()
            .map(|e| (e.line, e.reason.as_str()))
            .collect();
        assert_eq!(got.len(), 8, "{got:?}");
        assert_eq!(got[0], (2, "phone '12ab' is not a valid number"));
        assert!(got[1].1.contains("Mars/Base") && got[1].0 == 3);
        assert!(got[2].1.contains("negative") && got[2].0 == 4);
        assert!(got[3].1.contains("2026-13-40") && got[3].0 == 5);
        assert!(got[4].1.contains("language 'fr'") && got[4].0 == 6);
        assert!(got[5].1.contains("jurisdiction 'mx'") && got[5].0 == 7);
        assert!(got[6].1.contains("duplicate") && got[6].0 == 9);
        assert!(got[7].1.contains("phone is empty") && got[7].0 == 10);
        assert_eq!(r.accounts.len(), 1);
        assert_eq!(r.accounts[0].account_id, "A7");
    }

    #[test]
    fn missing_required_column_is_a_file_level_error() {
        let r = load_accounts("account_id,name,amount,due_date\nA1,N,1,2026-01-01\n".as_bytes());
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].line, 1);
        assert!(r.errors[0].reason.contains("phone"));
        assert!(r.accounts.is_empty());
    }

    #[test]
    fn numbers_without_plus_use_the_configured_region() {
        let opts = LoadOptions {
            default_region: "AU".into(),
        };
        let r = load_accounts_with(
            "account_id,name,phone,amount,due_date\nA1,N,0412 345 678,1,2026-01-01\n".as_bytes(),
            &opts,
        );
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.accounts[0].phone, "+61412345678");
        assert_eq!(r.accounts[0].jurisdiction.as_deref(), Some("au"));
        assert_eq!(r.accounts[0].currency.as_deref(), Some("AUD"));
    }

    #[test]
    fn short_rows_and_unknown_columns_do_not_panic() {
        let r = load_accounts("account_id,name,phone,amount,due_date,timezon\nA1,N\nA2,N,+14155550100,1,2026-01-01,UTC\n".as_bytes());
        assert_eq!(r.errors.len(), 1);
        assert_eq!(r.errors[0].line, 2);
        assert_eq!(r.accounts.len(), 1);
        assert!(r.warnings[0].contains("timezon"));
    }

    #[test]
    fn plus_numbers_keep_their_digits_whatever_the_default_region() {
        assert_eq!(
            normalise_phone("+86 138 1234 5678", "US").unwrap(),
            "+8613812345678"
        );
        assert_eq!(
            normalise_phone("+86 10 6552 9988", "US").unwrap(),
            "+861065529988"
        );
        assert_eq!(
            normalise_phone("1 415 555 0100", "US").unwrap(),
            "+14155550100"
        );
        assert!(normalise_phone("555", "US").is_err());
    }
}
