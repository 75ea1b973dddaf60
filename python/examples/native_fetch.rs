//! The native baseline for `bench/bench_fetch.py`: log in over TLS, RETR every message with
//! `BlockingClient::retr_many` (pipelined), count the octets, QUIT. Prints
//! `{"seconds": ..., "messages": ..., "octets": ...}`.
//!
//! `cargo run --release -p popwire-python --example native_fetch -- HOST PORT CA_FILE USER PASSWORD`

use std::time::Instant;

use popwire::net::blocking::BlockingClient;
use popwire::net::{ConnectOptions, RetrPart};
use popwire::proto::Secret;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, ca_file, user, password] = args.as_slice() else {
        return Err("usage: native_fetch HOST PORT CA_FILE USER PASSWORD".into());
    };
    let start = Instant::now();
    let mut options = ConnectOptions::new(host.clone());
    options.port = Some(port.parse()?);
    options.ca_file = Some(ca_file.into());
    let mut pop = BlockingClient::connect(options)?;
    pop.login(user, Secret::new(password.as_bytes()))?;
    let numbers: Vec<u32> = pop.list()?.iter().map(|e| e.number).collect();
    let mut octets = 0u64;
    let mut messages = 0u64;
    pop.retr_many(&numbers, &mut |part| {
        match part {
            RetrPart::Data { bytes, .. } => octets += bytes.len() as u64,
            RetrPart::End { .. } => messages += 1,
            RetrPart::Refused { .. } => {}
        }
        Ok(())
    })?;
    pop.quit()?;
    let seconds = start.elapsed().as_secs_f64();
    println!("{{\"seconds\": {seconds}, \"messages\": {messages}, \"octets\": {octets}}}");
    Ok(())
}
