//! What every client command shares: where the platform is and which key to
//! use (flags > environment > `tessera login`'s file), the output format, and
//! how failures become messages with a hint and exit codes scripts can rely on.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use tessera_sdk::Client;

/// The platform's address when nothing else says (`tessera serve`'s default).
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";

/// Exit codes (also in `tessera --help`).
pub mod exit {
    /// The command ran and found problems: lint issues, breaking changes,
    /// failing checks, a refused publish.
    pub const FOUND: u8 = 1;
    /// Bad usage or local input (clap uses 2 for usage errors too).
    pub const USAGE: u8 = 2;
    /// Not signed in, or the key is not accepted (401), or not allowed (403).
    pub const AUTH: u8 = 3;
    /// What was named does not exist (or is not visible to you) (404).
    pub const NOT_FOUND: u8 = 4;
    /// A conflict: it exists already, changed meanwhile, or is in the wrong state (409, 412).
    pub const CONFLICT: u8 = 5;
    /// The request was refused as invalid (400, 413, 415, 422).
    pub const INVALID: u8 = 6;
    /// The platform is unreachable, busy or failing (connection errors, 5xx).
    pub const UNAVAILABLE: u8 = 7;
}

pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  the command ran and found problems (lint issues, breaking changes, failing checks, refused publish)
  2  usage error or bad local input
  3  not signed in, key not accepted, or not allowed
  4  not found (or not visible to you)
  5  conflict: exists already, changed meanwhile, or wrong state
  6  refused as invalid by the platform
  7  platform unreachable, busy or failing";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// For people: aligned tables and sentences.
    Text,
    /// For scripts: one JSON document on stdout.
    Json,
    /// `tessera sql` only: CSV with a header row.
    Csv,
    /// `tessera sql` only: an Arrow IPC stream.
    Arrow,
}

/// Connection options every client command accepts.
#[derive(Clone, clap::Args)]
pub struct Global {
    /// The platform's URL [default: from `tessera login`, else http://127.0.0.1:8080].
    #[arg(
        long,
        alias = "catalog",
        global = true,
        env = "TESSERA_CATALOG_URL",
        value_name = "URL"
    )]
    pub endpoint: Option<String>,
    /// API key [default: from `tessera login`]. On the command line it shows in
    /// `ps` output and shell history: prefer TESSERA_API_KEY or `tessera login`.
    #[arg(
        long,
        global = true,
        env = "TESSERA_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    pub key: Option<String>,
    /// CA certificates (PEM) to trust for an https:// endpoint besides the
    /// system's: a private CA, such as `tessera demo --tls`'s `ca.pem`.
    #[arg(long, global = true, env = "TESSERA_CA_FILE", value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Output format: text for people, json for scripts (csv and arrow: `tessera sql`).
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// Whether `key` came from the command line (`--key`) rather than the
    /// environment: set by `main` from clap's matches.
    #[arg(skip)]
    pub key_on_command_line: bool,
}

impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Global")
            .field("endpoint", &self.endpoint)
            .field("key", &self.key.as_ref().map(|_| "***"))
            .field("output", &self.output)
            .field("key_on_command_line", &self.key_on_command_line)
            .finish()
    }
}

/// The warning printed when a secret is given as a command-line flag: it shows
/// in `ps` output to every user of the machine, and in shell history.
pub fn warn_secret_flag(flag: &str, instead: &str) {
    eprintln!(
        "warning: {flag} on the command line shows in `ps` output and shell history; for anything but development, use {instead}"
    );
}

impl Global {
    pub fn json(&self) -> bool {
        self.output == Output::Json
    }

    /// Where the platform is: the flag or environment, else the login file, else the default.
    pub fn endpoint(&self) -> anyhow::Result<String> {
        if let Some(e) = &self.endpoint {
            return Ok(e.trim_end_matches('/').to_string());
        }
        Ok(Login::read()?.map_or_else(|| DEFAULT_ENDPOINT.to_string(), |l| l.endpoint))
    }

    /// A client with the key of the flag or environment, else the login file's.
    pub fn client(&self) -> anyhow::Result<Client> {
        let endpoint = self.endpoint()?;
        let key = match &self.key {
            Some(k) => k.clone(),
            None => Login::read()?.map(|l| l.key).ok_or_else(|| {
                Hinted::new(
                    "no API key",
                    "run `tessera login` (it asks for the key) or set TESSERA_API_KEY",
                )
            })?,
        };
        self.client_for(endpoint, &key)
    }

    /// A client of `endpoint` with `key`, trusting `--cacert`'s CAs.
    pub fn client_for(&self, endpoint: String, key: &str) -> anyhow::Result<Client> {
        Ok(Client::trusting(endpoint, key, self.ca_pem()?.as_deref())?)
    }

    /// The CA certificates of `--cacert`, if given.
    pub fn ca_pem(&self) -> anyhow::Result<Option<Vec<u8>>> {
        self.cacert
            .as_ref()
            .map(|path| std::fs::read(path).with_context(|| format!("cannot read --cacert {}", path.display())))
            .transpose()
    }
}

/// What `tessera login` stores: readable by the user only.
#[derive(Clone, Serialize, Deserialize)]
pub struct Login {
    pub endpoint: String,
    pub key: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("endpoint", &self.endpoint)
            .field("key", &"***")
            .finish()
    }
}

impl Login {
    /// `$TESSERA_CLI_CONFIG`, else `$XDG_CONFIG_HOME/tessera/cli.toml`, else `~/.config/tessera/cli.toml`.
    pub fn path() -> anyhow::Result<PathBuf> {
        if let Some(p) = std::env::var_os("TESSERA_CLI_CONFIG") {
            return Ok(PathBuf::from(p));
        }
        let base = match std::env::var_os("XDG_CONFIG_HOME") {
            Some(x) if !x.is_empty() => PathBuf::from(x),
            _ => PathBuf::from(std::env::var_os("HOME").context("HOME is not set: set TESSERA_CLI_CONFIG")?)
                .join(".config"),
        };
        Ok(base.join("tessera").join("cli.toml"))
    }

