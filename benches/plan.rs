//! Plans 1,000,000 synthetic accounts with small histories on one thread:
//! for each, the candidate zones (phone prefix table), then `decide` with its
//! audit and `next_allowed_at`, then the JSON line `duecall plan` prints
//! (written to a sink). Prints total seconds and accounts/s (target < 10 s).
//!
//! Run: `cargo bench --bench plan` (release). `PLAN_ACCOUNTS=N` changes the count.

use std::io::Write;
use std::time::Instant;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use duecall::account::history::PastAttempt;
use duecall::account::tz::zones_for;
use duecall::account::{Account, Language};
use duecall::outcome::Disposition;
use duecall::policy::{decide, AccountState, Decision, PolicyConfig};
use rand::{rngs::StdRng, Rng, SeedableRng};

fn main() {
    let n: usize = std::env::var("PLAN_ACCOUNTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = StdRng::seed_from_u64(7);
    let now = Utc.with_ymd_and_hms(2026, 11, 20, 6, 30, 0).unwrap();
    let base_due = NaiveDate::from_ymd_opt(2026, 11, 12).unwrap();
    let us_area = ["212", "415", "312", "303", "602", "907", "808", "617"];
    let t_gen = Instant::now();
    let mut accounts = Vec::with_capacity(n);
    let mut histories: Vec<Vec<PastAttempt>> = Vec::with_capacity(n);
    for i in 0..n {
        let k = rng.gen_range(0..100);
        let (jur, phone, lang) = if k < 30 {
            (
                "cn",
                format!("+86138{:08}", rng.gen_range(0..100_000_000u32)),
                Language::Zh,
            )
        } else if k < 70 {
            (
                "us",
                format!(
                    "+1{}5550{:03}",
                    us_area[rng.gen_range(0..us_area.len())],
                    rng.gen_range(100..200)
                ),
                Language::En,
            )
        } else if k < 85 {
            (
                "uk",
                format!("+44207946{:04}", rng.gen_range(0..10_000)),
                Language::En,
            )
        } else if k < 93 {
            (
                "au",
                format!("+614{:08}", rng.gen_range(0..100_000_000u32)),
                Language::En,
            )
        } else {
            (
                "au",
                format!("+6129{:07}", rng.gen_range(0..10_000_000u32)),
                Language::En,
            )
        };
        let id = format!("ACC{i:07}");
        let hist: Vec<PastAttempt> = (0..rng.gen_range(0..5))
            .map(|_| PastAttempt {
                account_id: id.clone(),
                phone: phone.clone(),
                at: now - Duration::minutes(rng.gen_range(0..8 * 24 * 60)),
                disposition: Disposition::NoAnswer,
                conversation: rng.gen_bool(0.15),
            })
            .collect();
        accounts.push(Account {
            account_id: id,
            name: "Synthetic Person".into(),
            phone,
            amount: rust_decimal::Decimal::new(rng.gen_range(1000..500_000), 2),
            currency: None,
            due_date: base_due + Duration::days(rng.gen_range(-12..8)),
            timezone: None,
            language: lang,
            jurisdiction: Some(jur.into()),
            alt_phones: vec![],
            days_past_due: None,
            agent_uri: None,
            caller_id: None,
        });
        histories.push(hist);
    }
    eprintln!(
        "generated {n} accounts in {:.2} s",
        t_gen.elapsed().as_secs_f64()
    );

    // The zone lookup alone, by kind of number.
    let t_z = Instant::now();
    let mut zone_count = 0usize;
    for a in &accounts {
        zone_count += zones_for(a).0.len();
    }
    eprintln!(
        "zones_for alone: {:.2} s ({zone_count} zones)",
        t_z.elapsed().as_secs_f64()
    );

    let cfg = PolicyConfig::default();
    let state = AccountState::default();
    let mut sink = std::io::sink();
    let (mut allow, mut deny, mut with_next, mut human) = (0usize, 0usize, 0usize, 0usize);
    let t = Instant::now();
    let mut decide_secs = 0.0;
    for (a, h) in accounts.iter().zip(&histories) {
        let t0 = Instant::now();
        let (zones, _src) = zones_for(a);
        let d = decide(a, &zones, h, &state, &cfg, now);
        decide_secs += t0.elapsed().as_secs_f64();
        match d.decision {
            Decision::Allow => allow += 1,
            Decision::Deny => deny += 1,
        }
        with_next += usize::from(d.next_allowed_at.is_some());
        human += usize::from(d.human_queue);
        serde_json::to_writer(&mut sink, &d).expect("sink never fails");
        sink.write_all(b"\n").expect("sink never fails");
    }
    let secs = t.elapsed().as_secs_f64();
    println!("plan: {n} accounts on one thread in {secs:.2} s = {:.0} accounts/s (zones+decide {decide_secs:.2} s, JSON {:.2} s)", n as f64 / secs, secs - decide_secs);
    println!(
        "      allow {allow}, deny {deny}, with next_allowed_at {with_next}, human queue {human}"
    );
}
