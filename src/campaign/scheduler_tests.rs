//! The scheduler driven on simulated time: every dial through the gate,
//! concurrency, pacing, retries, callbacks, numbers, stop.
use super::*;
use crate::campaign::admission::{AdmissionRule, Load};
use crate::outcome::SuppressScope;
use chrono::TimeZone;
use std::collections::BTreeMap;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 13, 0, 0).unwrap()
}

fn accounts(n: usize) -> Vec<CampaignAccount> {
    (0..n)
        .map(|i| CampaignAccount {
            account_id: format!("a{i}"),
            phones: vec![format!("+1415555{i:04}")],
        })
        .collect()
}

type Answer = Verdict<()>;

fn always(_: usize, _: &str, _: DateTime<Utc>) -> Answer {
    Verdict::Allow(())
}

/// The scheduler with a gate answering its questions the way the runner
/// does: every `Decide` is answered at once and polled again.
struct Driven<G> {
    s: Scheduler<()>,
    gate: G,
}

impl<G: Fn(usize, &str, DateTime<Utc>) -> Answer> Driven<G> {
    fn new(
        accounts: Vec<CampaignAccount>,
        config: SchedulerConfig,
        gate: G,
    ) -> Result<Self, SchedulerError> {
        Ok(Driven {
            s: Scheduler::new(accounts, config)?,
            gate,
        })
    }

    fn poll(&mut self, now: DateTime<Utc>) -> SchedulerAction<()> {
        loop {
            match self.s.poll(now) {
                SchedulerAction::Decide { account_idx, phone } => {
                    let verdict = (self.gate)(account_idx, &phone, now);
                    self.s
                        .handle(
                            now,
                            SchedulerEvent::Decided {
                                account: account_idx,
                                phone,
                                verdict,
                            },
                        )
                        .unwrap();
                }
                other => return other,
            }
        }
    }

    fn handle(
        &mut self,
        now: DateTime<Utc>,
        event: SchedulerEvent<()>,
    ) -> Result<(), SchedulerError> {
        self.s.handle(now, event)
    }

    fn stop(&mut self) {
        self.s.stop()
    }

    fn summary(&self) -> Summary {
        self.s.summary()
    }
}

fn done_route() -> Option<Route> {
    Some(Route {
        kind: RouteKind::Done,
        reason: "reminded".into(),
        until: None,
        scope: None,
        hours: None,
        follow_up: None,
    })
}

fn retry_at(t: DateTime<Utc>) -> Option<Route> {
    Some(Route {
        kind: RouteKind::Retry,
        reason: "callback_later".into(),
        until: Some(t.fixed_offset()),
        scope: None,
        hours: None,
        follow_up: None,
    })
}

/// One dial as the simulated driver saw it.
#[derive(Debug, Clone, PartialEq)]
struct DialLog {
    at: DateTime<Utc>,
    account: usize,
    phone: String,
    attempt: u32,
}

/// What a simulated call does: how long it lasts and how it ends.
type Script<'a> = dyn FnMut(usize, u32, &str) -> (Duration, Disposition, Option<Route>) + 'a;

