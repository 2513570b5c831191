//! Owns the on-disk credential cache of the `credential-process` command: one file per key
//! under a private directory, so that the AWS CLI (which runs its `credential_process` for
//! every command) costs one STS call per session instead of one per command.
//!
//! Layout: `<dir>/<sha256 of the key>.json` holds the credentials and the whole key, and
//! `<dir>/<sha256 of the key>.lock` is the lock file that makes concurrent invocations share one
//! exchange. The directory is 0700 and owned by the user; entries are 0600, written to a
//! temporary file and renamed into place, so a reader never sees half a file.
//!
//! The key holds the token's identity and the region (issue 12): a directory shared across
//! machines or jobs, a token file rewritten with another account's token, or an alias that now
//! points at another account must never hand out the first account's session. The directory is
//! refused when it is a symbolic link or when a directory above it can be written by another
//! user (who could swap it for their own): see [`Cache::open`].
//!
//! Why SHA-256 (the `sha2` crate) rather than the std hasher: the file name is the only thing a
//! reader uses to find its entry, and the std hasher's output is neither stable across Rust
//! releases nor collision resistant. Each entry still carries its full key and is used only when
//! that key matches, so even a collision could never hand out another key's credentials.
//!
//! Anything unexpected in an entry (not JSON, another format, another key, wrong owner or
//! mode, a symlink) makes it a miss: the next exchange replaces it. Nothing here prints a secret.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::exchange::{CredentialProcessDocument, ExchangeParams};
use crate::secret::Secret;

/// The AWS CLI's and botocore's advisory refresh window: with less than this left they ask the
/// helper again on every call. An entry is therefore reused only while more than this remains.
pub const ADVISORY_REFRESH_SECS: i64 = 15 * 60;

/// Sessions shorter than this (twice the advisory window) would never be reused with the full
/// window as margin; they get [`refresh_margin`]'s proportional one.
pub const SHORT_SESSION_SECS: i64 = 2 * ADVISORY_REFRESH_SECS;

/// Written into every entry and the first line of every key's canonical text (so a change of
/// layout names other files); an entry with any other value is foreign and ignored. Version 2
/// added the token's identity and the region to the key.
pub const FORMAT: &str = "gcpfed-credential-cache/2";

/// Name of the cache's directory under `$XDG_CACHE_HOME` (or `~/.cache`).
pub const DIR_NAME: &str = "gcpfed";

/// Entries are a few kilobytes; anything bigger is not ours.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;

/// Everything that makes two sets of credentials interchangeable: the exchange's parameters,
/// the Google identity whose token is exchanged, the region, where the token comes from, and
/// the STS endpoint. Serialised (the parameters flat, then the fields below, in this order)
/// after the [`FORMAT`] line, it is the canonical key text whose SHA-256 names the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    /// The exchange's parameters, its policy ARNs sorted and deduplicated (their order does
    /// not count).
    #[serde(flatten)]
    pub params: ExchangeParams,
    /// Who the token speaks for: `sub:<sub> azp:<azp>` of a token file's current token (decoded
    /// unverified, STS verifies), or `email:<email>` of the metadata server's account behind the
    /// alias. Two identities never share an entry, whatever else they share.
    pub identity: String,
    /// The region whose STS endpoint issues the session.
    pub region: String,
    /// Where the ID token comes from (`metadata <host>` or `file <path>`): another metadata
    /// server or token file may stand for another Google identity.
    pub token_source: String,
    /// The explicit STS endpoint, if any: an emulator's credentials are not AWS's.
    pub sts_endpoint: Option<String>,
}

impl CacheKey {
    /// The canonical text of the key: the [`FORMAT`] line, then compact JSON with the fields in
    /// declaration order.
    pub fn canonical(&self) -> String {
        let json = serde_json::to_string(self).expect("a CacheKey always serialises");
        format!("{FORMAT}\n{json}")
    }

    /// Lower-case hex SHA-256 of [`CacheKey::canonical`]: the entry's file stem.
    pub fn digest(&self) -> String {
        sha256_hex(self.canonical().as_bytes())
    }

