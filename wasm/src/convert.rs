//! Values across the JS boundary: errors, option objects, capabilities.

#[cfg(feature = "client")]
use js_sys::Object;
use js_sys::{Array, Reflect};
use popwire::proto::Error;
#[cfg(feature = "client")]
use popwire::proto::{Capabilities, Capability, Expire};
use wasm_bindgen::JsValue;

/// Sets `obj[key] = value`. `Reflect.set` only fails on frozen objects, which we never make.
pub(crate) fn set(obj: &JsValue, key: &str, value: impl Into<JsValue>) {
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

/// An engine error as a JS `Error` with `kind` (`family:name`, see `Error::kind`), the core's
/// classification `errorClass` (`Error::class`, `ErrorClass::as_str`) and `temporary`
/// (`Error::is_temporary`), and for a `-ERR` also `code` (the RFC 2449 response code or
/// `null`), `text`, `command` and `authFailure`. `lib/errors.js` maps `errorClass` to the JS
/// error class.
pub(crate) fn error(e: &Error) -> JsValue {
    let js: JsValue = js_sys::Error::new(&e.to_string()).into();
    set(&js, "kind", e.kind());
    set(&js, "errorClass", e.class().as_str());
    set(&js, "temporary", e.is_temporary());
    if let Error::Server(s) = e {
        let code = s
            .code
            .as_ref()
            .map_or(JsValue::NULL, |c| JsValue::from_str(c.as_str()));
        set(&js, "code", code);
        set(&js, "text", s.text.as_str());
        set(&js, "command", s.command);
        set(&js, "authFailure", s.is_auth_failure());
    }
    js
}

/// A caller mistake the engine never sees (a bad option or argument): `usage:invalid-argument`,
/// class `config` (as the core classes `UsageError`).
pub(crate) fn usage(message: &str) -> JsValue {
    let js: JsValue = js_sys::TypeError::new(message).into();
    set(&js, "kind", "usage:invalid-argument");
    set(&js, "errorClass", "config");
    set(&js, "temporary", false);
    js
}

/// The capabilities as `[{name, args, value?}]`: `name` upper-case as the engine knows it,
/// `args` the words after it, and `value` the parsed number of `LOGIN-DELAY` or the
/// `EXPIRE` policy (`"never"` or days).
#[cfg(feature = "client")]
pub(crate) fn capabilities(caps: &Capabilities) -> Array {
    caps.list.iter().map(capability).collect()
}

#[cfg(feature = "client")]
fn capability(c: &Capability) -> JsValue {
    let words = |args: &[String]| args.iter().map(|a| JsValue::from_str(a)).collect::<Array>();
    let (name, args, value): (&str, Array, Option<JsValue>) = match c {
        Capability::Top => ("TOP", Array::new(), None),
        Capability::User => ("USER", Array::new(), None),
        Capability::Sasl(m) => ("SASL", words(m), None),
        Capability::RespCodes => ("RESP-CODES", Array::new(), None),
        Capability::LoginDelay(n) => (
            "LOGIN-DELAY",
            Array::of1(&n.to_string().into()),
            Some((*n as f64).into()),
        ),
        Capability::Pipelining => ("PIPELINING", Array::new(), None),
        Capability::Expire(Expire::Never) => {
            ("EXPIRE", Array::of1(&"NEVER".into()), Some("never".into()))
        }
        Capability::Expire(Expire::Days(d)) => (
            "EXPIRE",
            Array::of1(&d.to_string().into()),
            Some(f64::from(*d).into()),
        ),
        Capability::Uidl => ("UIDL", Array::new(), None),
        Capability::Implementation(t) => ("IMPLEMENTATION", Array::of1(&t.as_str().into()), None),
        Capability::Stls => ("STLS", Array::new(), None),
        Capability::AuthRespCode => ("AUTH-RESP-CODE", Array::new(), None),
        Capability::Utf8 => ("UTF8", Array::new(), None),
        Capability::Lang => ("LANG", Array::new(), None),
        Capability::Other(n, a) => (n.as_str(), words(a), None),
    };
    let obj: JsValue = Object::new().into();
    set(&obj, "name", name);
    set(&obj, "args", args);
    if let Some(v) = value {
        set(&obj, "value", v);
    }
    obj
}

/// Reads an optional options object (`undefined`/`null` = all defaults).
pub(crate) struct Options<'a>(pub(crate) &'a JsValue);

impl Options<'_> {
    /// The value at `key`, `None` when absent, `undefined` or `null`.
    pub(crate) fn value(&self, key: &str) -> Result<Option<JsValue>, JsValue> {
        if self.0.is_undefined() || self.0.is_null() {
            return Ok(None);
        }
        if !self.0.is_object() {
            return Err(usage("options must be an object"));
        }
        let v = Reflect::get(self.0, &JsValue::from_str(key))?;
        Ok(if v.is_undefined() || v.is_null() {
            None
        } else {
            Some(v)
        })
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, JsValue> {
        self.value(key)?
            .map(|v| {
                v.as_bool()
                    .ok_or_else(|| usage(&format!("option {key} must be a boolean")))
            })
            .transpose()
    }

    /// A non-negative integer up to `u32::MAX`.
    pub(crate) fn u32(&self, key: &str) -> Result<Option<u32>, JsValue> {
        self.value(key)?
            .map(|v| {
                v.as_f64()
                    .filter(|n| n.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(n))
                    .map(|n| n as u32)
                    .ok_or_else(|| {
                        usage(&format!("option {key} must be an integer from 0 to 2^32-1"))
                    })
            })
            .transpose()
    }

    pub(crate) fn usize(&self, key: &str) -> Result<Option<usize>, JsValue> {
        Ok(self.u32(key)?.map(|n| n as usize))
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, JsValue> {
        self.value(key)?
            .map(|v| {
                v.as_string()
                    .ok_or_else(|| usage(&format!("option {key} must be a string")))
            })
            .transpose()
    }

    /// An array of strings.
    #[cfg(feature = "server")]
    pub(crate) fn strings(&self, key: &str) -> Result<Option<Vec<String>>, JsValue> {
        let Some(v) = self.value(key)? else {
            return Ok(None);
        };
        if !Array::is_array(&v) {
            return Err(usage(&format!("option {key} must be an array of strings")));
        }
        Array::from(&v)
            .iter()
            .map(|s| {
                s.as_string()
                    .ok_or_else(|| usage(&format!("option {key} must be an array of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}
