//! Builds the portal (`portal/`, TypeScript) with npm when its sources change,
//! and embeds what it builds (`portal/dist`) in the `tessera` binary, in every
//! profile: `tessera serve` and `tessera demo` serve it at `/`.
//!
//! `TESSERA_PORTAL_SKIP_BUILD=1` embeds whatever `portal/dist` holds (or a page
//! saying the portal was not built) without running npm.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let portal = root.join("portal");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=TESSERA_PORTAL_SKIP_BUILD");
    println!("cargo:rerun-if-changed=docs/openapi.json");
    // Each source file, not the folders: the build regenerates
    // src/api/schema.d.ts, which must not trigger the next build.
    let mut sources = Vec::new();
    for entry in [
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
    ] {
        sources.push(portal.join(entry));
    }
    files(&portal.join("src"), &mut sources);
    files(&portal.join("public"), &mut sources);
    for source in sources.iter().filter(|p| !p.ends_with("src/api/schema.d.ts")) {
        println!("cargo:rerun-if-changed={}", source.display());
    }

    let dist = portal.join("dist");
    if std::env::var_os("TESSERA_PORTAL_SKIP_BUILD").is_none() {
        if !portal.join("node_modules").exists() {
            npm(&portal, &["ci", "--no-audit", "--no-fund"]);
        }
        npm(&portal, &["run", "build"]);
    }

    let mut assets = Vec::new();
    files(&dist, &mut assets);
    assets.sort();
    let mut code =
        String::from("/// The portal's files: (path under `/`, contents).\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    for asset in &assets {
        let name = asset
            .strip_prefix(&dist)
            .expect("under dist")
            .to_str()
            .expect("UTF-8 file names");
        let _ = writeln!(
            code,
            "    ({name:?}, include_bytes!({:?})),",
            asset.display().to_string()
        );
    }
    code.push_str("];\n");
    std::fs::write(out.join("portal_assets.rs"), code).expect("writes the asset list");
}

/// Every file under `dir`, recursively (nothing if it does not exist).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn npm(dir: &Path, args: &[&str]) {
    let status = Command::new("npm").args(args).current_dir(dir).status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "`npm {}` in portal/ failed ({s}): the portal's type check or build broke (see above); \
             TESSERA_PORTAL_SKIP_BUILD=1 builds without it",
            args.join(" ")
        ),
        Err(e) => panic!(
            "cannot run npm ({e}): building the portal needs Node.js 20.19+ and npm \
             (Debian: apt-get install nodejs npm); TESSERA_PORTAL_SKIP_BUILD=1 builds without it"
        ),
    }
}