/// Drives the scheduler on simulated time like the runner would, and
/// checks the concurrency limit at every step.
fn simulate<G: Fn(usize, &str, DateTime<Utc>) -> Answer>(
    s: &mut Driven<G>,
    start: DateTime<Utc>,
    script: &mut Script<'_>,
) -> (Vec<DialLog>, Summary, usize) {
    let mut now = start;
    type Ending = (usize, Disposition, Option<Route>);
    let mut ends: BTreeMap<(DateTime<Utc>, u64), Ending> = BTreeMap::new();
    let mut seq = 0u64;
    let mut log = Vec::new();
    let mut attempts: HashMap<usize, u32> = HashMap::new();
    let mut max_in_flight = 0;
    for _ in 0..1_000_000 {
        while let Some((&(at, k), _)) = ends.first_key_value() {
            if at > now {
                break;
            }
            let (idx, d, r) = ends.remove(&(at, k)).unwrap();
            s.handle(
                now,
                SchedulerEvent::CallEnded {
                    account: idx,
                    disposition: d,
                    route: r,
                },
            )
            .unwrap();
        }
        match s.poll(now) {
            SchedulerAction::Dial {
                account_idx, phone, ..
            } => {
                let n = attempts.entry(account_idx).or_default();
                *n += 1;
                assert!(
                    !ends.values().any(|(i, _, _)| *i == account_idx),
                    "account {account_idx} dialled while its call is in flight"
                );
                log.push(DialLog {
                    at: now,
                    account: account_idx,
                    phone: phone.clone(),
                    attempt: *n,
                });
                s.handle(
                    now,
                    SchedulerEvent::CallStarted {
                        account: account_idx,
                    },
                )
                .unwrap();
                let (dur, d, r) = script(account_idx, *n, &phone);
                ends.insert((now + dur, seq), (account_idx, d, r));
                seq += 1;
                max_in_flight = max_in_flight.max(ends.len());
                assert_eq!(s.summary().in_flight, ends.len());
            }
            SchedulerAction::WaitUntil(t) => {
                assert!(t > now, "WaitUntil({t}) at {now} would spin");
                now = ends.keys().next().map_or(t, |(e, _)| t.min(*e));
            }
            SchedulerAction::WaitForCalls => {
                let (e, _) = ends
                    .keys()
                    .next()
                    .expect("WaitForCalls with no call in flight");
                now = now.max(*e);
            }
            SchedulerAction::Decide { .. } => unreachable!("Driven answers every question"),
            SchedulerAction::Finished(summary) => {
                assert!(ends.is_empty(), "finished with calls in flight");
                return (log, summary, max_in_flight);
            }
        }
    }
    panic!("simulation did not finish");
}

fn cfg(max_concurrent: usize, cps: Option<f64>, hours: i64) -> SchedulerConfig {
    SchedulerConfig {
        max_concurrent,
        calls_per_second: cps,
        ..SchedulerConfig::until(t0() + Duration::hours(hours))
    }
}

#[test]
fn concurrency_is_never_exceeded() {
    let mut s = Driven::new(accounts(40), cfg(3, None, 48), always).unwrap();
    let (log, summary, max_seen) = simulate(&mut s, t0(), &mut |i, n, _| {
        let d = match (i + n as usize) % 4 {
            0 => Disposition::Busy,
            1 => Disposition::NoAnswer,
            _ => Disposition::Answered,
        };
        (Duration::seconds(20 + (i as i64 * 7) % 90), d, None)
    });
    assert!(max_seen <= 3, "saw {max_seen} calls in flight, limit 3");
    assert_eq!(max_seen, 3, "the limit is used, not just respected");
    assert_eq!(summary.done, 40);
    assert!(log.len() > 40, "retries happened");
}

#[test]
fn pacing_spaces_call_starts_at_the_configured_rate() {
    let mut s = Driven::new(accounts(10), cfg(100, Some(0.5), 24), always).unwrap();
    let (log, _, _) = simulate(&mut s, t0(), &mut |_, _, _| {
        (Duration::minutes(5), Disposition::Answered, done_route())
    });
    assert_eq!(log.len(), 10);
    for w in log.windows(2) {
        assert_eq!(w[1].at - w[0].at, Duration::seconds(2), "{:?}", w);
    }
}

#[test]
fn pacing_burst_lets_the_first_calls_start_together_then_keeps_the_rate() {
    let config = SchedulerConfig {
        burst: 3,
        ..cfg(100, Some(1.0), 24)
    };
    let mut s = Driven::new(accounts(6), config, always).unwrap();
    let (log, _, _) = simulate(&mut s, t0(), &mut |_, _, _| {
        (Duration::minutes(5), Disposition::Answered, done_route())
    });
    let offsets: Vec<i64> = log.iter().map(|d| (d.at - t0()).num_seconds()).collect();
    assert_eq!(offsets, vec![0, 0, 0, 1, 2, 3]);
}

#[test]
fn retry_timing_follows_the_disposition() {
    let cases = [
        (Disposition::Busy, Duration::minutes(10)),
        (Disposition::NoAnswer, Duration::hours(2)),
        (Disposition::Voicemail, Duration::hours(24)),
        (Disposition::Failed, Duration::minutes(30)),
    ];
    for (d, delay) in cases {
        let mut s = Driven::new(accounts(1), cfg(1, None, 72), always).unwrap();
        let call = Duration::seconds(30);
        let (log, summary, _) = simulate(&mut s, t0(), &mut |_, n, _| {
            if n == 1 {
                (call, d, None)
            } else {
                (call, Disposition::Answered, done_route())
            }
        });
        assert_eq!(log.len(), 2, "{d:?}");
        assert_eq!(log[1].at - (log[0].at + call), delay, "{d:?}");
        assert_eq!(summary.by_disposition.get(&d), Some(&1));
    }
}

