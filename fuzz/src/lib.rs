//! What the fuzz targets share: reading choices off the front of the input, cutting a byte
//! stream into reads, and a client driver that plays a fetch session and logs what it saw.
//!
//! The log is what makes the client targets more than crash detectors: the engine is sans-IO,
//! so the same server bytes cut into different reads must give the same log.

use std::collections::BTreeMap;

use popwire::proto::{
    AuthMethod, AuthRequest, Client, ClientOptions, Credential, Error, Event, Limits, Mechanism,
    Reply, Secret, Security,
};

/// Reads choices off the front of the fuzz input; past the end every read is 0.
pub struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    /// Choices from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// One byte.
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A flag.
    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// A value in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + usize::from(self.u16()) % (hi - lo + 1)
    }

    /// The next `n` bytes (fewer at the end of the input).
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.data.split_at(n.min(self.data.len()));
        self.data = tail;
        head
    }

    /// Everything not read yet.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}

/// Cuts `data` into reads whose sizes cycle through `sizes` (a size of 0 counts as 1).
pub fn reads<'a>(data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = data;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes
            .get(i % sizes.len().max(1))
            .copied()
            .unwrap_or(1)
            .clamp(1, rest.len());
        i += 1;
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

/// What the driver does once logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `UIDL`, then work on the entries (the fetch job's way).
    Uidl,
    /// `LIST`, then work on the entries.
    List,
    /// `STAT`, then work on messages 1..=count.
    Stat,
}

/// How the driver plays the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Client options.
    pub options: ClientOptions,
    /// The login method.
    pub method: AuthMethod,
    /// Log in with an OAuth token rather than a password.
    pub token: bool,
    /// Send CAPA by hand after the greeting (or negotiation).
    pub capa: bool,
    /// What to list once logged in.
    pub listing: Listing,
    /// Messages to fetch from the listing.
    pub fetch: usize,
    /// TOP with this many lines instead of RETR.
    pub top: Option<u32>,
    /// DELE each fetched message.
    pub dele: bool,
    /// QUIT at the end.
    pub quit: bool,
}

impl Plan {
    /// The fetch job's plan: implicit TLS, negotiation, UIDL, RETR, DELE, QUIT.
    pub fn fetch_job(limits: Limits) -> Self {
        Self {
            options: ClientOptions {
                security: Security::Tls,
                negotiate: true,
                limits,
                ..Default::default()
            },
            method: AuthMethod::Auto,
            token: false,
            capa: false,
            listing: Listing::Uidl,
            fetch: 3,
            top: None,
            dele: true,
            quit: true,
        }
    }

    /// A plan read off the front of the fuzz input.
    pub fn choose(c: &mut Choices<'_>) -> Self {
        let security = match c.byte() % 3 {
            0 => Security::Tls,
            1 => Security::StartTls,
            _ => Security::None,
        };
        let mut limits = Limits::default();
        if c.flag() {
            limits = Limits {
                status_line: c.range(8, 600),
                data_line: c.range(8, 5000),
                listing: c.range(8, 20_000),
                input_buffer: 0,
            };
        }
        // Room for one partial line plus the largest read, so a read is never refused for size.
        limits.input_buffer = limits.status_line + MAX_READ + c.range(0, 4096);
        let options = ClientOptions {
            security,
            allow_cleartext_password: c.flag(),
            negotiate: c.flag(),
            pipelining: c.flag(),
            max_in_flight: c.range(1, 8),
            lenient_uids: c.flag(),
            limits,
            sasl_initial_response: c.flag(),
        };
        let method = match c.byte() % 10 {
            0..=2 => AuthMethod::Auto,
            3 => AuthMethod::UserPass,
            4 => AuthMethod::Apop,
            n => AuthMethod::Sasl(
                Mechanism::ALL
                    .get(usize::from(n) % Mechanism::ALL.len())
                    .copied()
                    .unwrap_or(Mechanism::Plain),
            ),
        };
        let listing = match c.byte() % 3 {
            0 => Listing::Uidl,
            1 => Listing::List,
            _ => Listing::Stat,
        };
        Self {
            options,
            method,
            token: c.flag(),
            capa: c.flag(),
            listing,
            fetch: c.range(0, 4),
            top: if c.flag() {
                Some(u32::from(c.byte() % 4))
            } else {
                None
            },
            dele: c.flag(),
            quit: c.flag(),
        }
    }

    /// Whether the outcome may depend on how the server's bytes are cut into reads. Only STLS:
    /// bytes arriving in the same read as its `+OK` are an injection attack and fail the session.
    pub fn split_sensitive(&self) -> bool {
        self.options.security == Security::StartTls
    }
}

/// The largest read the client targets hand to `handle_input`.
pub const MAX_READ: usize = 4096;

/// Plays a [`Plan`] against whatever the server sends, logging every event.
pub struct Driver {
    /// The engine.
    pub client: Client,
    plan: Plan,
    /// One line per event, bodies joined and logged with their completion.
    pub log: Vec<String>,
    bodies: BTreeMap<u64, Vec<u8>>,
    /// What the client wrote.
    pub written: Vec<u8>,
    /// The fatal error, once the session failed.
    pub fatal: Option<Error>,
    started: bool,
}

impl Driver {
    /// A driver that has issued what it can before the greeting.
    pub fn new(plan: Plan) -> Self {
        let client = Client::new(plan.options.clone());
        let mut driver = Self {
            client,
            plan,
            log: Vec::new(),
            bodies: BTreeMap::new(),
            written: Vec::new(),
            fatal: None,
            started: false,
        };
        if driver.plan.options.negotiate {
            driver.start();
        }
        driver.pump();
        driver
    }

