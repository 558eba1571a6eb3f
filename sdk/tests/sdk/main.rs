//! The SDK's tests, one binary: its coverage of the REST API against the
//! committed OpenAPI document (and a real catalog), and the publisher against
//! real Delta tables.

mod openapi;
mod publish;

/// A catalog on SQLite in a temporary directory, with `admin_key` as its
/// bootstrap admin's key, serving until [`Catalog::stop`].
pub struct Catalog {
    pub base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Catalog {
    pub async fn start(admin_key: &str) -> Self {
        use tessera_catalog::Application;
        use tessera_catalog::config::{Config, Secret};
        let dir = tempfile::tempdir().expect("tempdir");
        let config = Config {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join("data"),
            bootstrap_key: Some(Secret::new(admin_key)),
            ..Config::default()
        };
        let app = Application::build(config).await.expect("catalog builds");
        let base = format!("http://{}", app.local_addr().expect("bound"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        Self {
            base,
            stop,
            server,
            _dir: dir,
        }
    }

    /// Stops serving; the server must stop cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.expect("joined").expect("stopped cleanly");
    }
}