#[test]
fn retry_delays_are_configurable() {
    let mut config = cfg(1, None, 72);
    config.retry.busy = Duration::minutes(3);
    let mut s = Driven::new(accounts(1), config, always).unwrap();
    let (log, _, _) = simulate(&mut s, t0(), &mut |_, n, _| {
        if n == 1 {
            (Duration::zero(), Disposition::Busy, None)
        } else {
            (Duration::zero(), Disposition::Answered, done_route())
        }
    });
    assert_eq!(log[1].at - log[0].at, Duration::minutes(3));
}

#[test]
fn account_is_not_redialled_while_in_flight() {
    let mut s = Driven::new(accounts(1), cfg(5, None, 24), always).unwrap();
    let now = t0();
    assert!(matches!(
        s.poll(now),
        SchedulerAction::Dial { account_idx: 0, .. }
    ));
    assert_eq!(s.poll(now), SchedulerAction::WaitForCalls);
    assert_eq!(
        s.poll(now + Duration::hours(3)),
        SchedulerAction::WaitForCalls
    );
    s.handle(
        now + Duration::hours(3),
        SchedulerEvent::CallEnded {
            account: 0,
            disposition: Disposition::Busy,
            route: None,
        },
    )
    .unwrap();
    assert_eq!(
        s.poll(now + Duration::hours(3)),
        SchedulerAction::WaitUntil(now + Duration::hours(3) + Duration::minutes(10))
    );
}

#[test]
fn finishes_when_the_gate_allows_nothing_before_until() {
    let until = t0() + Duration::hours(8);
    let gate =
        move |_: usize, _: &str, _: DateTime<Utc>| Verdict::deny(Some(until + Duration::hours(11)));
    let mut s = Driven::new(accounts(3), cfg(2, Some(1.0), 8), gate).unwrap();
    match s.poll(t0()) {
        SchedulerAction::Finished(sum) => {
            assert_eq!(sum.dials, 0);
            assert_eq!(sum.blocked, 3);
            assert_eq!(sum.done, 3);
        }
        other => panic!("expected Finished, got {other:?}"),
    }
    // Finished stays finished.
    assert!(matches!(
        s.poll(t0() + Duration::hours(1)),
        SchedulerAction::Finished(_)
    ));
}

#[test]
fn gate_denial_waits_until_the_time_it_names_then_dials() {
    let opens = t0() + Duration::minutes(45);
    let gate = move |_: usize, _: &str, now: DateTime<Utc>| {
        if now >= opens {
            Verdict::Allow(())
        } else {
            Verdict::deny(Some(opens))
        }
    };
    let mut s = Driven::new(accounts(1), cfg(1, None, 8), gate).unwrap();
    assert_eq!(s.poll(t0()), SchedulerAction::WaitUntil(opens));
    assert_eq!(
        s.poll(opens - Duration::seconds(1)),
        SchedulerAction::WaitUntil(opens)
    );
    assert!(matches!(s.poll(opens), SchedulerAction::Dial { .. }));
}

#[test]
fn retry_that_falls_after_until_ends_the_campaign() {
    let mut s = Driven::new(accounts(1), cfg(1, None, 1), always).unwrap();
    let (log, summary, _) = simulate(&mut s, t0() + Duration::minutes(55), &mut |_, _, _| {
        (Duration::seconds(30), Disposition::Busy, None)
    });
    assert_eq!(log.len(), 1);
    assert_eq!(
        summary.remaining, 1,
        "the account is left for a later campaign"
    );
    assert_eq!(
        summary.next_at,
        Some(t0() + Duration::minutes(55) + Duration::seconds(30) + Duration::minutes(10))
    );
}

#[test]
fn callbacks_are_honoured_at_the_time_asked() {
    let asked = t0() + Duration::hours(3) + Duration::minutes(17);
    let mut s = Driven::new(accounts(2), cfg(2, None, 12), always).unwrap();
    let (log, summary, _) = simulate(&mut s, t0(), &mut |i, n, _| match (i, n) {
        (0, 1) => (Duration::minutes(1), Disposition::Answered, retry_at(asked)),
        _ => (Duration::minutes(1), Disposition::Answered, done_route()),
    });
    let a0: Vec<_> = log.iter().filter(|d| d.account == 0).collect();
    assert_eq!(a0.len(), 2);
    assert_eq!(
        a0[1].at, asked,
        "called back at the time asked, not before or after"
    );
    assert_eq!(
        a0[1].phone, a0[0].phone,
        "called back on the number that asked"
    );
    assert_eq!(summary.by_route.get(&RouteKind::Retry), Some(&1));
}