    /// The session's lifetime as requested (STS's default of one hour when none was).
    fn lifetime_secs(&self) -> i64 {
        i64::from(self.params.duration_seconds.unwrap_or(3600))
    }
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How long before its expiration an entry stops being handed out, for a session of
/// `lifetime_secs`: the SDKs' advisory window ([`ADVISORY_REFRESH_SECS`]), so that they never
/// get back credentials they would refresh again at once; half the lifetime for sessions
/// shorter than [`SHORT_SESSION_SECS`], so that even a 900 s session is reused.
pub fn refresh_margin(lifetime_secs: i64) -> i64 {
    if lifetime_secs >= SHORT_SESSION_SECS {
        ADVISORY_REFRESH_SECS
    } else {
        lifetime_secs.max(0) / 2
    }
}

/// Whether `document`, of a session of `lifetime_secs`, may still be handed out at `now` (epoch
/// seconds): more than [`refresh_margin`] before its expiration. A document whose expiration
/// does not parse never is.
pub fn is_fresh(document: &CredentialProcessDocument, now: i64, lifetime_secs: i64) -> bool {
    parse_expiration(&document.expiration)
        .is_some_and(|at| at - now > refresh_margin(lifetime_secs))
}

/// Seconds since the Unix epoch.
pub fn now_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What a look-up found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Usable credentials.
    Fresh(CredentialProcessDocument),
    /// A valid entry of this key, within the refresh margin or expired.
    Stale { expiration: String },
    /// No entry for this key.
    Missing,
    /// A file is there but is not a usable entry of this key (the reason names no secret).
    Ignored(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cannot create the cache directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the cache directory {path} belongs to another user (uid {owner}); credentials are not \
         kept there. Pass --cache-dir with a directory of your own, or --no-cache."
    )]
    NotOwned { path: PathBuf, owner: u32 },
    #[error("{path} is not a directory; pass --cache-dir with a directory, or --no-cache")]
    NotADirectory { path: PathBuf },
    #[error(
        "the cache directory {path} is a symbolic link; credentials are not kept behind a link \
         that can be re-pointed. Pass --cache-dir with the directory it points to (a link higher \
         up the path is fine), or --no-cache."
    )]
    Symlink { path: PathBuf },
    #[error(
        "the cache directory {dir} is inside {path}, which {reason}, so that user could swap the \
         cache directory for their own; credentials are not kept there. Pass --cache-dir with a \
         directory under one only you can write, or fix {path} (`chmod o-w,g-w` it, or \
         `chmod +t` for a shared directory like /tmp)."
    )]
    UnsafeParent {
        dir: PathBuf,
        path: PathBuf,
        reason: String,
    },
    #[error("cannot make the cache directory {path} private (0700): {source}")]
    Chmod {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the cache entry {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The cache's directory when none is given: `$XDG_CACHE_HOME/gcpfed` (an absolute
/// `XDG_CACHE_HOME` only, as the XDG spec says), else `$HOME/.cache/gcpfed`.
pub fn default_dir(xdg_cache_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    if let Some(xdg) = xdg_cache_home.filter(|x| Path::new(x).is_absolute()) {
        return Some(Path::new(xdg).join(DIR_NAME));
    }
    home.filter(|h| !h.is_empty())
        .map(|h| Path::new(h).join(".cache").join(DIR_NAME))
}

/// An open cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

/// Holds a key's lock until dropped (closing the file releases the lock).
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

impl Cache {
    /// Opens `dir`, creating it (and its parents) if needed. The directory itself is made
    /// 0700; one that belongs to another user, or is a symbolic link, is refused, and so is one
    /// under a directory that another user can write (checked before anything is created, and
    /// again after). Symbolic links higher up are followed: ~/.cache may live on another disk.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Cache, CacheError> {
        let dir = dir.into();
        check_ancestors(&dir)?;
        match fs::symlink_metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent).map_err(|source| CacheError::CreateDir {
                        path: parent.to_owned(),
                        source,
                    })?;
                    check_ancestors(&dir)?;
                }
                match fs::DirBuilder::new().mode(0o700).create(&dir) {
                    Ok(()) => {}
                    // Another invocation created it first.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(source) => {
                        return Err(CacheError::CreateDir { path: dir, source });
                    }
                }
            }
            Err(source) => return Err(CacheError::CreateDir { path: dir, source }),
        }
        // O_NOFOLLOW: the final component is never followed; the checks below are on what was
        // opened (fstat, fchmod), not on whatever the path names a moment later.
        let handle = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY)
            .open(&dir)
            .map_err(|source| match source.raw_os_error() {
                // With O_DIRECTORY, Linux reports a final symlink as ENOTDIR rather than ELOOP.
                Some(libc::ELOOP | libc::ENOTDIR)
                    if fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) =>
                {
                    CacheError::Symlink { path: dir.clone() }
                }
                Some(libc::ENOTDIR) => CacheError::NotADirectory { path: dir.clone() },
                _ => CacheError::CreateDir {
                    path: dir.clone(),
                    source,
                },
            })?;
        let meta = handle.metadata().map_err(|source| CacheError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(CacheError::NotADirectory { path: dir });
        }
        if meta.uid() != effective_uid() {
            return Err(CacheError::NotOwned {
                path: dir,
                owner: meta.uid(),
            });
        }
        if meta.mode() & 0o777 != 0o700 {
            handle
                .set_permissions(fs::Permissions::from_mode(0o700))
                .map_err(|source| CacheError::Chmod {
                    path: dir.clone(),
                    source,
                })?;
        }
        Ok(Cache { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry file of `key`.
    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.digest()))
    }

    /// The lock file of `key`.
    pub fn lock_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.lock", key.digest()))
    }

    /// Looks `key` up at `now` (epoch seconds). Never fails: an unreadable entry is a miss.
    pub fn load(&self, key: &CacheKey, now: i64) -> Lookup {
        let path = self.entry_path(key);
        let text = match read_private_file(&path) {
            Ok(Some(text)) => text,
            Ok(None) => return Lookup::Missing,
            Err(reason) => return Lookup::Ignored(reason),
        };
        match parse_entry(&text, key) {
            Ok(document) if is_fresh(&document, now, key.lifetime_secs()) => {
                Lookup::Fresh(document)
            }
            Ok(document) => Lookup::Stale {
                expiration: document.expiration,
            },
            Err(reason) => Lookup::Ignored(reason),
        }
    }

    /// Writes `creds` as the entry of `key`: a 0600 temporary file in the same directory (so
    /// the rename stays on one file system), flushed, then renamed over the old entry. A failed
    /// write leaves no temporary file behind (tempfile removes it).
    pub fn store(
        &self,
        key: &CacheKey,
        document: &CredentialProcessDocument,
    ) -> Result<(), CacheError> {
        let path = self.entry_path(key);
        let text = entry_text(key, document);
        let written = (|| -> io::Result<()> {
            let mut temp = tempfile::Builder::new()
                .prefix(&format!(".{}.", key.digest()))
                .suffix(".tmp")
                .permissions(fs::Permissions::from_mode(0o600))
                .tempfile_in(&self.dir)?;
            temp.write_all(text.expose().as_bytes())?;
            temp.as_file().sync_all()?;
            temp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        written.map_err(|source| CacheError::Write { path, source })
    }

    /// Takes `key`'s exclusive lock, waiting at most `timeout`; `Ok(None)` when another holder
    /// kept it longer (the caller then goes ahead without it rather than fail).
    pub fn lock(&self, key: &CacheKey, timeout: Duration) -> Result<Option<LockGuard>, CacheError> {
        let path = self.lock_path(key);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|source| CacheError::Lock {
                path: path.clone(),
                source,
            })?;
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(2);
        loop {
            // std's lock is flock(2) on Linux: it belongs to this open file description, so a
            // second open of the same file conflicts even within one process.
            match file.try_lock() {
                Ok(()) => return Ok(Some(LockGuard { _file: file })),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(TryLockError::Error(source)) => return Err(CacheError::Lock { path, source }),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(25));
        }
    }
}

