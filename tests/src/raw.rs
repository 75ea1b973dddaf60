//! A tiny POP3 session over a plain `TcpStream`, independent of popwire, for
//! checking server state and the test harness itself.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::util::err;

/// A plain-text POP3 connection.
#[derive(Debug)]
pub struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// The server's greeting line (without CRLF).
    pub greeting: String,
}

impl Session {
    /// Connects and reads the greeting. Reads time out after 30 seconds.
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<Session> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        let mut s = Session {
            reader: BufReader::new(stream),
            writer,
            greeting: String::new(),
        };
        s.greeting = s.status_line()?;
        Ok(s)
    }

    /// Sends `line` followed by CRLF.
    pub fn send(&mut self, line: &str) -> io::Result<()> {
        self.writer.write_all(format!("{line}\r\n").as_bytes())
    }

    /// Reads one line including its line ending; fails on end of stream.
    pub fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        if self.reader.read_until(b'\n', &mut buf)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(buf)
    }

    fn status_line(&mut self) -> io::Result<String> {
        let line = self.read_line()?;
        Ok(String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_owned())
    }

    /// Sends a command and returns the status line (`+OK ...` or `-ERR ...`).
    pub fn command(&mut self, line: &str) -> io::Result<String> {
        self.send(line)?;
        self.status_line()
    }

    /// Sends a command with a multi-line answer. Returns the status line and,
    /// after `+OK`, the body: the lines up to the terminating `.` line,
    /// dot-unstuffed, with their line endings as received.
    pub fn multiline(&mut self, line: &str) -> io::Result<(String, Vec<u8>)> {
        let status = self.command(line)?;
        let mut body = Vec::new();
        if status.starts_with("+OK") {
            loop {
                let l = self.read_line()?;
                if l == b".\r\n" || l == b".\n" {
                    break;
                }
                body.extend_from_slice(l.strip_prefix(b".").unwrap_or(&l));
            }
        }
        Ok((status, body))
    }

    /// `USER` + `PASS`; an error unless both answer `+OK`.
    pub fn login(&mut self, user: &str, password: &str) -> io::Result<()> {
        for cmd in [format!("USER {user}"), format!("PASS {password}")] {
            let r = self.command(&cmd)?;
            if !r.starts_with("+OK") {
                return Err(err(format!(
                    "{} -> {r}",
                    cmd.split(' ').next().unwrap_or("")
                )));
            }
        }
        Ok(())
    }

    /// `STAT`: (message count, total size).
    pub fn stat(&mut self) -> io::Result<(usize, u64)> {
        let r = self.command("STAT")?;
        let mut parts = r.split_whitespace().skip(1).map(str::parse::<u64>);
        match (r.starts_with("+OK"), parts.next(), parts.next()) {
            (true, Some(Ok(n)), Some(Ok(size))) => {
                Ok((usize::try_from(n).map_err(|_| err("count"))?, size))
            }
            _ => Err(err(format!("STAT -> {r}"))),
        }
    }

    /// `RETR n`: the message as received (CRLF lines, dot-unstuffed).
    pub fn retr(&mut self, n: usize) -> io::Result<Vec<u8>> {
        let (status, body) = self.multiline(&format!("RETR {n}"))?;
        if status.starts_with("+OK") {
            Ok(body)
        } else {
            Err(err(format!("RETR {n} -> {status}")))
        }
    }

    /// `UIDL`: the unique ids in message order.
    pub fn uidls(&mut self) -> io::Result<Vec<String>> {
        let (status, body) = self.multiline("UIDL")?;
        if !status.starts_with("+OK") {
            return Err(err(format!("UIDL -> {status}")));
        }
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1).map(str::to_owned))
            .collect())
    }

    /// Sends `QUIT` and returns the answer.
    pub fn quit(mut self) -> io::Result<String> {
        self.command("QUIT")
    }
}