#[test]
fn callback_asked_after_until_is_not_dialled_in_this_campaign() {
    let mut s = Driven::new(accounts(1), cfg(1, None, 2), always).unwrap();
    let (log, summary, _) = simulate(&mut s, t0(), &mut |_, _, _| {
        (
            Duration::minutes(1),
            Disposition::Answered,
            retry_at(t0() + Duration::hours(5)),
        )
    });
    assert_eq!(log.len(), 1);
    assert_eq!(summary.remaining, 1);
}

#[test]
fn wrong_number_moves_to_the_next_phone_and_stop_calling_ends_the_account() {
    let two = vec![CampaignAccount {
        account_id: "a".into(),
        phones: vec!["+1111".into(), "+2222".into()],
    }];
    let mut s = Driven::new(two.clone(), cfg(1, None, 12), always).unwrap();
    let (log, summary, _) = simulate(&mut s, t0(), &mut |_, n, _| {
        if n == 1 {
            let r = Route {
                kind: RouteKind::Suppress,
                reason: "wrong_number".into(),
                until: None,
                scope: Some(SuppressScope::Number),
                hours: None,
                follow_up: None,
            };
            (Duration::minutes(1), Disposition::Answered, Some(r))
        } else {
            let r = Route {
                kind: RouteKind::Suppress,
                reason: "stop_calling".into(),
                until: None,
                scope: Some(SuppressScope::Account),
                hours: None,
                follow_up: None,
            };
            (Duration::minutes(1), Disposition::Answered, Some(r))
        }
    });
    assert_eq!(
        log.iter().map(|d| d.phone.as_str()).collect::<Vec<_>>(),
        vec!["+1111", "+2222"]
    );
    assert_eq!(
        log[1].at,
        log[0].at + Duration::minutes(1),
        "next number at once"
    );
    assert_eq!(summary.done, 1);

    let mut s = Driven::new(two, cfg(1, None, 12), always).unwrap();
    let (log, summary, _) = simulate(&mut s, t0(), &mut |_, _, _| {
        (Duration::seconds(5), Disposition::NotFound, None)
    });
    assert_eq!(log.len(), 2, "each dead number tried once");
    assert_eq!(summary.done, 1);
}

#[test]
fn a_dead_number_is_dialled_once_and_the_account_moves_to_its_next_number() {
    let two = vec![CampaignAccount {
        account_id: "a".into(),
        phones: vec!["+1111".into(), "+2222".into()],
    }];
    let mut s = Driven::new(two, cfg(1, None, 12), always).unwrap();
    let (log, summary, _) = simulate(&mut s, t0(), &mut |_, _, phone| {
        if phone == "+1111" {
            // A SIT then 404: not-found, the number suppressed.
            let dead = crate::dialogue::routing::route_unanswered(
                Disposition::NotFound,
                Some(crate::outcome::FailReason::DeadNumber),
            );
            (Duration::seconds(5), Disposition::NotFound, dead)
        } else {
            (Duration::seconds(30), Disposition::NoAnswer, None)
        }
    });
    let phones: Vec<&str> = log.iter().map(|d| d.phone.as_str()).collect();
    assert_eq!(
        phones.iter().filter(|p| **p == "+1111").count(),
        1,
        "{phones:?}"
    );
    assert!(phones.len() > 2, "the live number is retried: {phones:?}");
    assert_eq!(phones[1], "+2222");
    assert_eq!(
        log[1].at,
        log[0].at + Duration::seconds(5),
        "next number at once"
    );
    assert_eq!(summary.by_disposition.get(&Disposition::NotFound), Some(&1));
}

#[test]
fn unreached_account_alternates_between_its_numbers() {
    let two = vec![CampaignAccount {
        account_id: "a".into(),
        phones: vec!["+1111".into(), "+2222".into()],
    }];
    let config = SchedulerConfig {
        max_attempts: Some(3),
        ..cfg(1, None, 24)
    };
    let mut s = Driven::new(two, config, always).unwrap();
    let (log, _, _) = simulate(&mut s, t0(), &mut |_, _, _| {
        (Duration::seconds(30), Disposition::NoAnswer, None)
    });
    assert_eq!(
        log.iter().map(|d| d.phone.as_str()).collect::<Vec<_>>(),
        vec!["+1111", "+2222", "+1111"]
    );
}

