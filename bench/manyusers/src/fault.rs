//! The soak's faults: which sessions fail, where, and how, from a seeded RNG so a run can be
//! repeated (the sessions' order still depends on the client's timing).

use std::sync::atomic::{AtomicU64, Ordering};

/// What a faulty session does at its point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Closes the connection (after half of what it was about to send, where it sends).
    Drop,
    /// Stops answering but keeps the connection open until the client closes it.
    Stall,
}

/// Where in the session the fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// Instead of (drop: after half of) the greeting.
    Greeting,
    /// On PASS (or AUTH/APOP): the login is never answered.
    Login,
    /// On RETR: half of the reply's first chunk is sent.
    Retr,
    /// On QUIT, before the deletions are committed: nothing is deleted.
    Quit,
    /// On QUIT, after the deletions are committed: the `+OK` is never sent.
    QuitCommitted,
}

pub const POINTS: [Point; 5] = [
    Point::Greeting,
    Point::Login,
    Point::Retr,
    Point::Quit,
    Point::QuitCommitted,
];

impl Point {
    pub fn name(self) -> &'static str {
        match self {
            Self::Greeting => "greeting",
            Self::Login => "login",
            Self::Retr => "retr",
            Self::Quit => "quit",
            Self::QuitCommitted => "quit_committed",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Greeting => 0,
            Self::Login => 1,
            Self::Retr => 2,
            Self::Quit => 3,
            Self::QuitCommitted => 4,
        }
    }

    /// Whether this client line is where the fault fires (never for the greeting).
    pub fn fires_on(self, line: &[u8]) -> bool {
        let verb = line.get(..4).unwrap_or_default().to_ascii_uppercase();
        match self {
            Self::Greeting => false,
            Self::Login => matches!(verb.as_slice(), b"PASS" | b"AUTH" | b"APOP"),
            Self::Retr => verb == b"RETR",
            Self::Quit | Self::QuitCommitted => verb == b"QUIT",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub mode: Mode,
    pub point: Point,
}

/// The fault options and the counts of faults that fired (a planned fault whose point the
/// session never reached, e.g. RETR of a message the client already has, does not count).
#[derive(Default)]
pub struct Faults {
    pub drop_percent: f64,
    pub stall_percent: f64,
    pub seed: u64,
    fired: [[AtomicU64; 5]; 2],
}

/// splitmix64: small, good enough for picking faults, and the same on every machine.
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Faults {
    /// The plan for the `session`-th accepted connection.
    pub fn plan(&self, session: u64) -> Option<Fault> {
        let r = splitmix64(self.seed ^ splitmix64(session));
        // Millionths, so fractional percentages work.
        let roll = (r % 1_000_000) as f64 / 10_000.0;
        let mode = if roll < self.drop_percent {
            Mode::Drop
        } else if roll < self.drop_percent + self.stall_percent {
            Mode::Stall
        } else {
            return None;
        };
        let which = usize::try_from((r >> 32) % 5).unwrap_or(0);
        let point = POINTS.get(which).copied().unwrap_or(Point::Greeting);
        Some(Fault { mode, point })
    }

    pub fn fired(&self, fault: Fault) {
        let mode = usize::from(fault.mode == Mode::Stall);
        if let Some(counter) = self
            .fired
            .get(mode)
            .and_then(|row| row.get(fault.point.index()))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `drop greeting 12` lines for the control dump.
    pub fn report(&self, out: &mut String) {
        for (mode, row) in ["drop", "stall"].iter().zip(&self.fired) {
            for (point, counter) in POINTS.iter().zip(row) {
                out.push_str(&format!(
                    "fault {mode} {} {}\n",
                    point.name(),
                    counter.load(Ordering::Relaxed)
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_is_deterministic_and_near_the_percentages() {
        let faults = Faults {
            drop_percent: 5.0,
            stall_percent: 5.0,
            seed: 7,
            ..Faults::default()
        };
        let plans: Vec<_> = (0..100_000).map(|s| faults.plan(s)).collect();
        let again: Vec<_> = (0..100_000).map(|s| faults.plan(s)).collect();
        assert_eq!(plans, again);
        let drops = plans
            .iter()
            .filter(|p| p.is_some_and(|f| f.mode == Mode::Drop))
            .count();
        let stalls = plans
            .iter()
            .filter(|p| p.is_some_and(|f| f.mode == Mode::Stall))
            .count();
        assert!((4_500..5_500).contains(&drops), "{drops}");
        assert!((4_500..5_500).contains(&stalls), "{stalls}");
        for point in POINTS {
            assert!(plans.iter().any(|p| p.is_some_and(|f| f.point == point)));
        }
    }

    #[test]
    fn fires_on_the_right_lines() {
        assert!(Point::Login.fires_on(b"PASS pw\r\n"));
        assert!(Point::Login.fires_on(b"auth PLAIN\r\n"));
        assert!(Point::Retr.fires_on(b"RETR 1\r\n"));
        assert!(Point::Quit.fires_on(b"QUIT\r\n"));
        assert!(!Point::Quit.fires_on(b"QU"));
        assert!(!Point::Greeting.fires_on(b"USER u1\r\n"));
    }
}
