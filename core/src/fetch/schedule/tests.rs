use super::*;

const MIN: Millis = 60_000;

fn one(poll_minutes: u64) -> Schedule {
    let mut s = Schedule::new(Limits::default());
    s.upsert(
        "a",
        "pop.example.com",
        Duration::from_secs(poll_minutes * 60),
        0,
    );
    s
}

#[test]
fn polls_each_interval_from_the_last_start_and_never_twice_at_once() {
    let mut s = one(5);
    assert_eq!(s.next_ready(0).as_deref(), Some("a"));
    // Running: not handed out again however late it gets.
    assert_eq!(s.next_ready(100 * MIN), None);
    s.finished("a", Outcome::Success { login_delay: None }, 2 * MIN, 1);
    assert_eq!(s.next_due(), Some(5 * MIN));
    assert_eq!(s.next_ready(5 * MIN - 1), None);
    assert_eq!(s.next_ready(5 * MIN).as_deref(), Some("a"));
}

#[test]
fn login_delay_holds_the_next_login_back() {
    let mut s = one(1);
    let _ = s.next_ready(0);
    s.finished(
        "a",
        Outcome::Success {
            login_delay: Some(Duration::from_secs(300)),
        },
        10_000,
        1,
    );
    assert_eq!(s.next_due(), Some(5 * MIN));
    let _ = s.next_ready(5 * MIN);
    // Refused with [LOGIN-DELAY] and no announced delay: RFC 3206's five minutes apply.
    s.finished(
        "a",
        Outcome::LoginDelay { login_delay: None },
        5 * MIN + 10,
        1,
    );
    assert_eq!(s.next_due(), Some(10 * MIN));
}

#[test]
fn failures_back_off_exponentially_with_bounded_jitter_and_reset_on_success() {
    let mut s = one(60);
    let mut now = 0;
    let mut waits = Vec::new();
    for attempt in 0..10u64 {
        let _ = s.next_ready(now).unwrap();
        s.finished("a", Outcome::Temporary, now, attempt);
        let due = s.next_due().unwrap();
        waits.push(due - now);
        now = due;
    }
    for (i, wait) in waits.iter().enumerate() {
        let base = (30_000u64 << i.min(20)).min(60 * MIN);
        assert!(
            *wait >= base && *wait <= base + base / 4,
            "attempt {i}: {wait} vs {base}"
        );
    }
    assert_eq!(s.failures("a"), Some(10));
    let _ = s.next_ready(now).unwrap();
    s.finished("a", Outcome::Success { login_delay: None }, now, 0);
    assert_eq!(s.failures("a"), Some(0));
    assert_eq!(s.next_due(), Some(now + 60 * MIN));
}

#[test]
fn a_temporary_failure_is_retried_within_the_poll_interval() {
    let mut s = one(2);
    let mut now = 0;
    for attempt in 0..8 {
        let _ = s.next_ready(now).unwrap();
        s.finished("a", Outcome::Temporary, now, attempt);
        let due = s.next_due().unwrap();
        assert!(due - now <= 2 * MIN + 2 * MIN / 4, "{}", due - now);
        now = due;
    }
}

#[test]
fn host_and_total_limits_hold_and_the_held_back_go_first() {
    let mut s = Schedule::new(Limits {
        per_host: 2,
        total: 3,
    });
    for name in ["a1", "a2", "a3"] {
        s.upsert(name, "a.example", Duration::from_secs(60), 0);
    }
    s.upsert("b1", "b.example", Duration::from_secs(60), 0);
    s.upsert("c1", "c.example", Duration::from_secs(60), 0);
    let mut started = Vec::new();
    while let Some(name) = s.next_ready(0) {
        started.push(name);
    }
    assert_eq!(started.len(), 3);
    assert!(started.iter().filter(|n| n.starts_with('a')).count() <= 2);
    let held: Vec<&str> = ["a1", "a2", "a3", "b1", "c1"]
        .into_iter()
        .filter(|n| !started.iter().any(|s| s == n))
        .collect();
    s.finished(&started[0], Outcome::Success { login_delay: None }, 1, 0);
    let next = s.next_ready(1).unwrap();
    assert!(held.contains(&next.as_str()), "{next} not among {held:?}");
}

#[test]
fn removing_a_running_account_frees_its_slot_and_ignores_its_report() {
    let mut s = Schedule::new(Limits {
        per_host: 1,
        total: 1,
    });
    s.upsert("a", "h", Duration::from_secs(60), 0);
    s.upsert("b", "h", Duration::from_secs(60), 0);
    let first = s.next_ready(0).unwrap();
    assert_eq!(s.next_ready(0), None);
    s.remove(&first);
    s.finished(&first, Outcome::Success { login_delay: None }, 1, 0);
    assert_eq!(s.running(), 0);
    assert!(s.next_ready(1).is_some());
}