#[test]
fn gate_denying_one_number_dials_another() {
    let two = vec![CampaignAccount {
        account_id: "a".into(),
        phones: vec!["+1111".into(), "+2222".into()],
    }];
    let gate = |_: usize, phone: &str, now: DateTime<Utc>| {
        if phone == "+1111" {
            Verdict::deny(Some(now + Duration::hours(1)))
        } else {
            Verdict::Allow(())
        }
    };
    let mut s = Driven::new(two, cfg(1, None, 12), gate).unwrap();
    assert_eq!(
        s.poll(t0()),
        SchedulerAction::Dial {
            account_idx: 0,
            phone: "+2222".into(),
            permit: ()
        }
    );
}

#[test]
fn hardship_agent_route_with_pause_follow_up_ends_the_account() {
    let mut s = Driven::new(accounts(1), cfg(1, None, 12), always).unwrap();
    let (log, summary, _) = simulate(&mut s, t0(), &mut |_, _, _| {
        let pause = Route {
            kind: RouteKind::Pause,
            reason: "hardship".into(),
            until: Some((t0() + Duration::days(30)).fixed_offset()),
            scope: None,
            hours: None,
            follow_up: None,
        };
        let r = Route {
            kind: RouteKind::Agent,
            reason: "hardship".into(),
            until: None,
            scope: None,
            hours: None,
            follow_up: Some(Box::new(pause)),
        };
        (Duration::minutes(2), Disposition::Answered, Some(r))
    });
    assert_eq!(log.len(), 1);
    assert_eq!(summary.by_route.get(&RouteKind::Agent), Some(&1));
    assert_eq!(summary.done, 1);
}

#[test]
fn stop_lets_calls_in_flight_end_then_finishes() {
    let mut s = Driven::new(accounts(5), cfg(2, None, 12), always).unwrap();
    assert!(matches!(
        s.poll(t0()),
        SchedulerAction::Dial { account_idx: 0, .. }
    ));
    s.stop();
    assert_eq!(s.poll(t0()), SchedulerAction::WaitForCalls);
    s.handle(
        t0(),
        SchedulerEvent::CallEnded {
            account: 0,
            disposition: Disposition::Cancelled,
            route: None,
        },
    )
    .unwrap();
    match s.poll(t0()) {
        SchedulerAction::Finished(sum) => {
            assert_eq!(sum.dials, 1);
            assert_eq!(sum.remaining, 5);
        }
        other => panic!("expected Finished, got {other:?}"),
    }
}

#[test]
fn events_for_accounts_not_in_flight_are_refused() {
    let mut s = Driven::new(accounts(2), cfg(2, None, 12), always).unwrap();
    let ended = |account| SchedulerEvent::CallEnded {
        account,
        disposition: Disposition::Busy,
        route: None,
    };
    assert!(matches!(
        s.handle(t0(), ended(0)),
        Err(SchedulerError::NotInFlight { .. })
    ));
    assert!(matches!(
        s.handle(t0(), ended(7)),
        Err(SchedulerError::UnknownAccount {
            account: 7,
            total: 2
        })
    ));
    assert_eq!(s.summary().remaining, 2);
}

#[test]
fn bad_configuration_is_refused() {
    let bad = |c: SchedulerConfig| Scheduler::<()>::new(accounts(1), c).unwrap_err();
    assert_eq!(bad(cfg(0, None, 1)), SchedulerError::ZeroConcurrency);
    assert!(matches!(
        bad(cfg(1, Some(0.0), 1)),
        SchedulerError::BadPacing(_)
    ));
    assert!(matches!(
        bad(cfg(1, Some(f64::NAN), 1)),
        SchedulerError::BadPacing(_)
    ));
    assert_eq!(
        bad(SchedulerConfig {
            burst: 0,
            ..cfg(1, None, 1)
        }),
        SchedulerError::ZeroBurst
    );
}

