//! The poll scheduler at scale, in compressed time: many accounts, sessions that take time and
//! sometimes fail, hosts that announce LOGIN-DELAY or answer `[IN-USE]`, and the session
//! limits of one process. It runs `fetch::schedule::Schedule` unchanged against a simulated
//! clock and checks the rules on every start:
//!
//! - never two sessions of one account at once;
//! - never a login sooner than the host's LOGIN-DELAY after the last one, once a session has
//!   told the scheduler (the simulated servers announce it when a session succeeds);
//! - never more than `per_host` sessions to one host, nor `total` in all;
//! - a successful account is not polled again before its interval;
//!
//! and reports how late polls start against their due time (the cost of the limits).
//!
//! ```text
//! cargo run --release -p popwire --example schedule_sim -- \
//!     --accounts 1000000 --hosts 2000 --hours 3 --total 4096 --per-host 64
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use popwire::fetch::schedule::{Limits, Millis, Outcome, Schedule};

const MINUTE: Millis = 60_000;

struct Args {
    accounts: u64,
    hosts: u64,
    hours: u64,
    total: usize,
    per_host: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        accounts: 100_000,
        hosts: 500,
        hours: 3,
        total: 4096,
        per_host: 64,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let number: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        let size = usize::try_from(number).map_err(|_| format!("{flag}: too large"))?;
        match flag.as_str() {
            "--accounts" => args.accounts = number,
            "--hosts" => args.hosts = number.max(1),
            "--hours" => args.hours = number,
            "--total" => args.total = size.max(1),
            "--per-host" => args.per_host = size.max(1),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    Ok(args)
}

/// splitmix64: a deterministic stream, so every run of the same flags is the same run.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// What the simulation knows of an account (the scheduler keeps its own state).
struct Sim {
    poll: Millis,
    /// The host's LOGIN-DELAY, announced on success (10 % of hosts).
    login_delay: Millis,
    due: Millis,
    last_start: Option<Millis>,
    last_succeeded: bool,
    /// Whether the scheduler has been told the LOGIN-DELAY (a session succeeded once).
    delay_known: bool,
    running: bool,
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("schedule_sim: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let limits = Limits {
        per_host: args.per_host,
        total: args.total,
    };
    let mut schedule = Schedule::new(limits);
    let host_of = |i: u64| i % args.hosts;
    let name_of = |i: u64| format!("u{i}");
    let mut sims: Vec<Sim> = Vec::new();
    for i in 0..args.accounts {
        // Intervals of 5, 10 or 15 minutes; first polls spread over the first interval.
        let poll = (5 + 5 * (mix(i) % 3)) * MINUTE;
        let login_delay = if host_of(i) % 10 == 0 { 10 * MINUTE } else { 0 };
        let first = mix(i ^ 0xabc) % poll;
        schedule.upsert(
            &name_of(i),
            &format!("h{}", host_of(i)),
            Duration::from_millis(poll),
            first,
        );
        sims.push(Sim {
            poll,
            login_delay,
            due: first,
            last_start: None,
            last_succeeded: false,
            delay_known: false,
            running: false,
        });
    }
    let index = |name: &str| -> Option<u64> { name.get(1..)?.parse().ok() };

    let end = args.hours * 60 * MINUTE;
    let mut now: Millis = 0;
    // Sessions in flight: (ends at, account).
    let mut in_flight: BinaryHeap<Reverse<(Millis, u64)>> = BinaryHeap::new();
    let mut per_host: HashMap<u64, usize> = HashMap::new();
    let (mut sessions, mut broken_rules) = (0u64, 0u64);
    let mut lateness: Vec<Millis> = Vec::new();
    let mut peak_running = 0usize;
    let mut outcomes = [0u64; 4];

    while now < end {
        // Sessions that end now report back.
        while let Some(Reverse((at, i))) = in_flight.peek().copied() {
            if at > now {
                break;
            }
            in_flight.pop();
            let Some(sim) = usize::try_from(i).ok().and_then(|k| sims.get_mut(k)) else {
                continue;
            };
            sim.running = false;
            if let Some(n) = per_host.get_mut(&host_of(i)) {
                *n -= 1;
            }
            let roll = mix(i ^ at) % 100;
            let (outcome, kind) = match roll {
                0..=4 => (Outcome::Temporary, 1),
                5 => (Outcome::InUse, 2),
                6 => (Outcome::NeedsAttention, 3),
                _ => (
                    Outcome::Success {
                        login_delay: (sim.login_delay > 0)
                            .then(|| Duration::from_millis(sim.login_delay)),
                    },
                    0,
                ),
            };
            if let Some(count) = outcomes.get_mut(kind) {
                *count += 1;
            }
            sim.last_succeeded = kind == 0;
            sim.delay_known |= kind == 0;
            let name = name_of(i);
            schedule.finished(&name, outcome, now, mix(i ^ now));
            sim.due = schedule.due(&name).unwrap_or(now);
        }
        // Everything that may start now starts.
        while let Some(name) = schedule.next_ready(now) {
            let Some(i) = index(&name) else { break };
            let Some(sim) = usize::try_from(i).ok().and_then(|k| sims.get_mut(k)) else {
                break;
            };
            let host = per_host.entry(host_of(i)).or_insert(0);
            *host += 1;
            let mut broken = Vec::new();
            if sim.running {
                broken.push("two sessions at once".to_owned());
            }
            if *host > args.per_host {
                broken.push(format!("{host} sessions to its host"));
            }
            if let Some(last) = sim.last_start {
                let gap = now - last;
                if sim.delay_known && gap < sim.login_delay {
                    broken.push(format!("{gap} ms after the last login, LOGIN-DELAY"));
                }
                if sim.last_succeeded && gap < sim.poll {
                    broken.push(format!(
                        "{gap} ms after the last poll, interval {}",
                        sim.poll
                    ));
                }
            }
            if !broken.is_empty() && broken_rules < 10 {
                eprintln!("{name} at {now}: {}", broken.join(", "));
            }
            broken_rules += u64::from(!broken.is_empty());
            lateness.push(now.saturating_sub(sim.due));
            sim.running = true;
            sim.last_start = Some(now);
            sessions += 1;
            // Sessions take 0.2 to 3 s; one in a hundred stalls until a 30 s timeout.
            let length = if mix(i ^ now ^ 7).is_multiple_of(100) {
                30_000
            } else {
                200 + mix(i ^ now ^ 11) % 2_800
            };
            in_flight.push(Reverse((now + length, i)));
        }
        peak_running = peak_running.max(in_flight.len());
        broken_rules += u64::from(in_flight.len() > args.total);
        let next_end = in_flight.peek().map(|Reverse((at, _))| *at);
        let next = match (schedule.next_due(), next_end) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => end,
        };
        now = next.max(now + 1);
    }

    lateness.sort_unstable();
    let pct = |p: usize| {
        lateness
            .get(lateness.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or(0)
    };
    println!(
        "accounts {} hosts {} simulated {} h limits total {} per host {}",
        args.accounts, args.hosts, args.hours, args.total, args.per_host
    );
    println!(
        "sessions {sessions} (ok {}, temporary {}, in-use {}, needs attention {}), peak at once {peak_running}",
        outcomes[0], outcomes[1], outcomes[2], outcomes[3]
    );
    println!(
        "start lateness ms: p50 {} p99 {} max {}",
        pct(50),
        pct(99),
        pct(100)
    );
    println!("rule breaks {broken_rules}");
    println!(
        "wall {:.1} s, peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        peak_rss_kib().map_or(0, |k| k / 1024)
    );
    if broken_rules > 0 {
        std::process::exit(1);
    }
}
