//! Owns the on-disk credential cache of the `credential-process` command: one file per key
//! under a private directory, so that the AWS CLI (which runs its `credential_process` for
//! every command) costs one STS call per session instead of one per command.
//!
//! Layout: `<dir>/<sha256 of the key>.json` holds the credentials and the whole key, and
//! `<dir>/<sha256 of the key>.lock` is the lock file that makes concurrent invocations share one
//! exchange. The directory is 0700 and owned by the user; entries are 0600, written to a
//! temporary file and renamed into place, so a reader never sees half a file.
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

/// Entries are reused until this many seconds before they expire (the contract's 5 minutes;
/// the AWS SDKs themselves refresh 5 to 15 minutes early).
pub const REFRESH_MARGIN_SECS: i64 = 300;

/// Written into every entry; an entry with any other value is foreign and ignored.
pub const FORMAT: &str = "gcpfed-credential-cache/1";

/// Name of the cache's directory under `$XDG_CACHE_HOME` (or `~/.cache`).
pub const DIR_NAME: &str = "gcpfed";

/// Entries are a few kilobytes; anything bigger is not ours.
const MAX_ENTRY_BYTES: u64 = 64 * 1024;

/// Everything that makes two sets of credentials interchangeable: the exchange's parameters,
/// where its token comes from, and the STS endpoint. Serialised (the parameters flat, then the
/// fields below, in this order) it is the canonical key text whose SHA-256 names the entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    /// The exchange's parameters, its policy ARNs sorted and deduplicated (their order does
    /// not count).
    #[serde(flatten)]
    pub params: ExchangeParams,
    /// Where the ID token comes from (`metadata <host>` or `file <path>`): another metadata
    /// server or token file may stand for another Google identity.
    pub token_source: String,
    /// The explicit STS endpoint, if any: an emulator's credentials are not AWS's.
    pub sts_endpoint: Option<String>,
}

impl CacheKey {
    /// The canonical text of the key (compact JSON, fields in declaration order).
    pub fn canonical(&self) -> String {
        serde_json::to_string(self).expect("a CacheKey always serialises")
    }

    /// Lower-case hex SHA-256 of [`CacheKey::canonical`]: the entry's file stem.
    pub fn digest(&self) -> String {
        let hash = Sha256::digest(self.canonical().as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in hash.iter() {
            hex.push_str(&format!("{byte:02x}"));
        }
        hex
    }
}

/// Whether `document` may still be handed out at `now` (epoch seconds): more than the refresh
/// margin before its expiration. A document whose expiration does not parse never is.
pub fn is_fresh(document: &CredentialProcessDocument, now: i64) -> bool {
    parse_expiration(&document.expiration).is_some_and(|at| at - now > REFRESH_MARGIN_SECS)
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
    /// 0700; one that belongs to another user is refused.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Cache, CacheError> {
        let dir = dir.into();
        match fs::symlink_metadata(&dir) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                    fs::create_dir_all(parent).map_err(|source| CacheError::CreateDir {
                        path: parent.to_owned(),
                        source,
                    })?;
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
        // Follows a symlink on purpose: a user may point ~/.cache at another disk.
        let meta = fs::metadata(&dir).map_err(|source| CacheError::CreateDir {
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
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).map_err(|source| {
                CacheError::Chmod {
                    path: dir.clone(),
                    source,
                }
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
            Ok(document) if is_fresh(&document, now) => Lookup::Fresh(document),
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
            r#"{"role_arn":"arn:aws:iam::123456789012:role/ci","audience":"aws-ci","service_account":"default","session_name":null,"duration_seconds":3600,"policy":null,"policy_arns":[],"token_source":"metadata metadata.google.internal","sts_endpoint":null}"#
        );
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
    fn entries_within_five_minutes_of_expiry_are_stale() {
        let (_tmp, cache) = cache();
        let now = now_epoch();
        cache.store(&key(), &creds(now + 301)).unwrap();
        assert!(matches!(cache.load(&key(), now), Lookup::Fresh(_)));
        cache.store(&key(), &creds(now + 300)).unwrap();
        assert!(matches!(cache.load(&key(), now), Lookup::Stale { .. }));
        cache.store(&key(), &creds(now - 10)).unwrap();
        assert!(matches!(cache.load(&key(), now), Lookup::Stale { .. }));
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