#[test]
fn gate_giving_a_past_time_is_rechecked_later_not_in_a_loop() {
    let gate =
        |_: usize, _: &str, now: DateTime<Utc>| Verdict::deny(Some(now - Duration::hours(1)));
    let mut s = Driven::new(accounts(1), cfg(1, None, 1), gate).unwrap();
    assert_eq!(
        s.poll(t0()),
        SchedulerAction::WaitUntil(t0() + Duration::minutes(1))
    );
}

#[test]
fn accounts_without_numbers_are_done_from_the_start() {
    let a = vec![CampaignAccount {
        account_id: "x".into(),
        phones: vec![],
    }];
    let mut s = Driven::new(a, cfg(1, None, 1), always).unwrap();
    assert!(matches!(
        s.poll(t0()),
        SchedulerAction::Finished(Summary {
            done: 1,
            dials: 0,
            ..
        })
    ));
}

fn two_numbers() -> Vec<CampaignAccount> {
    vec![CampaignAccount {
        account_id: "a".into(),
        phones: vec!["+1111".into(), "+2222".into()],
    }]
}

#[test]
fn every_dial_is_first_put_to_the_gate_and_carries_its_permit() {
    let mut s: Scheduler<&str> = Scheduler::new(accounts(1), cfg(1, None, 2)).unwrap();
    let SchedulerAction::Decide { account_idx, phone } = s.poll(t0()) else {
        panic!("the first action is a question to the gate");
    };
    assert_eq!(
        s.poll(t0()),
        SchedulerAction::Decide {
            account_idx,
            phone: phone.clone()
        },
        "an unanswered question is asked again, never skipped"
    );
    s.handle(
        t0(),
        SchedulerEvent::Decided {
            account: account_idx,
            phone: phone.clone(),
            verdict: Verdict::Allow("decision #1"),
        },
    )
    .unwrap();
    assert_eq!(
        s.poll(t0()),
        SchedulerAction::Dial {
            account_idx,
            phone,
            permit: "decision #1"
        }
    );
    assert_eq!(s.poll(t0()), SchedulerAction::WaitForCalls);
}

#[test]
fn an_answer_to_no_question_is_refused_and_changes_nothing() {
    let mut s: Scheduler<()> = Scheduler::new(two_numbers(), cfg(1, None, 2)).unwrap();
    let allow = |phone: &str| SchedulerEvent::Decided {
        account: 0,
        phone: phone.into(),
        verdict: Verdict::Allow(()),
    };
    assert_eq!(
        s.handle(t0(), allow("+1111")),
        Err(SchedulerError::NotAsked { account: 0 }),
        "nothing was asked yet"
    );
    assert!(matches!(s.poll(t0()), SchedulerAction::Decide { .. }));
    assert_eq!(
        s.handle(t0(), allow("+2222")),
        Err(SchedulerError::NotAsked { account: 0 }),
        "the question was about +1111"
    );
    assert_eq!(s.summary().in_flight, 0);
    assert!(matches!(
        s.handle(t0(), SchedulerEvent::CallStarted { account: 0 }),
        Err(SchedulerError::NotInFlight { .. })
    ));
}

#[test]
fn a_denied_number_leads_to_a_question_about_the_next_then_the_earliest_time() {
    let mut s: Scheduler<()> = Scheduler::new(two_numbers(), cfg(1, None, 12)).unwrap();
    let deny = |phone: &str, at: DateTime<Utc>| SchedulerEvent::Decided {
        account: 0,
        phone: phone.into(),
        verdict: Verdict::deny(Some(at)),
    };
    assert_eq!(
        s.poll(t0()),
        SchedulerAction::Decide {
            account_idx: 0,
            phone: "+1111".into()
        }
    );
    s.handle(t0(), deny("+1111", t0() + Duration::hours(3)))
        .unwrap();
    assert_eq!(
        s.poll(t0()),
        SchedulerAction::Decide {
            account_idx: 0,
            phone: "+2222".into()
        }
    );
    s.handle(t0(), deny("+2222", t0() + Duration::hours(2)))
        .unwrap();
    assert_eq!(
        s.poll(t0()),
        SchedulerAction::WaitUntil(t0() + Duration::hours(2)),
        "the earliest moment either number may be dialled"
    );
}

