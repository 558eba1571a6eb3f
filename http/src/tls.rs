//! TLS for every listener (rustls): the `[tls]` settings, certificates that
//! reload on SIGHUP without dropping open connections, and an accept loop
//! that tells TLS from cleartext on the first byte, so one port serves both
//! unless TLS is required.
//!
//! The catalog's HTTP server and the gateway's HTTP and Flight SQL listeners
//! accept through [`Accepting`]; PostgreSQL wire negotiates TLS itself
//! (`SSLRequest`) with [`Tls::acceptor`].

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// The `[tls]` section: one certificate for every listener of the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain (PEM), the server's certificate first.
    pub cert_file: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1). Readable by the
    /// service's user only.
    pub key_file: PathBuf,
    /// Refuse cleartext connections on every listener (before any
    /// credential is read). Off: each listener serves TLS and cleartext.
    #[serde(default)]
    pub require: bool,
    /// Mutual TLS: client certificates signed by this CA (PEM) are verified
    /// when presented. Clients without one are still served (people, tools),
    /// but the catalog then refuses a gateway's principal that connects
    /// without a verified client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca_file: Option<PathBuf>,
}

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("{0} holds no PEM private key")]
    NoKey(PathBuf),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Rustls(#[from] tokio_rustls::rustls::Error),
    #[error("the client CA {path} cannot verify client certificates: {why}")]
    ClientCa { path: PathBuf, why: String },
}

/// A listener's TLS: the current server configuration, replaced whole by
/// [`Tls::reload`]. Handshakes under way and open connections keep the
/// configuration they started with.
pub struct Tls {
    config: TlsConfig,
    alpn: Vec<Vec<u8>>,
    current: RwLock<Arc<ServerConfig>>,
}

/// ALPN for HTTP listeners (HTTP/2 and HTTP/1.1).
pub const ALPN_HTTP: &[&[u8]] = &[b"h2", b"http/1.1"];
/// ALPN for gRPC (Flight SQL): HTTP/2 only.
pub const ALPN_GRPC: &[&[u8]] = &[b"h2"];
/// ALPN for PostgreSQL wire (direct TLS negotiation, PostgreSQL 17).
pub const ALPN_POSTGRES: &[&[u8]] = &[b"postgresql"];

/// How long a client may take to send its first byte and finish a handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Tls {
    /// Loads the certificate and key, offering `alpn` protocols.
    pub fn load(config: &TlsConfig, alpn: &[&[u8]]) -> Result<Arc<Self>, TlsError> {
        let alpn: Vec<Vec<u8>> = alpn.iter().map(|p| p.to_vec()).collect();
        let server = server_config(config, &alpn)?;
        Ok(Arc::new(Self {
            config: config.clone(),
            alpn,
            current: RwLock::new(Arc::new(server)),
        }))
    }

    /// Reads the certificate and key again (a renewed certificate); on
    /// failure the previous ones stay in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let server = server_config(&self.config, &self.alpn)?;
        *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(server);
        Ok(())
    }

    /// An acceptor with the configuration in force now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(
            &self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner),
        ))
    }

    /// Whether cleartext connections are refused.
    pub fn required(&self) -> bool {
        self.config.require
    }
}

fn server_config(config: &TlsConfig, alpn: &[Vec<u8>]) -> Result<ServerConfig, TlsError> {
    let certs = read_certificates(&config.cert_file)?;
    let key = read_key(&config.key_file)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider)).with_safe_default_protocol_versions()?;
    let builder = match &config.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let failed = |why: String| TlsError::ClientCa {
                path: path.clone(),
                why,
            };
            let mut roots = tokio_rustls::rustls::RootCertStore::empty();
            for ca in read_certificates(path)? {
                roots.add(ca).map_err(|e| failed(e.to_string()))?;
            }
            let verifier =
                tokio_rustls::rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| failed(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut server = builder.with_single_cert(certs, key)?;
    server.alpn_protocols = alpn.to_vec();
    Ok(server)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The PEM certificates of a file (a CA bundle or a chain).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey(path.to_path_buf()))
}

