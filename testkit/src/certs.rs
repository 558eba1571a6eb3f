//! Certificates for TLS: a certificate authority, and the server and client
//! certificates it signs (the demo's `--tls` mode, and the TLS tests).

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority made on the spot.
pub struct Authority {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Authority {
    pub fn new(name: &str) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(Self {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate()?)?,
        })
    }

    /// The CA's certificate (PEM): what clients trust.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses): the
    /// certificate and its key, in PEM.
    pub fn server(&self, names: &[&str]) -> Result<(String, String), rcgen::Error> {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())?;
        params.distinguished_name.push(DnType::CommonName, "Tessera");
        self.sign(&params)
    }

    /// A client certificate (mutual TLS) for `name`: the certificate and its key, in PEM.
    pub fn client(&self, name: &str) -> Result<(String, String), rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(&params)
    }

    fn sign(&self, params: &CertificateParams) -> Result<(String, String), rcgen::Error> {
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// A new CA and a server certificate it signed for `names`: the CA's
/// certificate, the server's certificate and the server's key, in PEM.
pub fn issue(names: &[&str]) -> Result<(String, String, String), rcgen::Error> {
    let ca = Authority::new("Tessera demo CA")?;
    let (cert, key) = ca.server(names)?;
    Ok((ca.pem(), cert, key))
}