#[test]
fn stop_between_the_allow_and_the_dial_drops_the_permit() {
    let mut s: Scheduler<()> = Scheduler::new(accounts(1), cfg(1, None, 2)).unwrap();
    let SchedulerAction::Decide { account_idx, phone } = s.poll(t0()) else {
        panic!("a question first");
    };
    s.handle(
        t0(),
        SchedulerEvent::Decided {
            account: account_idx,
            phone,
            verdict: Verdict::Allow(()),
        },
    )
    .unwrap();
    s.stop();
    match s.poll(t0()) {
        SchedulerAction::Finished(sum) => {
            assert_eq!(sum.dials, 0, "never dialled");
            assert_eq!(sum.in_flight, 0);
            assert_eq!(sum.remaining, 1, "left for a later run");
        }
        other => panic!("expected Finished, got {other:?}"),
    }
}

#[test]
fn a_dial_that_could_not_be_placed_is_taken_back_and_asked_again_later() {
    let mut s = Driven::new(accounts(1), cfg(1, None, 2), always).unwrap();
    let SchedulerAction::Dial { account_idx, .. } = s.poll(t0()) else {
        panic!("dial");
    };
    s.handle(
        t0(),
        SchedulerEvent::NotPlaced {
            account: account_idx,
            retry_at: t0() + Duration::minutes(5),
        },
    )
    .unwrap();
    let sum = s.summary();
    assert_eq!(
        (sum.dials, sum.in_flight, sum.remaining),
        (0, 0, 1),
        "no dial counted, nothing in flight"
    );
    assert_eq!(
        s.poll(t0()),
        SchedulerAction::WaitUntil(t0() + Duration::minutes(5))
    );
    assert!(matches!(
        s.poll(t0() + Duration::minutes(5)),
        SchedulerAction::Dial { .. }
    ));
    assert!(
        matches!(
            s.handle(
                t0() + Duration::minutes(5),
                SchedulerEvent::NotPlaced {
                    account: 0,
                    retry_at: t0()
                }
            ),
            Ok(())
        ),
        "a time already past waits the recheck interval"
    );
    assert_eq!(
        s.poll(t0() + Duration::minutes(5)),
        SchedulerAction::WaitUntil(t0() + Duration::minutes(6))
    );
}

// The wait a claim keeps after any node's call: the same delays the
// scheduler keeps after its own.
#[test]
fn not_before_another_nodes_call_is_the_wait_this_scheduler_keeps_after_its_own() {
    let r = RetryDelays::default();
    let ended = t0();
    let at = |d: Duration| Some(ended + d);
    assert_eq!(
        r.not_before(ended, Disposition::Busy, Some("busy"), None),
        at(r.busy)
    );
    assert_eq!(
        r.not_before(ended, Disposition::NoAnswer, None, None),
        at(r.no_answer)
    );
    // An answered call that routed nowhere asks for nothing more.
    assert_eq!(r.not_before(ended, Disposition::Answered, None, None), None);
    // A callback at the time asked; a retry without a time after the
    // answered delay.
    let callback = (ended + Duration::hours(5)).fixed_offset();
    assert_eq!(
        r.not_before(
            ended,
            Disposition::Answered,
            None,
            Some(&Route::retry("callback_later", callback))
        ),
        Some(callback.with_timezone(&Utc))
    );
    let untimed = Route {
        until: None,
        ..Route::retry("not_available", callback)
    };
    assert_eq!(
        r.not_before(ended, Disposition::Answered, None, Some(&untimed)),
        at(r.answered)
    );
}

#[test]
fn not_before_leaves_terminal_routes_dropped_numbers_and_our_own_cuts_to_the_gate() {
    let r = RetryDelays::default();
    let ended = t0();
    for route in [
        Route::agent("dispute"),
        Route::suppress("stop_calling", SuppressScope::Account),
        Route::suppress("wrong_number", SuppressScope::Number),
        Route::done("paid"),
    ] {
        assert_eq!(
            r.not_before(ended, Disposition::Answered, None, Some(&route)),
            None,
            "{route:?}"
        );
    }
    assert_eq!(
        r.not_before(ended, Disposition::NotFound, Some("dead-number"), None),
        None
    );
    // A call our side cut (a node killed, a run stopped) holds nobody back.
    assert_eq!(
        r.not_before(ended, Disposition::Failed, Some("crash"), None),
        None
    );
    assert_eq!(
        r.not_before(ended, Disposition::Cancelled, Some("shutdown"), None),
        None
    );
}

fn congested_load(ms: u64) -> Load {
    Load::sphinx(crate::asr::sphinx::Backlog {
        waiting: 3,
        oldest_wait: std::time::Duration::from_millis(ms),
        recent_wait: std::time::Duration::ZERO,
    })
}

