//! `popwire-bench-native HOST PORT CA_FILE USER PASSWORD RUNS`: fetches every message of USER
//! over implicit TLS with `BlockingClient::retr_many` (pipelined), RUNS times, and prints one
//! line of JSON per run: `{"ms": .., "messages": .., "bytes": ..}`.

use std::time::Instant;

use popwire::net::blocking::BlockingClient;
use popwire::net::{ConnectOptions, RetrPart};
use popwire::proto::Secret;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, ca, user, password, runs] = args.as_slice() else {
        return Err("usage: popwire-bench-native HOST PORT CA_FILE USER PASSWORD RUNS".into());
    };
    for _ in 0..runs.parse::<u32>()? {
        let start = Instant::now();
        let mut options = ConnectOptions::new(host.clone());
        options.port = Some(port.parse()?);
        options.ca_file = Some(ca.into());
        let mut pop = BlockingClient::connect(options)?;
        pop.login(user, Secret::new(password.as_bytes()))?;
        let numbers: Vec<u32> = pop.list()?.iter().map(|e| e.number).collect();
        let (mut bytes, mut messages) = (0u64, 0u32);
        let mut message = Vec::new();
        pop.retr_many(&numbers, &mut |part| {
            match part {
                RetrPart::Data { bytes: b, .. } => message.extend_from_slice(b),
                RetrPart::End { .. } => {
                    // Hold each whole message once, as the Node client's retr() does.
                    bytes += message.len() as u64;
                    messages += 1;
                    message = Vec::new();
                }
                RetrPart::Refused { .. } => {}
            }
            Ok(())
        })?;
        pop.quit()?;
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        println!("{{\"ms\": {ms:.1}, \"messages\": {messages}, \"bytes\": {bytes}}}");
    }
    Ok(())
}