/// Refuses `dir` when a directory above it (as named, and as resolved through symbolic links)
/// can be written by another user: world-writable, or group-writable for a group not our own,
/// without the sticky bit, or owned by another user than us or root. Such a user could rename
/// the cache directory away and put their own, holding their credentials, in its place.
/// Directories not created yet are skipped (the caller checks again after creating them).
fn check_ancestors(dir: &Path) -> Result<(), CacheError> {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let mut chain: Vec<PathBuf> = absolute.ancestors().skip(1).map(Path::to_owned).collect();
    if let Some(real) = chain.iter().find_map(|p| fs::canonicalize(p).ok()) {
        chain.extend(real.ancestors().map(Path::to_owned));
    }
    for path in chain {
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if let Some(reason) = writable_by_others(meta.mode(), meta.uid(), meta.gid()) {
            return Err(CacheError::UnsafeParent {
                dir: dir.to_owned(),
                path,
                reason,
            });
        }
    }
    Ok(())
}

/// Why a directory of `mode`, owned by `uid`:`gid`, lets another user replace what it holds
/// (`None` when only we, or root, can). Pure, for the unit tests.
fn writable_by_others(mode: u32, uid: u32, gid: u32) -> Option<String> {
    let sticky = mode & 0o1000 != 0;
    if uid != 0 && uid != effective_uid() {
        return Some(format!("is writable by its owner, uid {uid}"));
    }
    if !sticky && mode & 0o002 != 0 {
        return Some(format!(
            "is writable by all users (mode {:o}, without the sticky bit)",
            mode & 0o7777
        ));
    }
    if !sticky && mode & 0o020 != 0 && gid != effective_gid() {
        return Some(format!(
            "is writable by group {gid} (mode {:o}, without the sticky bit)",
            mode & 0o7777
        ));
    }
    None
}

