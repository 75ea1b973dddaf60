//! The wasm-bindgen glue, in WebAssembly: the client and server roles talking in memory,
//! options from JS objects, and errors carrying their kind. Run with
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner cargo test -p popwire-wasm --target wasm32-unknown-unknown`.
#![cfg(all(target_arch = "wasm32", feature = "client", feature = "server"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use js_sys::{Array, Object, Reflect, Uint8Array};
use popwire_wasm::{Engine, Maildrop, Server};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

fn options(pairs: &[(&str, JsValue)]) -> JsValue {
    let o: JsValue = Object::new().into();
    for (k, v) in pairs {
        Reflect::set(&o, &JsValue::from_str(k), v).unwrap();
    }
    o
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap()
}

/// Moves bytes both ways until both sides are quiet; returns the client's events (5-slot arrays).
fn converse(client: &mut Engine, server: &mut Server) -> Vec<Array> {
    let mut events = Vec::new();
    loop {
        let mut moved = false;
        while let Some(bytes) = server.poll_transmit() {
            client.handle_input(&bytes.to_vec()).unwrap();
            moved = true;
        }
        events.extend(
            client
                .poll_events()
                .unwrap()
                .iter()
                .map(|v| Array::from(&v)),
        );
        while let Some(bytes) = client.poll_transmit() {
            server.handle_input(&bytes.to_vec());
            moved = true;
        }
        if !moved {
            return events;
        }
    }
}

fn tag(ev: &Array) -> f64 {
    ev.get(0).as_f64().unwrap()
}

#[wasm_bindgen_test]
fn client_and_server_talk_in_memory() {
    let maildrop = Maildrop::new();
    maildrop.add_user("alice".into(), "wonderland".into());
    let uid = maildrop.add_message(b"Subject: hi\n\n.dot\nhello\n".to_vec());
    let mut server = Server::new(&maildrop, JsValue::UNDEFINED).unwrap();
    let mut client = Engine::new(options(&[("security", "none".into())])).unwrap();

    let events = converse(&mut client, &mut server);
    assert_eq!(
        events.iter().map(tag).collect::<Vec<_>>(),
        [0.0, 1.0],
        "greeting, ready"
    );
    assert_eq!(
        client.greeting().as_deref(),
        Some("popwire POP3 server ready")
    );

    client
        .authenticate(
            "alice".into(),
            "wonderland".into(),
            false,
            "auto",
            "0123456789abcdefghij".into(),
            None,
            None,
            None,
        )
        .unwrap();
    let uidl = client.uidl(None).unwrap();
    let retr = client.retr(1.0).unwrap();
    client.quit().unwrap();
    let events = converse(&mut client, &mut server);

    let uidl_event = events
        .iter()
        .find(|e| e.get(1).as_f64() == Some(uidl))
        .unwrap();
    assert_eq!(uidl_event.get(4).as_string().unwrap(), uid);
    let body = events
        .iter()
        .find(|e| tag(e) == 3.0 && e.get(1).as_f64() == Some(retr))
        .unwrap();
    let bytes = Uint8Array::from(body.get(2)).to_vec();
    assert_eq!(bytes, b"Subject: hi\r\n\r\n.dot\r\nhello\r\n");
    assert_eq!(client.phase(), "closed");
    assert!(server.is_closed());
    assert_eq!(maildrop.length(), 1);
}

#[wasm_bindgen_test]
fn errors_carry_their_kind() {
    let mut client = Engine::new(options(&[("negotiate", false.into())])).unwrap();
    let refused = client.stat().unwrap_err();
    assert_eq!(
        get(&refused, "kind").as_string().unwrap(),
        "usage:wrong-state"
    );
    assert!(refused.is_instance_of::<js_sys::Error>());

    client.handle_input(b"+OK hi\r\n").unwrap();
    client.poll_events().unwrap();
    let id = client.capa().unwrap();
    client.poll_transmit().unwrap();
    client.handle_input(b"-ERR [SYS/TEMP] busy\r\n").unwrap();
    let events = client.poll_events().unwrap();
    let failed = events
        .iter()
        .map(|v| Array::from(&v))
        .find(|e| e.get(1).as_f64() == Some(id))
        .unwrap();
    let error = failed.get(2);
    assert_eq!(get(&error, "kind").as_string().unwrap(), "server:refused");
    assert_eq!(get(&error, "code").as_string().unwrap(), "SYS/TEMP");
    assert_eq!(get(&error, "text").as_string().unwrap(), "busy");
    assert_eq!(get(&error, "temporary").as_bool(), Some(true));

    client.handle_input(b"garbage\r\n").unwrap();
    let fatal = client.poll_events().unwrap_err();
    assert_eq!(
        get(&fatal, "kind").as_string().unwrap(),
        "protocol:bad-status-line"
    );
}

#[wasm_bindgen_test]
fn options_are_checked() {
    let bad = Engine::new(options(&[("security", "ssl".into())]))
        .err()
        .unwrap();
    assert_eq!(
        get(&bad, "kind").as_string().unwrap(),
        "usage:invalid-argument"
    );
    assert!(Engine::new(options(&[("maxInFlight", 1.5.into())])).is_err());
    assert!(Engine::new(JsValue::from(3)).is_err());
    let ok = Engine::new(options(&[
        ("negotiate", false.into()),
        ("statusLine", 1000.into()),
    ]));
    assert!(ok.is_ok());
    let maildrop = Maildrop::new();
    assert!(
        Server::new(
            &maildrop,
            options(&[("expire", "never".into()), ("loginDelay", 60.into())])
        )
        .is_ok()
    );
    assert!(Server::new(&maildrop, options(&[("expire", "soon".into())])).is_err());
}