/// Reloads every listener's certificate when the process gets SIGHUP (a
/// failed reload is logged and the previous certificate stays).
pub fn reload_on_hangup(tls: Vec<Arc<Tls>>) {
    if tls.is_empty() {
        return;
    }
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot watch SIGHUP: certificates are read at start only");
            return;
        };
        while hangups.recv().await.is_some() {
            for listener in &tls {
                match listener.reload() {
                    Ok(()) => tracing::info!(cert = %listener.config.cert_file.display(), "TLS certificate reloaded"),
                    Err(e) => tracing::error!(error = %e, "TLS certificate not reloaded; the previous one stays"),
                }
            }
        }
    });
}

/// A connection accepted by [`Accepting`]: TLS or, where allowed, cleartext.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        }
    }

    /// Whether the client presented a certificate the listener's client CA
    /// verified (mutual TLS).
    pub fn client_certified(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            Self::Tls(tls) => tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// What a cleartext client of a listener that requires TLS is told before
/// the connection closes.
#[derive(Clone, Copy)]
pub enum Refusal {
    /// An HTTP 400 problem saying to use https.
    Http,
    /// Nothing (gRPC clients see the connection close).
    Close,
}

/// Accepts connections on a listener, with TLS when configured: each
/// connection's first byte and handshake are awaited on a task of their own
/// (bounded by a timeout), so a slow client holds nobody else up.
pub struct Accepting {
    ready: mpsc::Receiver<(Conn, SocketAddr)>,
    local: SocketAddr,
    accepter: tokio::task::JoinHandle<()>,
}

impl Drop for Accepting {
    fn drop(&mut self) {
        self.accepter.abort();
    }
}

impl Accepting {
    pub fn new(listener: TcpListener, tls: Option<Arc<Tls>>, refusal: Refusal) -> io::Result<Self> {
        let local = listener.local_addr()?;
        let (sender, ready) = mpsc::channel(64);
        let accepter = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, go on.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Without TCP_NODELAY a response written in more than one
                // piece waits for the client's delayed ACK (40 ms on Linux).
                let _ = tcp.set_nodelay(true);
                let Some(tls) = tls.clone() else {
                    if sender.send((Conn::Plain(tcp), peer)).await.is_err() {
                        return;
                    }
                    continue;
                };
                let sender = sender.clone();
                tokio::spawn(async move {
                    let conn = tokio::time::timeout(HANDSHAKE_TIMEOUT, classify(tcp, &tls, refusal)).await;
                    match conn {
                        Ok(Ok(Some(conn))) => {
                            let _ = sender.send((conn, peer)).await;
                        }
                        Ok(Ok(None)) => tracing::debug!(%peer, "cleartext connection refused: TLS is required"),
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local, accepter })
    }

    /// The next connection ready to serve.
    pub async fn next(&mut self) -> Option<(Conn, SocketAddr)> {
        self.ready.recv().await
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The connections as a stream (for tonic's `serve_with_incoming`).
    pub fn into_stream(self) -> impl futures::Stream<Item = io::Result<Conn>> + Send {
        futures::stream::unfold(self, |mut accepting| async move {
            let (conn, _) = accepting.next().await?;
            Some((Ok(conn), accepting))
        })
    }
}

/// TLS if the client starts a handshake (first byte 0x16), else cleartext
/// where allowed; `None` for a refused cleartext client.
async fn classify(tcp: TcpStream, tls: &Tls, refusal: Refusal) -> io::Result<Option<Conn>> {
    let mut first = [0u8; 1];
    let n = tcp.peek(&mut first).await?;
    if n == 1 && first[0] == 0x16 {
        let stream = tls.acceptor().accept(tcp).await?;
        return Ok(Some(Conn::Tls(Box::new(stream))));
    }
    if !tls.required() {
        return Ok(Some(Conn::Plain(tcp)));
    }
    let mut tcp = tcp;
    if let Refusal::Http = refusal {
        let body = r#"{"type":"urn:tessera:problem:tls-required","title":"TLS required","status":400,"detail":"this listener accepts only TLS: use https://"}"#;
        let response = format!(
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = tcp.write_all(response.as_bytes()).await;
        let _ = tcp.shutdown().await;
    }
    Ok(None)
}

impl axum::serve::Listener for Accepting {
    type Io = Conn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.next().await {
            Some(accepted) => accepted,
            // The accept loop ended (it never does while the listener lives).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.tcp().connect_info()
    }
}