#[test]
fn a_saturated_host_does_not_hold_back_another_and_the_line_keeps_its_order() {
    let mut s = Schedule::new(Limits {
        per_host: 1,
        total: 2,
    });
    for name in ["a1", "a2", "a3"] {
        s.upsert(name, "a", Duration::from_secs(60), 0);
    }
    s.upsert("b1", "b", Duration::from_secs(60), 1);
    s.upsert("b2", "b", Duration::from_secs(60), 1);
    assert_eq!(s.next_ready(0).as_deref(), Some("a1"));
    assert_eq!(s.next_ready(0), None);
    // a2 and a3 wait for host a; b1 is not held back by them.
    assert_eq!(s.next_ready(1).as_deref(), Some("b1"));
    assert_eq!(s.next_ready(1), None);
    s.finished("b1", Outcome::Success { login_delay: None }, 2, 0);
    assert_eq!(s.next_ready(2).as_deref(), Some("b2"));
    s.finished("a1", Outcome::Success { login_delay: None }, 3, 0);
    assert_eq!(s.next_ready(3).as_deref(), Some("a2"));
    // An account that moves to another host leaves its old line.
    s.upsert("a3", "c", Duration::from_secs(60), 0);
    s.finished("b2", Outcome::Success { login_delay: None }, 4, 0);
    assert_eq!(s.next_ready(4).as_deref(), Some("a3"));
    assert_eq!(s.running(), 2);
    s.finished("a3", Outcome::Success { login_delay: None }, 5, 0);
    s.set_limits(Limits {
        per_host: 2,
        total: 4,
    });
    assert_eq!(s.running(), 1);
}

#[test]
fn a_running_account_moved_to_another_host_frees_the_old_hosts_slot() {
    let mut s = Schedule::new(Limits {
        per_host: 1,
        total: 10,
    });
    s.upsert("a", "h1", Duration::from_secs(60), 0);
    s.upsert("b", "h1", Duration::from_secs(60), 0);
    assert_eq!(s.next_ready(0).as_deref(), Some("a"));
    assert_eq!(s.next_ready(0), None);
    s.upsert("a", "h2", Duration::from_secs(60), 0);
    s.finished("a", Outcome::Success { login_delay: None }, 1, 0);
    assert_eq!(s.next_ready(1).as_deref(), Some("b"));
}

/// Six compressed hours of 2,000 accounts on 50 hosts, each polled every 5 to 15 minutes, a
/// tenth of sessions failing temporarily and some hosts announcing LOGIN-DELAY: every start
/// keeps its account's interval and login delay, and no account waits past its due time by
/// more than the limits force (sessions here take no time, so none should).
#[test]
fn hours_of_many_accounts_keep_every_interval_and_login_delay() {
    let accounts = 2_000u64;
    let mut s = Schedule::new(Limits {
        per_host: 1_000,
        total: 10_000,
    });
    let poll = |i: u64| (5 + i % 11) * MIN;
    let delay = |i: u64| if i % 50 < 5 { 10 * MIN } else { 0 };
    for i in 0..accounts {
        s.upsert(
            &format!("u{i}"),
            &format!("h{}", i % 50),
            Duration::from_millis(poll(i)),
            i % poll(i),
        );
    }
    // Per account: when it last started and whether that session succeeded.
    let mut last: HashMap<u64, (Millis, bool)> = HashMap::new();
    let mut starts = 0u64;
    let mut now = 0;
    let day = 6 * 60 * MIN;
    while now < day {
        while let Some(name) = s.next_ready(now) {
            let i: u64 = name[1..].parse().unwrap();
            if let Some((prev, succeeded)) = last.get(&i).copied() {
                let gap = now - prev;
                let least = if succeeded {
                    poll(i).max(delay(i))
                } else {
                    millis(BACKOFF_BASE).max(delay(i))
                };
                assert!(
                    gap >= least,
                    "u{i}: started {gap} ms after the last, before {least}"
                );
            }
            starts += 1;
            let fails = spread(i ^ now).is_multiple_of(10);
            let outcome = if fails {
                Outcome::Temporary
            } else {
                Outcome::Success {
                    login_delay: (delay(i) > 0).then(|| Duration::from_millis(delay(i))),
                }
            };
            last.insert(i, (now, !fails));
            s.finished(&name, outcome, now, i ^ now);
        }
        now = s.next_due().unwrap().max(now + 1);
    }
    // Every account ran about as often as its interval allows.
    assert!(starts > accounts * 6 * 60 / 15 * 8 / 10, "{starts}");
    for i in (0..accounts).step_by(997) {
        let due = s.due(&format!("u{i}")).unwrap();
        assert!(
            due >= day - poll(i).max(delay(i)) * 2,
            "u{i} fell behind: due {due}"
        );
    }
}

#[test]
fn outcomes_of_errors_follow_the_response_codes() {
    use crate::net::NetError;
    use crate::proto::{Error, ServerError};
    let server = |code: &str| {
        FetchError::Net(NetError::Pop3(Error::Server(ServerError {
            command: "PASS",
            code: Some(ResponseCode::parse(code)),
            text: "no".into(),
        })))
    };
    let delay = Some(Duration::from_secs(120));
    assert_eq!(
        Outcome::of_error(&server("LOGIN-DELAY"), delay),
        Outcome::LoginDelay { login_delay: delay }
    );
    assert_eq!(Outcome::of_error(&server("IN-USE"), None), Outcome::InUse);
    assert_eq!(
        Outcome::of_error(&server("SYS/TEMP"), None),
        Outcome::Temporary
    );
    assert_eq!(
        Outcome::of_error(&server("SYS/PERM"), None),
        Outcome::NeedsAttention
    );
    assert_eq!(
        Outcome::of_error(&server("AUTH"), None),
        Outcome::NeedsAttention
    );
    let locked = FetchError::Locked {
        account: "a".into(),
        path: "/l".into(),
    };
    assert_eq!(Outcome::of_error(&locked, None), Outcome::InUse);
    assert_eq!(
        Outcome::of_error(&FetchError::Cancelled, None),
        Outcome::Temporary
    );
    let refused = FetchError::Net(NetError::Connect {
        host: "127.0.0.1".into(),
        port: 1,
        source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
    });
    assert_eq!(Outcome::of_error(&refused, None), Outcome::Temporary);
}
