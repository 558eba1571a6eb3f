//! Where the output of the processes a test spawns goes, so that a whole run
//! can be scanned for secrets (issue #17).
//!
//! With `TESSERA_TEST_LOG_DIR` set (`scripts/test` sets it to a fresh
//! directory, and scans it after the run), each spawned `tessera` writes its
//! stderr, and the part of its stdout that the test does not parse, to
//! `<dir>/<test>.<pid>-<n>.<what>.log`, one file per process; and the secrets
//! a test learns at run time (generated keys, the mask key) are listed in
//! `<dir>/secrets/<test>.<pid>.txt`, one per line, for the scan to look for
//! too. Without it, output is discarded as before.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The directory of the run's logs, when set.
fn dir() -> Option<PathBuf> {
    std::env::var_os("TESSERA_TEST_LOG_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// The running test's name, as a file name: the test harness names the
/// test's thread after it (`cli::the_demo_mesh...` becomes `cli__the_demo_mesh...`).
fn test_name() -> String {
    let thread = std::thread::current();
    let name = match thread.name() {
        Some(n) if n != "main" && !n.starts_with("tokio-") => n,
        _ => "test",
    };
    name.replace("::", "__")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A new log file for a process this test spawns (`what`: `serve`, `gateway`,
/// `demo`, `cli`...), or `None` when logs are not kept.
pub fn file(what: &str) -> Option<(PathBuf, File)> {
    static SPAWNED: AtomicUsize = AtomicUsize::new(0);
    let dir = dir()?;
    std::fs::create_dir_all(&dir).expect("the test log directory");
    let n = SPAWNED.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{}.{}-{n}.{what}.log", test_name(), std::process::id()));
    let file = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Some((path, file))
}

/// For a process whose stdout the test reads: its stderr, and the same log
/// file for the lines of its stdout that the test does not parse (see
/// `stdout_lines`).
pub fn process(what: &str) -> (Stdio, Option<File>) {
    match file(what) {
        Some((path, f)) => {
            let rest = f.try_clone().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (Stdio::from(f), Some(rest))
        }
        None => (Stdio::null(), None),
    }
}

/// Keeps the stderr of a process run to completion (`Command::output`, whose
/// stdout the test parses).
pub fn record(what: &str, output: &Output) {
    if let Some((path, mut f)) = file(what) {
        f.write_all(&output.stderr)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

/// Lists a secret the test learned at run time, for the scan: of an API key
/// (`tsk_<id>_<secret>`) its secret part, else the whole value.
pub fn secret(value: &str) {
    let Some(dir) = dir() else { return };
    let secret = match value.strip_prefix("tsk_").and_then(|rest| rest.split_once('_')) {
        Some((_, secret)) => secret,
        None => value,
    };
    // Short values would match anything.
    if secret.len() < 16 {
        return;
    }
    let dir = dir.join("secrets");
    std::fs::create_dir_all(&dir).expect("the secrets directory");
    let path = dir.join(format!("{}.{}.txt", test_name(), std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    writeln!(f, "{secret}").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}