    pub fn read() -> anyhow::Result<Option<Self>> {
        let path = Self::path()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map(Some).with_context(|| {
                format!(
                    "{} is not a valid login file: run `tessera login` again",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the file with mode 0600 (created so, never widened first).
    pub fn write(&self) -> anyhow::Result<PathBuf> {
        let path = Self::path()?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        write_private(&path, toml::to_string(self)?.as_bytes())?;
        Ok(path)
    }
}

/// Writes a file only its owner can read or write (the file holds secrets).
pub fn write_private(path: &std::path::Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        // An existing file keeps its mode on open: narrow it first.
        if path.exists() {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("cannot restrict {}", path.display()))?;
        }
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// An error with a suggestion of what to do about it.
#[derive(Debug)]
pub struct Hinted {
    message: String,
    hint: String,
}

impl Hinted {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hinted {}

/// Prints an error as `error: ...` (and `hint: ...`) on stderr and picks its exit code.
pub fn report(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {error:#}");
    if let Some(problem) = error
        .chain()
        .find_map(|c| c.downcast_ref::<tessera_sdk::Error>().and_then(problem_of))
    {
        for e in &problem.errors {
            eprintln!("  {}: {}", e.path, e.message);
        }
    }
    let (code, hint) = classify(error);
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
    ExitCode::from(code)
}

/// A problem's itemized reasons, one per line on stderr: field errors, breaking
/// changes, and differences between a contract and its table.
pub fn print_problem_details(problem: &tessera_sdk::api::Problem) {
    if let Some(sqlstate) = &problem.sqlstate {
        eprintln!("  SQLSTATE {sqlstate}");
    }
    for e in &problem.errors {
        eprintln!("  {}: {}", e.path, e.message);
    }
    for v in &problem.violations {
        eprintln!(
            "  {} {}: {} -> {}",
            v.rule,
            v.path,
            v.old.as_deref().unwrap_or("-"),
            v.new.as_deref().unwrap_or("-")
        );
    }
    for m in &problem.mismatches {
        eprintln!(
            "  {} {}: the contract says {}, the table has {}",
            m.rule, m.path, m.expected, m.actual
        );
    }
}

fn problem_of(e: &tessera_sdk::Error) -> Option<&tessera_sdk::api::Problem> {
    match e {
        tessera_sdk::Error::Api { problem, .. } => Some(problem),
        _ => None,
    }
}

fn classify(error: &anyhow::Error) -> (u8, Option<String>) {
    for cause in error.chain() {
        if let Some(h) = cause.downcast_ref::<Hinted>() {
            return (exit::USAGE, Some(h.hint.clone()));
        }
        let sdk = cause.downcast_ref::<tessera_sdk::Error>().or_else(|| {
            match cause.downcast_ref::<tessera_sdk::publish::PublishError>() {
                Some(tessera_sdk::publish::PublishError::Api(e)) => Some(e),
                _ => None,
            }
        });
        if let Some(e) = sdk {
            return match e.status().map(|s| s.as_u16()) {
                Some(401) => (
                    exit::AUTH,
                    Some("the key was not accepted: run `tessera login` again with a valid key".into()),
                ),
                Some(403) => (
                    exit::AUTH,
                    Some("your principal may not do this: `tessera whoami` shows who you are".into()),
                ),
                Some(404) => (
                    exit::NOT_FOUND,
                    Some("check the name (`tessera product list`, `tessera domain list`); what you may not see is not found".into()),
                ),
                Some(409 | 412) => (exit::CONFLICT, None),
                Some(400 | 413 | 415 | 422) => (exit::INVALID, None),
                Some(_) => (exit::UNAVAILABLE, None),
                None => (
                    exit::UNAVAILABLE,
                    Some("is the platform running there? start one with `tessera demo` or `tessera serve`, or pass --endpoint".into()),
                ),
            };
        }
    }
    (exit::USAGE, None)
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A listing: JSON for scripts, else an aligned table of `row(item)` under `header`.
pub fn print_items<T: Serialize>(
    global: &Global,
    items: &[T],
    header: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    if global.json() {
        print_json(&items)
    } else {
        let rows: Vec<Vec<String>> = items.iter().map(row).collect();
        print_table(header, &rows);
        Ok(())
    }
}

/// Prints rows as an aligned table with a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

/// A spinner on stderr for work of unknown length (nothing when stderr is not a terminal).
pub fn spinner(message: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

/// A progress bar on stderr when it is a terminal (nothing otherwise).
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(what.to_string());
    bar
}

/// `domain.product` split, with a hint when it is not that.
pub fn product_ref(s: &str) -> anyhow::Result<(String, String)> {
    tessera_contracts::names::parse_product_ref(s)
        .map(|(d, p)| (d.to_string(), p.to_string()))
        .map_err(|e| {
            Hinted::new(
                format!("{s:?}: {e}"),
                "name a product as <domain>.<product>, e.g. sales.orders",
            )
            .into()
        })
}

/// Every item of a paged listing, page after page (`fetch` gets each page's cursor).
pub async fn all_pages<T>(
    mut fetch: impl AsyncFnMut(Option<String>) -> tessera_sdk::Result<tessera_sdk::api::Page<T>>,
) -> anyhow::Result<Vec<T>> {
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = fetch(cursor.take()).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(items),
        }
    }
}

/// The largest page the API serves.
pub const PAGE: Option<i64> = Some(500);
