//! `tessera demo --tls`: a local certificate authority and a server
//! certificate for the loopback names, made once into `<data dir>/tls/` and
//! reused on later runs, so that clients verify the demo's listeners the
//! way they would verify a production certificate.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tessera_testkit::certs::issue;

/// The files of the demo's TLS.
pub struct DemoTls {
    /// The local CA's certificate: what clients trust (`sslrootcert`, `--cacert`).
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The demo's certificates in `dir`, made if missing: a CA ("Tessera demo
/// CA") and a certificate it signed for `localhost`, `127.0.0.1` and `::1`.
/// The keys are readable by the owner only; the CA's key is not kept.
pub fn demo_certificates(dir: &Path) -> anyhow::Result<DemoTls> {
    let tls = DemoTls {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    if tls.ca.exists() && tls.cert.exists() && tls.key.exists() {
        return Ok(tls);
    }
    tessera_lake::private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (ca, cert, key) = issue(&["localhost", "127.0.0.1", "::1"]).context("cannot make the demo's certificates")?;
    crate::cli::write_private(&tls.ca, ca.as_bytes())?;
    crate::cli::write_private(&tls.cert, cert.as_bytes())?;
    crate::cli::write_private(&tls.key, key.as_bytes())?;
    Ok(tls)
}