    fn request(&self) -> AuthRequest {
        let secret = Secret::new("pass word");
        AuthRequest {
            username: "user".into(),
            credential: if self.plan.token {
                Credential::Token(secret)
            } else {
                Credential::Password(secret)
            },
            method: self.plan.method,
            authzid: None,
            nonce: "fyko+d2lbbFgONRv9qkxdawL".into(),
            host: Some("pop.example.com".into()),
            port: Some(995),
        }
    }

    /// Issues the login (and CAPA, STLS by hand when not negotiating).
    fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        if self.plan.capa {
            let r = self.client.capa().map(|_| ());
            self.note("capa", r);
        }
        let manual_stls = !self.plan.options.negotiate
            && self.plan.options.security == Security::StartTls
            && !self.client.is_tls();
        if manual_stls {
            let r = self.client.stls().map(|_| ());
            self.note("stls", r);
            return;
        }
        let request = self.request();
        let r = self.client.authenticate(request).map(|_| ());
        self.note("authenticate", r);
    }

    fn note(&mut self, what: &str, result: Result<(), Error>) {
        if let Err(e) = result {
            self.log.push(format!("refused {what} {}", e.kind()));
        }
    }

    /// Feeds one read. Never refused for size: see [`Plan::choose`].
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.fatal.is_some() {
            return;
        }
        if let Err(e) = self.client.handle_input(bytes) {
            assert!(
                !matches!(
                    e,
                    Error::Protocol(popwire::proto::ProtocolError::ReplyTooLarge { .. })
                ),
                "a {}-octet read overflowed a {}-octet input buffer: the engine kept input it \
                 had no use for",
                bytes.len(),
                self.plan.options.limits.input_buffer
            );
            self.die(e);
            return;
        }
        self.pump();
    }

    /// The server closed the connection.
    pub fn eof(&mut self) {
        if self.fatal.is_none()
            && let Err(e) = self.client.handle_eof()
        {
            self.die(e);
        }
    }

    fn die(&mut self, e: Error) {
        self.log.push(format!("fatal {e:?}"));
        self.fatal = Some(e);
    }

    /// Handles every event, writing what the engine wants sent after each one, as a transport
    /// does (a reply buffered before its command was written would otherwise be unsolicited).
    pub fn pump(&mut self) {
        while self.fatal.is_none() {
            while let Some(bytes) = self.client.poll_transmit() {
                assert!(!bytes.is_empty(), "poll_transmit returned an empty buffer");
                self.written.extend_from_slice(&bytes);
            }
            let event = match self.client.poll_event() {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(e) => return self.die(e),
            };
            let line = match event {
                Event::Body { id, data } => {
                    assert!(!data.is_empty(), "empty body event");
                    self.bodies
                        .entry(id.get())
                        .or_default()
                        .extend_from_slice(data);
                    continue;
                }
                Event::Greeting(g) => {
                    let line = format!("greeting {g:?}");
                    if !self.plan.options.negotiate {
                        self.start();
                    }
                    line
                }
                Event::Ready(caps) => format!("ready {caps:?}"),
                Event::TlsReady => {
                    let r = self.client.tls_established();
                    self.note("tls-established", r);
                    "tls-ready".into()
                }
                Event::Completed { id, result } => {
                    let body = self.bodies.remove(&id.get());
                    let line = format!("completed {} {result:?} body {body:?}", id.get());
                    if let Ok(reply) = result {
                        self.react(reply);
                    }
                    line
                }
            };
            self.log.push(line);
        }
    }

    fn react(&mut self, reply: Reply) {
        let numbers: Vec<u32> = match reply {
            Reply::TlsReady => {
                let r = self.client.tls_established();
                self.note("tls-established", r);
                let request = self.request();
                let r = self.client.authenticate(request).map(|_| ());
                self.note("authenticate", r);
                return;
            }
            Reply::Authenticated => {
                let r = match self.plan.listing {
                    Listing::Uidl => self.client.uidl(None),
                    Listing::List => self.client.list(None),
                    Listing::Stat => self.client.stat(),
                };
                self.note("listing", r.map(|_| ()));
                return;
            }
            Reply::Uidl(entries) => entries.iter().map(|e| e.number).collect(),
            Reply::List(entries) => entries.iter().map(|e| e.number).collect(),
            Reply::Stat { count, .. } => (1..=count.min(8)).collect(),
            _ => return,
        };
        for n in numbers.into_iter().take(self.plan.fetch) {
            let r = match self.plan.top {
                Some(lines) => self.client.top(n, lines),
                None => self.client.retr(n),
            };
            self.note("fetch", r.map(|_| ()));
            if self.plan.dele {
                let r = self.client.dele(n);
                self.note("dele", r.map(|_| ()));
            }
        }
        if self.plan.quit {
            let r = self.client.quit();
            self.note("quit", r.map(|_| ()));
        }
    }
}

/// Runs a plan over `stream` cut into `sizes`, then EOF; returns the log and what was written.
pub fn run(plan: &Plan, stream: &[u8], sizes: &[usize]) -> (Vec<String>, Vec<u8>) {
    let mut driver = Driver::new(plan.clone());
    for read in reads(stream, sizes) {
        if driver.fatal.is_some() {
            break;
        }
        driver.feed(read);
    }
    driver.eof();
    (driver.log, driver.written)
}