/// Polls at `now` until the scheduler stops handing out dials; the
/// accounts dialled.
fn dials_now<G: Fn(usize, &str, DateTime<Utc>) -> Answer>(
    s: &mut Driven<G>,
    now: DateTime<Utc>,
) -> Vec<usize> {
    let mut out = Vec::new();
    while let SchedulerAction::Dial { account_idx, .. } = s.poll(now) {
        out.push(account_idx);
    }
    out
}

#[test]
fn admission_holds_dials_to_its_limit_and_the_gate_is_not_asked_beyond_it() {
    let asked = std::cell::Cell::new(0usize);
    let gate = |_: usize, _: &str, _: DateTime<Utc>| {
        asked.set(asked.get() + 1);
        Verdict::Allow(())
    };
    let config = SchedulerConfig {
        admission: Some(AdmissionRule::default()),
        ..cfg(50, None, 24)
    };
    let mut s = Driven::new(accounts(40), config, gate).unwrap();
    // Slow start: 8 of the 50 allowed by max_concurrent.
    let first = dials_now(&mut s, t0());
    assert_eq!(first.len(), 8);
    assert_eq!(s.poll(t0()), SchedulerAction::WaitForCalls);
    assert_eq!(
        asked.get(),
        8,
        "no gate question (no attempt) beyond the limit"
    );
    let sum = s.summary();
    assert_eq!(sum.admission.map(|a| a.limit), Some(8));
    assert_eq!(sum.remaining, 32);

    // The recognisers fall behind: cut to 85 % of the 8 in flight.
    let t1 = t0() + Duration::seconds(1);
    s.handle(t1, SchedulerEvent::Load(congested_load(900)))
        .unwrap();
    assert_eq!(s.s.limit(), 6);
    for &a in &first[..3] {
        s.handle(
            t1,
            SchedulerEvent::CallEnded {
                account: a,
                disposition: Disposition::Answered,
                route: done_route(),
            },
        )
        .unwrap();
    }
    // 5 in flight under a limit of 6: one more, then none.
    assert_eq!(dials_now(&mut s, t1).len(), 1);
    assert_eq!(s.summary().in_flight, 6);
    assert_eq!(s.poll(t1), SchedulerAction::WaitForCalls);
    // Still congested within the cooldown: no new cut, no new dial.
    let t2 = t1 + Duration::seconds(5);
    s.handle(t2, SchedulerEvent::Load(congested_load(3000)))
        .unwrap();
    assert_eq!(s.s.limit(), 6);
    assert!(dials_now(&mut s, t2).is_empty());
    assert_eq!(asked.get(), 9);
    let a = s.summary().admission.unwrap();
    assert_eq!((a.cuts, a.slow_start), (1, false));
}

#[test]
fn admission_grows_the_limit_while_the_recognisers_keep_up_and_is_off_when_not_configured() {
    let config = SchedulerConfig {
        admission: Some(AdmissionRule::default()),
        ..cfg(20, None, 24)
    };
    let mut s = Driven::new(accounts(40), config, always).unwrap();
    assert_eq!(dials_now(&mut s, t0()).len(), 8);
    s.handle(t0(), SchedulerEvent::Load(Load::default()))
        .unwrap();
    let t1 = t0() + Duration::seconds(10);
    s.handle(t1, SchedulerEvent::Load(Load::default())).unwrap();
    assert_eq!(dials_now(&mut s, t1).len(), 4, "8 -> 12");
    let t2 = t1 + Duration::seconds(10);
    s.handle(t2, SchedulerEvent::Load(Load::default())).unwrap();
    assert_eq!(dials_now(&mut s, t2).len(), 6, "12 -> 18");
    let t3 = t2 + Duration::seconds(10);
    s.handle(t3, SchedulerEvent::Load(Load::default())).unwrap();
    assert_eq!(
        dials_now(&mut s, t3).len(),
        2,
        "capped at max_concurrent 20"
    );

    // Without admission, congestion changes nothing.
    let mut off = Driven::new(accounts(40), cfg(20, None, 24), always).unwrap();
    off.handle(t0(), SchedulerEvent::Load(congested_load(5000)))
        .unwrap();
    assert_eq!(dials_now(&mut off, t0()).len(), 20);
    assert_eq!(off.summary().admission, None);
}
