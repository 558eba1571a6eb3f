//! Storage ownership: the one form of a table location or a storage root the
//! catalog stores and compares, an absolute URL.
//!
//! - A storage root is a URL prefix ending in `/` (`file:///lake/sales/`,
//!   `s3://bucket/sales/`); an absolute path becomes a `file` URL.
//! - A location is an absolute URL without a trailing `/`; a relative path is
//!   resolved once, against the first root of the product's domain.
//! - Local (`file`) paths are resolved the way the operating system would
//!   open them, symbolic links included (dangling ones too), so that a link
//!   under one domain's root pointing into another's is seen for what it is.
//!   What does not exist yet is taken as written (`..` lexically).
//! - Object-store URLs are taken literally, so `.`/`..` segments, empty
//!   segments and encoded slashes or dots are refused rather than interpreted.
//!
//! Two locations *overlap* when they are equal or one lies under the other at
//! a `/` boundary; no two products may have overlapping locations, and no two
//! domains overlapping roots.

use std::path::{Component, Path, PathBuf};

use url::Url;

/// How many symbolic links one path may go through.
const MAX_LINKS: usize = 40;

/// Whether `a` and `b` are equal or one lies under the other at a `/` boundary
/// (trailing slashes aside).
pub fn overlaps(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim_end_matches('/'), b.trim_end_matches('/'));
    a == b || nested(a, b) || nested(b, a)
}

/// Whether `inner` lies strictly under `outer` (both without trailing `/`).
fn nested(inner: &str, outer: &str) -> bool {
    inner.len() > outer.len() && inner.starts_with(outer) && inner.as_bytes()[outer.len()] == b'/'
}

/// Whether `location` lies strictly under one of `roots`.
pub fn under_roots(location: &str, roots: &[String]) -> bool {
    let location = location.trim_end_matches('/');
    roots.iter().any(|r| nested(location, r.trim_end_matches('/')))
}

/// Whether a stored location is an absolute URL (locations stored by earlier
/// versions may be paths, relative ones included).
pub fn is_url(location: &str) -> bool {
    location.contains("://")
}

/// The storage root of a local directory, as a `file` URL ending in `/`.
pub fn root_of_path(path: &Path) -> Result<String, String> {
    let absolute = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let resolved = resolve_path(&absolute)?;
    Ok(with_slash(file_url(&resolved)?))
}

fn with_slash(url: String) -> String {
    if url.ends_with('/') { url } else { format!("{url}/") }
}

/// A storage root as an admin gives it: an absolute URL or path; its
/// normalised form, ending in `/`.
pub fn normalize_root(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("a storage root is an absolute URL or path".into());
    }
    let absolute =
        absolute(raw)?.ok_or("a storage root is absolute: a URL (s3://bucket/prefix/) or an absolute path")?;
    Ok(with_slash(absolute))
}

/// An output port's location as registered: an absolute URL or path, or a
/// path relative to `first_root`; its normalised absolute URL.
pub fn normalize_location(raw: &str, first_root: Option<&str>) -> Result<String, String> {
    let raw = raw.trim();
    if let Some(absolute) = absolute(raw)? {
        return Ok(absolute);
    }
    let root = first_root.ok_or("the domain has no storage root to resolve a relative location against")?;
    let root_url = Url::parse(root).map_err(|e| format!("the domain's storage root {root}: {e}"))?;
    if root_url.scheme() == "file" {
        let base = root_url
            .to_file_path()
            .map_err(|()| format!("the domain's storage root {root} is not a local path"))?;
        let resolved = resolve_path(&base.join(raw))?;
        return file_url(&resolved);
    }
    // An object store: segments, taken literally, `..` resolved lexically.
    let mut segments: Vec<&str> = root_url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    for segment in raw.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let host = root_url.host_str().unwrap_or_default();
    let port = root_url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let joined = format!("{}://{host}{port}/{}", root_url.scheme(), segments.join("/"));
    absolute(&joined)?.ok_or_else(|| format!("{raw}: not a location"))
}

/// The normalised form of an absolute URL or path (no trailing `/`); `None`
/// for a relative path.
fn absolute(raw: &str) -> Result<Option<String>, String> {
    if raw.chars().any(char::is_control) || raw.contains('\\') {
        return Err("a location has no control characters or backslashes".into());
    }
    if raw.starts_with('/') {
        let resolved = resolve_path(Path::new(raw))?;
        return file_url(&resolved).map(Some);
    }
    if !is_url(raw) {
        return Ok(None);
    }
    let url = Url::parse(raw).map_err(|e| format!("{raw} is not a URL: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("a location's URL has no credentials, query or fragment".into());
    }
    if url.scheme() == "file" {
        let path = url
            .to_file_path()
            .map_err(|()| format!("{raw} is not a path on this machine"))?;
        let resolved = resolve_path(&path)?;
        return file_url(&resolved).map(Some);
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("{raw} names no bucket or host"))?;
    let lower = url.path().to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%2e") || lower.contains("%5c") {
        return Err(format!("{raw}: encoded slashes and dots are not taken"));
    }
    let segments: Vec<&str> = url.path().trim_end_matches('/').split('/').skip(1).collect();
    if segments.iter().any(|s| matches!(*s, "." | ".." | "")) {
        return Err(format!(
            "{raw}: `.`, `..` and empty segments are not taken in an object store's URL"
        ));
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = url.path().trim_end_matches('/');
    Ok(Some(format!(
        "{}://{}{port}{path}",
        url.scheme(),
        host.to_ascii_lowercase()
    )))
}

/// The `file` URL of an absolute local path, without a trailing `/`.
fn file_url(path: &Path) -> Result<String, String> {
    let url = Url::from_file_path(path).map_err(|()| format!("{} is not an absolute path", path.display()))?;
    let text = url.as_str();
    Ok(if text == "file:///" {
        text.to_string()
    } else {
        text.trim_end_matches('/').to_string()
    })
}

/// Resolves an absolute local path as the operating system would open it:
/// `.` and `..` applied in order, every symbolic link followed, dangling ones
/// included; the part that does not exist yet is taken as written.
pub fn resolve_path(path: &Path) -> Result<PathBuf, String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some("..".into()),
            Component::RootDir | Component::Prefix(_) | Component::CurDir => None,
        })
        .collect();
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&name);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!("{}: too many symbolic links", path.display()));
                }
                let target = std::fs::read_link(&candidate).map_err(|e| format!("{}: {e}", candidate.display()))?;
                if target.is_absolute() {
                    resolved = PathBuf::from("/");
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
                    }
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(resolved)
}