fn effective_gid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Reads an entry: `Ok(None)` when absent, `Err(reason)` when present but not trustworthy
/// (a symlink, not a regular file, another owner, readable by others, too big).
fn read_private_file(path: &Path) -> Result<Option<String>, String> {
    let mut file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err("the entry is a symbolic link".into())
        }
        Err(e) => return Err(format!("the entry cannot be opened: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("the entry cannot be inspected: {e}"))?;
    if !meta.is_file() {
        return Err("the entry is not a regular file".into());
    }
    if meta.uid() != effective_uid() {
        return Err(format!("the entry belongs to uid {}", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "the entry has mode {:o}, not 600",
            meta.mode() & 0o777
        ));
    }
    if meta.len() > MAX_ENTRY_BYTES {
        return Err("the entry is too big to be ours".into());
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| format!("the entry cannot be read: {e}"))?;
    Ok(Some(text))
}

/// An entry file: the format marker, the whole key, and the document itself.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    format: String,
    key: CacheKey,
    credentials: CredentialProcessDocument,
}

/// The full text of an entry (it holds secrets, hence a [`Secret`]).
fn entry_text(key: &CacheKey, document: &CredentialProcessDocument) -> Secret {
    let entry = Entry {
        format: FORMAT.to_owned(),
        key: key.clone(),
        credentials: document.clone(),
    };
    Secret::new(serde_json::to_string(&entry).expect("an entry always serialises"))
}

/// Parses an entry and checks that it is one of ours, of this key, and complete (a Version 1
/// document with every field and an RFC 3339 UTC expiration). Error reasons never quote the
/// file (it may hold secrets).
fn parse_entry(text: &str, key: &CacheKey) -> Result<CredentialProcessDocument, String> {
    let entry: Entry = serde_json::from_str(text)
        .map_err(|_| "the entry is not a gcpfed cache entry of Version 1 credentials".to_owned())?;
    if entry.format != FORMAT {
        return Err("the entry has another format".into());
    }
    if &entry.key != key {
        return Err("the entry belongs to another key".into());
    }
    let doc = entry.credentials;
    if doc.access_key_id.is_empty()
        || doc.secret_access_key.expose().is_empty()
        || doc.session_token.expose().is_empty()
    {
        return Err("the entry's credentials are incomplete".into());
    }
    if parse_expiration(&doc.expiration).is_none() {
        return Err("the entry's expiration is not an RFC 3339 UTC time".into());
    }
    Ok(doc)
}

/// The entry reader, opened for the fuzz target `cache_entry` (fuzz/, `make fuzz`) and nothing
/// else: the reader stays private so that callers go through [`Cache::load`].
#[doc(hidden)]
pub fn parse_entry_for_fuzzing(
    text: &str,
    key: &CacheKey,
) -> Result<CredentialProcessDocument, String> {
    parse_entry(text, key)
}

