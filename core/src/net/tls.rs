//! rustls client configuration: system and bundled roots, plus an optional extra CA.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use super::{ConnectOptions, NetError};

/// The platform's roots plus Mozilla's bundled set, loaded once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        // A broken system store must not stop TLS: the bundled roots still apply.
        rustls_native_certs::load_native_certs().certs
    })
}

/// Builds the client configuration for `options`.
pub fn client_config(options: &ConnectOptions) -> Result<Arc<ClientConfig>, NetError> {
    let mut roots = RootCertStore::empty();
    if options.system_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // Some system certificates are malformed; skipping them is what every client does.
        let _ = roots.add_parsable_certificates(system_roots().iter().cloned());
    }
    if let Some(path) = &options.ca_file {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|e| NetError::CaFile {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        add_pem(&mut roots, &pem, &shown)?;
    }
    if let Some(pem) = &options.ca_pem {
        add_pem(&mut roots, pem, "(inline PEM)")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| NetError::tls(&options.host, e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn add_pem(roots: &mut RootCertStore, pem: &[u8], shown: &str) -> Result<(), NetError> {
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| NetError::CaFile {
            path: shown.to_string(),
            reason: format!("not a PEM certificate: {e:?}"),
        })?;
        roots.add(cert).map_err(|e| NetError::CaFile {
            path: shown.to_string(),
            reason: e.to_string(),
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(NetError::CaFile {
            path: shown.to_string(),
            reason: "no certificate found in it".into(),
        });
    }
    Ok(())
}

/// The TLS server name for `host` (a DNS name or an IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, NetError> {
    ServerName::try_from(host.to_string()).map_err(|_| NetError::Certificate {
        host: host.to_string(),
        reason: "the host is neither a valid DNS name nor an IP address".into(),
    })
}