/// Epoch seconds of an RFC 3339 time in UTC (`...Z`), as `credential_process` requires.
pub fn parse_expiration(text: &str) -> Option<i64> {
    if !text.ends_with('Z') {
        return None;
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMIK7MDENGbPxRfiCYzzSECRETKEY1";
    const TOKEN: &str = "FwoGZXIvYXdzEXAMPLESESSIONTOKENzzz";

    fn params() -> ExchangeParams {
        ExchangeParams {
            duration_seconds: Some(3600),
            ..ExchangeParams::new("arn:aws:iam::123456789012:role/ci", "aws-ci")
        }
    }

    fn key() -> CacheKey {
        CacheKey {
            params: params(),
            identity: "email:ci@p.iam.gserviceaccount.com".into(),
            region: "us-east-1".into(),
            token_source: "metadata metadata.google.internal".into(),
            sts_endpoint: None,
        }
    }

    /// A key that differs from [`key`] in one exchange parameter.
    fn key_with(change: impl FnOnce(&mut ExchangeParams)) -> CacheKey {
        let mut params = params();
        change(&mut params);
        CacheKey { params, ..key() }
    }

    fn creds(expiration_epoch: i64) -> CredentialProcessDocument {
        let expiration = time::OffsetDateTime::from_unix_timestamp(expiration_epoch)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        CredentialProcessDocument::new(
            "ASIAEXAMPLE",
            Secret::new(SECRET),
            Secret::new(TOKEN),
            &expiration,
        )
    }

    fn cache() -> (tempfile::TempDir, Cache) {
        let tmp = tempfile::tempdir().unwrap();
        let cache = Cache::open(tmp.path().join("a/b/gcpfed")).unwrap();
        (tmp, cache)
    }

    #[test]
    fn every_part_of_the_key_changes_the_file_name() {
        let base = key();
        let variants: Vec<CacheKey> = vec![
            key_with(|p| p.role_arn = "arn:aws:iam::123456789012:role/other".into()),
            key_with(|p| p.audience = "aws-cd".into()),
            key_with(|p| p.service_account = "deployer@p.iam.gserviceaccount.com".into()),
            key_with(|p| p.session_name = Some("ci".into())),
            key_with(|p| p.duration_seconds = Some(900)),
            key_with(|p| p.policy = Some("{}".into())),
            key_with(|p| p.policy_arns = vec!["arn:aws:iam::aws:policy/ReadOnlyAccess".into()]),
            CacheKey {
                identity: "email:deployer@p.iam.gserviceaccount.com".into(),
                ..base.clone()
            },
            CacheKey {
                identity: "sub:111111111111111111111 azp:111111111111111111111".into(),
                ..base.clone()
            },
            CacheKey {
                region: "eu-west-1".into(),
                ..base.clone()
            },
            CacheKey {
                token_source: "file /run/token".into(),
                ..base.clone()
            },
            CacheKey {
                sts_endpoint: Some("http://127.0.0.1:1".into()),
                ..base.clone()
            },
        ];
        let digest = base.digest();
        assert_eq!(digest.len(), 64);
        assert!(digest.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(digest, key().digest(), "the digest is stable");
        let mut seen = std::collections::BTreeSet::from([digest]);
        for v in variants {
            assert!(seen.insert(v.digest()), "{v:?} collides");
        }
    }

    #[test]
    fn the_digest_is_sha256_of_the_canonical_text() {
        // Pinned so that a change of canonical form (which orphans every entry) is deliberate.
        let k = key();
        assert_eq!(
            k.canonical(),
            "gcpfed-credential-cache/2\n\
             {\"role_arn\":\"arn:aws:iam::123456789012:role/ci\",\"audience\":\"aws-ci\",\
             \"service_account\":\"default\",\"session_name\":null,\"duration_seconds\":3600,\
             \"policy\":null,\"policy_arns\":[],\
             \"identity\":\"email:ci@p.iam.gserviceaccount.com\",\"region\":\"us-east-1\",\
             \"token_source\":\"metadata metadata.google.internal\",\"sts_endpoint\":null}"
        );
        assert_eq!(k.digest(), sha256_hex(k.canonical().as_bytes()));
        // sha256("abc") from FIPS 180-2, to pin the hash itself.
        let abc = Sha256::digest(b"abc");
        assert_eq!(
            abc.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn store_then_load_round_trips_with_private_modes() {
        let (_tmp, cache) = cache();
        let now = now_epoch();
        assert_eq!(cache.load(&key(), now), Lookup::Missing);
        let c = creds(now + 3600);
        cache.store(&key(), &c).unwrap();
        assert_eq!(cache.load(&key(), now), Lookup::Fresh(c.clone()));
        let meta = fs::metadata(cache.entry_path(&key())).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        let dir = fs::metadata(cache.dir()).unwrap();
        assert_eq!(dir.mode() & 0o777, 0o700);
        // No temporary file is left behind.
        let names: Vec<String> = fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![format!("{}.json", key().digest())]);
        let json: serde_json::Value = serde_json::from_str(c.to_json().expose()).unwrap();
        assert_eq!(json["Version"], serde_json::json!(1));
        assert!(json["Expiration"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn the_margin_is_the_sdks_window_or_half_a_short_session() {
        assert_eq!(refresh_margin(3600), 900);
        assert_eq!(refresh_margin(43200), 900);
        assert_eq!(refresh_margin(1800), 900);
        assert_eq!(refresh_margin(1799), 899);
        assert_eq!(refresh_margin(900), 450);
        assert_eq!(refresh_margin(0), 0);
        assert_eq!(refresh_margin(-5), 0);
        // Every session from the shortest STS issues is reused for a while after it is issued.
        for lifetime in [900, 1000, 1799, 1800, 3600, 43200] {
            assert!(refresh_margin(lifetime) < lifetime, "{lifetime}");
        }
    }

    #[test]
    fn entries_within_the_margin_of_expiry_are_stale() {
        let (_tmp, cache) = cache();
        let now = now_epoch();
        cache.store(&key(), &creds(now + 901)).unwrap();
        assert!(matches!(cache.load(&key(), now), Lookup::Fresh(_)));
        cache.store(&key(), &creds(now + 900)).unwrap();
        assert!(matches!(cache.load(&key(), now), Lookup::Stale { .. }));
        cache.store(&key(), &creds(now + 600)).unwrap();
        assert!(matches!(cache.load(&key(), now), Lookup::Stale { .. }));
        cache.store(&key(), &creds(now - 10)).unwrap();
        assert!(matches!(cache.load(&key(), now), Lookup::Stale { .. }));
        // A 900 s session: fresh until 450 s remain.
        let short = key_with(|p| p.duration_seconds = Some(900));
        cache.store(&short, &creds(now + 900)).unwrap();
        assert!(matches!(cache.load(&short, now), Lookup::Fresh(_)));
        cache.store(&short, &creds(now + 450)).unwrap();
        assert!(matches!(cache.load(&short, now), Lookup::Stale { .. }));
    }

    #[test]
    fn a_symlinked_directory_is_refused_and_a_symlinked_parent_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        fs::create_dir(&real).unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = Cache::open(&link).unwrap_err();
        assert!(matches!(err, CacheError::Symlink { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("symbolic link") && text.contains("--cache-dir"),
            "{text}"
        );
        let cache = Cache::open(link.join("gcpfed")).unwrap();
        cache.store(&key(), &creds(now_epoch() + 3600)).unwrap();
        assert!(real
            .join("gcpfed")
            .join(format!("{}.json", key().digest()))
            .exists());
    }

    #[test]
    fn a_parent_writable_by_others_is_refused_unless_sticky() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = Cache::open(open.join("a/gcpfed")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(open.to_str().unwrap())
                && text.contains("writable")
                && text.contains("--cache-dir")
                && text.contains("chmod"),
            "{text}"
        );
        assert!(!open.join("a").exists(), "created under an unsafe parent");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        Cache::open(open.join("a/gcpfed")).unwrap();

        let (me, group) = (effective_uid(), effective_gid());
        assert_eq!(writable_by_others(0o755, me, group), None);
        assert_eq!(writable_by_others(0o775, me, group), None);
        assert_eq!(writable_by_others(0o1777, 0, 0), None);
        assert!(writable_by_others(0o777, me, group).is_some());
        assert!(writable_by_others(0o775, me, group.wrapping_add(1)).is_some());
        if me != 0 {
            assert_eq!(writable_by_others(0o755, 0, 0), None);
        }
        assert!(writable_by_others(0o700, me.wrapping_add(1).max(1), group)
            .is_some_and(|r| r.contains("owner")));
    }

    #[test]
    fn corrupt_foreign_and_wrong_key_entries_are_ignored_without_quoting_them() {
        let (_tmp, cache) = cache();
        let now = now_epoch();
        let path = cache.entry_path(&key());
        let write = |text: &str| {
            let _ = fs::remove_file(&path);
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        };
        let good = entry_text(&key(), &creds(now + 3600));
        let other_key = key_with(|p| p.audience = "else".into());
        let cases = vec![
            format!("{{garbage {SECRET}"),
            good.expose()[..good.expose().len() / 2].to_owned(),
            good.expose().replace(FORMAT, "someone-else/1"),
            entry_text(&other_key, &creds(now + 3600)).into_inner(),
            good.expose().replace("\"Version\":1", "\"Version\":\"1\""),
            good.expose().replace("Z\"", "+00:00\""),
            format!(
                r#"{{"Version":1,"AccessKeyId":"A","SecretAccessKey":"{SECRET}","SessionToken":"T","Expiration":"2099-01-01T00:00:00Z"}}"#
            ),
        ];
        for text in cases {
            write(&text);
            match cache.load(&key(), now) {
                Lookup::Ignored(reason) => {
                    assert!(
                        !reason.contains(SECRET) && !reason.contains(TOKEN),
                        "{reason}"
                    )
                }
                other => panic!("{text:?} gave {other:?}"),
            }
            // And the next store replaces it.
            cache.store(&key(), &creds(now + 3600)).unwrap();
            assert!(matches!(cache.load(&key(), now), Lookup::Fresh(_)));
        }
    }

    #[test]
    fn entries_readable_by_others_or_symlinked_are_ignored() {
        let (tmp, cache) = cache();
        let now = now_epoch();
        cache.store(&key(), &creds(now + 3600)).unwrap();
        let path = cache.entry_path(&key());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(cache.load(&key(), now), Lookup::Ignored(r) if r.contains("644")));
        fs::remove_file(&path).unwrap();

        let elsewhere = tmp.path().join("planted.json");
        fs::write(&elsewhere, entry_text(&key(), &creds(now + 3600)).expose()).unwrap();
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(matches!(cache.load(&key(), now), Lookup::Ignored(r) if r.contains("symbolic")));
        // A store replaces the link itself, not its target.
        cache.store(&key(), &creds(now + 3600)).unwrap();
        assert!(matches!(cache.load(&key(), now), Lookup::Fresh(_)));
        assert!(!fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn an_existing_directory_is_made_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("open");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        Cache::open(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);

        let file = tmp.path().join("file");
        fs::write(&file, "x").unwrap();
        assert!(matches!(
            Cache::open(&file),
            Err(CacheError::NotADirectory { .. })
        ));
    }

    #[test]
    fn the_lock_is_exclusive_and_released_on_drop() {
        let (_tmp, cache) = cache();
        let first = cache.lock(&key(), Duration::from_secs(1)).unwrap();
        assert!(first.is_some());
        // flock locks belong to the open file description: a second open conflicts even in
        // the same process.
        let second = cache.lock(&key(), Duration::from_millis(50)).unwrap();
        assert!(second.is_none(), "the lock was not exclusive");
        let other = key_with(|p| p.audience = "other".into());
        assert!(cache
            .lock(&other, Duration::from_millis(50))
            .unwrap()
            .is_some());
        drop(first);
        assert!(cache
            .lock(&key(), Duration::from_millis(50))
            .unwrap()
            .is_some());
        let meta = fs::metadata(cache.lock_path(&key())).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
    }

    #[test]
    fn default_dir_follows_xdg_then_home() {
        assert_eq!(
            default_dir(Some("/x/cache"), Some("/home/u")),
            Some(PathBuf::from("/x/cache/gcpfed"))
        );
        assert_eq!(
            default_dir(Some("relative"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/gcpfed")),
            "a relative XDG_CACHE_HOME is ignored, as the XDG spec says"
        );
        assert_eq!(
            default_dir(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.cache/gcpfed"))
        );
        assert_eq!(default_dir(None, None), None);
    }

    #[test]
    fn expiration_must_be_utc_with_z() {
        assert_eq!(parse_expiration("1970-01-01T00:01:40Z"), Some(100));
        assert_eq!(parse_expiration("1970-01-01T00:01:40+00:00"), None);
        assert_eq!(parse_expiration("tomorrow"), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let text = format!("{:?}", creds(1));
        assert!(!text.contains(SECRET) && !text.contains(TOKEN), "{text}");
    }
}
