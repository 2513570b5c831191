//! Distribution (issue 14): the provider installed the ways published providers are, under
//! Terraform 1.15.5 and OpenTofu 1.6.2, from empty directories, with no dev_overrides:
//!
//! * `make release` writes the Registry's layout, signed; two runs of the same commit give the
//!   same zip bytes and SHA256SUMS (one with a throwaway key, one with GPG_PRIVATE_KEY through
//!   the CI workflow's two targets `release-zips` + `release-sign`);
//! * a private registry (tests/registry/registry_server.py, HTTPS on 127.0.0.1 with a test CA
//!   in SSL_CERT_FILE) serves it: `init` verifies the signature and locks the SHA256SUMS hash,
//!   and the role lifecycle runs on the provider installed that way;
//! * a zip altered by one byte, and a SHA256SUMS signed by another key, each fail `init`;
//! * `make mirror` served as a network mirror, and `make install` (HOME in a temporary
//!   directory), each `init` and `apply` the quickstart on the test bed (OpenTofu 1.6 has no
//!   ephemeral resources: it applies the quickstart's twin, examples/scenarios/data-source-legacy).
//!
//! The release is built once per test binary (a release build takes minutes) and shared.

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use support::bed::{TestBed, ACCOUNT_ID, REGION};
use support::tf::{for_engines, Engine, Run, Workdir, ENGINES};

const VERSION: &str = "0.1.0";
const ZIP: &str = "terraform-provider-gcpfed_0.1.0_linux_amd64.zip";
const SUMS: &str = "terraform-provider-gcpfed_0.1.0_SHA256SUMS";
const MANIFEST: &str = "terraform-provider-gcpfed_0.1.0_manifest.json";
const ENTRY: &str = "terraform-provider-gcpfed_v0.1.0";

/// What the shared release run produced.
struct Release {
    /// `make release` with no key: a throwaway one.
    throwaway: PathBuf,
    throwaway_log: String,
    /// `make release-zips` then `make release-sign` with GPG_PRIVATE_KEY.
    signed: PathBuf,
    /// Fingerprint of GPG_PRIVATE_KEY's key.
    release_key: String,
    /// `make mirror` from `signed`.
    mirror: PathBuf,
    /// Tampered copies of `signed`.
    tampered_zip: PathBuf,
    foreign_signature: PathBuf,
    /// HOME of the make runs: no ~/.gnupg may appear in it.
    home: PathBuf,
}

fn work_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("distribution")
}

/// `make TARGET VARS...` in the repository, with `env`; returns (success, stdout, stderr).
fn make(target: &str, vars: &[(&str, &str)], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(support::repo_root())
        .arg("--no-print-directory");
    cmd.arg(target);
    for (k, v) in vars {
        cmd.arg(format!("{k}={v}"));
    }
    // A nested make must not join the outer make's jobserver (make test); the key variables are
    // the test's decision only.
    for var in [
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
        "GPG_PRIVATE_KEY",
        "GPG_FINGERPRINT",
    ] {
        cmd.env_remove(var);
    }
    // Runs that get a temporary HOME still build with this user's toolchain and crate cache.
    let real_home = std::env::var("HOME").unwrap_or_default();
    for (var, default) in [("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
        if std::env::var_os(var).is_none() {
            cmd.env(var, format!("{real_home}/{default}"));
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run make {target}: {e}"));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    (out.status.success(), stdout, stderr)
}

#[track_caller]
fn make_ok(target: &str, vars: &[(&str, &str)], env: &[(&str, &str)]) -> (String, String) {
    let (ok, stdout, stderr) = make(target, vars, env);
    assert!(
        ok,
        "make {target} {vars:?} failed\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    (stdout, stderr)
}

/// gpg in `home`; panics with its output on failure.
fn gpg(home: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("gpg")
        .arg("--homedir")
        .arg(home)
        .args([
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gpg is installed (apt-get install gnupg)");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or_default())
        .expect("gpg stdin");
    drop(input);
    let out = child.wait_with_output().expect("gpg output");
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A new GNUPGHOME with one RSA signing key; returns its fingerprint.
fn new_key(home: &Path, uid: &str) -> String {
    std::fs::create_dir_all(home).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    gpg(
        home,
        &["--quick-generate-key", uid, "rsa2048", "sign", "1d"],
        None,
    );
    fingerprint(home, "--list-secret-keys")
}

/// The first fingerprint of `listing` (`--list-secret-keys` or `--list-keys`) in `home`.
fn fingerprint(home: &Path, listing: &str) -> String {
    let listing = String::from_utf8(gpg(home, &["--with-colons", listing], None)).unwrap();
    listing
        .lines()
        .find_map(|l| {
            l.strip_prefix("fpr:")
                .map(|r| r.trim_matches(':').to_string())
        })
        .expect("a fingerprint")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

fn stop_agent(home: &Path) {
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(home)
        .args(["--kill", "gpg-agent"])
        .status();
}

fn release() -> &'static Release {
    static RELEASE: OnceLock<Release> = OnceLock::new();
    RELEASE.get_or_init(|| {
        let root = work_root();
        let _ = std::fs::remove_dir_all(&root);
        let home = root.join("home");
        std::fs::create_dir_all(&home).unwrap();
        let keys = root.join("keys");
        let release_gnupg = keys.join("release");
        let release_key = new_key(&release_gnupg, "gcpfed test release key");
        let armored_secret = String::from_utf8(gpg(
            &release_gnupg,
            &["--armor", "--export-secret-keys", &release_key],
            None,
        ))
        .unwrap();
        stop_agent(&release_gnupg);
        let other_gnupg = keys.join("other");
        new_key(&other_gnupg, "someone else");

        let home_s = home.display().to_string();
        let throwaway = root.join("dist-throwaway");
        let (_, throwaway_log) = make_ok(
            "release",
            &[
                ("VERSION", VERSION),
                ("DIST", &throwaway.display().to_string()),
            ],
            &[("HOME", &home_s), ("GNUPGHOME", "")],
        );
        let signed = root.join("dist-signed");
        let signed_s = signed.display().to_string();
        let vars = [("VERSION", VERSION), ("DIST", signed_s.as_str())];
        // The same build packaged again (a second release build would cost minutes more, and
        // in a working tree being edited it would build other sources).
        make_ok(
            "release-zips",
            &[("NO_BUILD", "1"), vars[0], vars[1]],
            &[("HOME", &home_s)],
        );
        make_ok(
            "release-sign",
            &vars,
            &[("HOME", &home_s), ("GPG_PRIVATE_KEY", &armored_secret)],
        );
        let mirror = root.join("mirror");
        make_ok(
            "mirror",
            &[
                ("VERSION", VERSION),
                ("DIST", &signed_s),
                ("MIRROR", &mirror.display().to_string()),
            ],
            &[("HOME", &home_s)],
        );

        // One byte of the zip's compressed binary changed; SHA256SUMS and signature as released.
        let tampered_zip = root.join("dist-tampered-zip");
        copy_dir(&signed, &tampered_zip);
        let mut bytes = std::fs::read(tampered_zip.join(ZIP)).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(tampered_zip.join(ZIP), bytes).unwrap();

        // The same artifacts, SHA256SUMS signed by another key than signing-key.asc's.
        let foreign_signature = root.join("dist-foreign-signature");
        copy_dir(&signed, &foreign_signature);
        let sig = foreign_signature.join(format!("{SUMS}.sig"));
        std::fs::remove_file(&sig).unwrap();
        gpg(
            &other_gnupg,
            &[
                "--detach-sign",
                "--output",
                &sig.display().to_string(),
                &foreign_signature.join(SUMS).display().to_string(),
            ],
            None,
        );
        stop_agent(&other_gnupg);
        Release {
            throwaway,
            throwaway_log,
            signed,
            release_key,
            mirror,
            tampered_zip,
            foreign_signature,
            home,
        }
    })
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// SHA256SUMS as file name -> hex digest.
fn sums(dist: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(dist.join(SUMS))
        .unwrap()
        .lines()
        .map(|line| {
            let (digest, name) = line.split_once("  ").expect("two-space separated line");
            (name.to_string(), digest.to_string())
        })
        .collect()
}

#[test]
fn release_writes_the_registry_layout_reproducibly_and_signed() {
    let r = release();
    for dist in [&r.throwaway, &r.signed] {
        let mut names: Vec<String> = std::fs::read_dir(dist)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let mut expected = vec![
            ZIP.to_string(),
            MANIFEST.to_string(),
            SUMS.to_string(),
            format!("{SUMS}.sig"),
            "signing-key.asc".to_string(),
        ];
        expected.sort();
        assert_eq!(names, expected, "{}", dist.display());
        // SHA256SUMS covers exactly the zip and the manifest, with their real digests.
        let expected: BTreeMap<String, String> = [ZIP, MANIFEST]
            .iter()
            .map(|n| (n.to_string(), sha256_hex(&dist.join(n))))
            .collect();
        assert_eq!(sums(dist), expected);
        assert_eq!(
            std::fs::read_to_string(dist.join(MANIFEST)).unwrap(),
            std::fs::read_to_string(support::repo_root().join("terraform-registry-manifest.json"))
                .unwrap()
        );
    }

    // Reproducible: the same commit, built twice (the second through the CI workflow's targets,
    // with another key), gives the same bytes.
    assert_eq!(
        std::fs::read(r.throwaway.join(SUMS)).unwrap(),
        std::fs::read(r.signed.join(SUMS)).unwrap(),
        "two make release runs of the same commit gave different SHA256SUMS"
    );

    // The throwaway key is said out loud, lived in a temporary GNUPGHOME that is gone, and the
    // caller's keyring (HOME/.gnupg) was never created.
    assert!(
        r.throwaway_log.contains("THROWAWAY key"),
        "{}",
        r.throwaway_log
    );
    let gnupg_tmp = r
        .throwaway_log
        .lines()
        .find_map(|l| l.split("temporary GNUPGHOME ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the log names the temporary GNUPGHOME: {}", r.throwaway_log));
    assert!(
        !Path::new(gnupg_tmp).exists(),
        "{gnupg_tmp} was left behind"
    );
    assert!(
        !r.home.join(".gnupg").exists(),
        "make release touched ~/.gnupg"
    );

    // The signature verifies with the published key, which is GPG_PRIVATE_KEY's.
    let verify_home = work_root().join("verify-gnupg");
    let _ = std::fs::remove_dir_all(&verify_home);
    std::fs::create_dir_all(&verify_home).unwrap();
    let asc = r.signed.join("signing-key.asc");
    gpg(
        &verify_home,
        &["--import", &asc.display().to_string()],
        None,
    );
    assert_eq!(fingerprint(&verify_home, "--list-keys"), r.release_key);
    let sums_path = r.signed.join(SUMS).display().to_string();
    gpg(
        &verify_home,
        &["--verify", &format!("{sums_path}.sig"), &sums_path],
        None,
    );
    stop_agent(&verify_home);

    // The zip holds one executable entry, the binary, whose --version names the version and
    // the commit.
    let python = support::python();
    let listing = Command::new(&python)
        .args([
            "-c",
            "import sys, zipfile\nfor i in zipfile.ZipFile(sys.argv[1]).infolist(): print(i.filename, oct(i.external_attr >> 16), i.date_time)",
        ])
        .arg(r.signed.join(ZIP))
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 1, "{listing}");
    assert!(
        lines[0].starts_with(&format!("{ENTRY} 0o100755 ")),
        "{listing}"
    );
    let installed = install_into(&work_root().join("version-home"));
    let version = Command::new(&installed).arg("--version").output().unwrap();
    let commit = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(support::repo_root())
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!(
            "terraform-provider-gcpfed {VERSION} (commit {})",
            String::from_utf8_lossy(&commit.stdout).trim()
        )
    );

    // --remap-path-prefix: neither the checkout's path nor cargo's home is in the binary.
    let binary = std::fs::read(&installed).unwrap();
    let checkout = support::repo_root().display().to_string();
    let cargo_home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").unwrap_or_default()));
    for path in [checkout, cargo_home] {
        assert!(
            !binary.windows(path.len()).any(|w| w == path.as_bytes()),
            "the release binary contains the build path {path}"
        );
    }
}

#[test]
fn release_refuses_a_version_other_than_cargo_tomls() {
    let (ok, _, stderr) = make(
        "release-zips",
        &[
            ("VERSION", "9.9.9"),
            ("DIST", &work_root().join("never").display().to_string()),
        ],
        &[],
    );
    assert!(!ok);
    assert!(
        stderr.contains("VERSION=9.9.9 but Cargo.toml says 0.1.0")
            && stderr.contains("set version = \"9.9.9\" in Cargo.toml"),
        "{stderr}"
    );
}

/// `make install` with HOME=`home`; returns the binary path it printed (checked to exist).
fn install_into(home: &Path) -> PathBuf {
    std::fs::create_dir_all(home).unwrap();
    let (stdout, _) = make_ok(
        "install",
        &[
            ("VERSION", VERSION),
            ("DIST", &release().signed.display().to_string()),
        ],
        &[("HOME", &home.display().to_string())],
    );
    let expected = home.join(format!(
        ".terraform.d/plugins/registry.terraform.io/gcpfed/gcpfed/{VERSION}/linux_amd64/{ENTRY}"
    ));
    assert!(
        stdout.contains(&format!(
            "credential_process = {} credential-process",
            expected.display()
        )),
        "{stdout}"
    );
    assert!(expected.is_file(), "{stdout}");
    expected
}

/// The registry/mirror server of tests/registry; stops when dropped (its stdin closes).
struct Registry {
    url: String,
    ca: PathBuf,
    child: Child,
    stdin: Option<ChildStdin>,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start(sites: &[(&str, &Path)], mirror: Option<&Path>) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(support::python());
        cmd.arg(support::repo_root().join("tests/registry/registry_server.py"))
            .arg("--cert-dir")
            .arg(dir.path());
        for (name, path) in sites {
            cmd.arg("--site").arg(format!("{name}={}", path.display()));
        }
        if let Some(mirror) = mirror {
            cmd.arg("--mirror").arg(mirror);
        }
        let mut child = cmd
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/registry/registry_server.py (run `make tools`)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: serde_json::Value = serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("registry server ready line {line:?}: {e}"));
        Registry {
            url: ready["url"].as_str().unwrap().to_string(),
            ca: PathBuf::from(ready["ca"].as_str().unwrap()),
            stdin: child.stdin.take(),
            child,
            _dir: dir,
        }
    }

    /// A CLI config whose registry hosts (both engines') serve `site` from this server.
    fn cli_config_for_site(&self, site: &str) -> String {
        ["registry.terraform.io", "registry.opentofu.org"]
            .iter()
            .map(|host| {
                format!(
                    "host \"{host}\" {{\n  services = {{\n    \"providers.v1\" = \"{}/{site}/v1/providers/\"\n  }}\n}}\n",
                    self.url
                )
            })
            .collect()
    }

    /// GET `path` as JSON, trusting only the server's test CA (as the engines do).
    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let ca = std::fs::read(&self.ca).unwrap();
        reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{}{path}", self.url))
            .send()
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("registry server {path}: {e}"))
    }

    /// The paths requested so far.
    fn requests(&self) -> Vec<String> {
        self.get_json("/_requests")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// A working directory for `engine` whose CLI config is `cli_config` (no dev_overrides) and
/// that trusts the registry's test CA.
fn workdir(
    engine: Engine,
    main_tf: &str,
    cli_config: &str,
    ca: Option<&Path>,
    env: &[(String, String)],
) -> Workdir {
    let mut wd = Workdir::new(engine, main_tf, env);
    wd.write_file("gcpfed-cli.tfrc", cli_config);
    if let Some(ca) = ca {
        wd.set_env("SSL_CERT_FILE", &ca.display().to_string());
    }
    wd
}

fn init(wd: &Workdir) -> Run {
    wd.run(&["init", "-input=false", "-no-color"])
}

/// `required_providers` with our provider pinned to the release's version.
fn pinned_required_providers() -> String {
    format!(
        "terraform {{\n  required_providers {{\n    gcpfed = {{\n      source  = \"gcpfed/gcpfed\"\n      version = \"{VERSION}\"\n    }}\n  }}\n}}\n"
    )
}

fn role_config(bed: &TestBed, name: &str) -> String {
    format!(
        r#"{required}
{provider}
resource "gcpfed_role" "r" {{
  name                       = "{name}"
  audience                   = "sts.amazonaws.com/{name}"
  service_account_unique_ids = ["104857600000000000001"]
}}
"#,
        required = pinned_required_providers(),
        provider = bed.provider_hcl()
    )
}

#[test]
fn private_registry_install_is_verified_locked_and_runs_the_role_lifecycle() {
    let r = release();
    let registry = Registry::start(&[("good", &r.signed)], None);
    let zip_digest = sums(&r.signed)[ZIP].clone();
    let key_id = &r.release_key[r.release_key.len() - 16..];
    assert_eq!(
        registry.get_json::<serde_json::Value>("/.well-known/terraform.json"),
        serde_json::json!({"providers.v1": "/good/v1/providers/"})
    );
    let bed = TestBed::start();
    for_engines(&ENGINES, |engine| {
        bed.reset();
        let wd = workdir(
            engine,
            &role_config(&bed, "gcpfed-dist"),
            &registry.cli_config_for_site("good"),
            Some(&registry.ca),
            &[],
        );
        let run = init(&wd);
        run.ok();
        // Both engines print the signing key's ID when the signature verified.
        run.assert_contains(&[&format!("Installed gcpfed/gcpfed v{VERSION}"), key_id]);
        let lock = std::fs::read_to_string(wd.path().join(".terraform.lock.hcl")).unwrap();
        assert!(
            lock.contains(&format!("\"zh:{zip_digest}\"")),
            "[{engine}] the lock file lacks zh:{zip_digest} from SHA256SUMS:\n{lock}"
        );
        wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
            .ok();
        let arn = wd.resource_values("gcpfed_role.r").expect("role in state")["arn"].clone();
        assert_eq!(arn, format!("arn:aws:iam::{ACCOUNT_ID}:role/gcpfed-dist"));
        assert_eq!(
            wd.plan_exitcode(),
            0,
            "[{engine}] the second plan is not empty"
        );
        wd.run(&["destroy", "-auto-approve", "-input=false", "-no-color"])
            .ok();
        assert!(wd.resource_values("gcpfed_role.r").is_none());
    });
    let requests = registry.requests();
    assert!(
        requests.iter().any(|p| p.ends_with(&format!("{SUMS}.sig"))),
        "the engines never fetched the signature: {requests:?}"
    );
}

#[test]
fn a_tampered_zip_or_a_foreign_signature_fails_init() {
    let r = release();
    // Our own tools refuse them too: a mirror or an install never republishes a tampered release.
    let scratch = work_root().join("refused");
    for (dist, target, phrase) in [
        (&r.tampered_zip, "mirror", "does not match"),
        (&r.foreign_signature, "mirror", "is not a valid signature"),
        (&r.tampered_zip, "install", "does not match"),
    ] {
        let dist_s = dist.display().to_string();
        let mirror_s = scratch.join("mirror").display().to_string();
        let home_s = scratch.join("home").display().to_string();
        let (ok, _, stderr) = make(
            target,
            &[
                ("VERSION", VERSION),
                ("DIST", &dist_s),
                ("MIRROR", &mirror_s),
            ],
            &[("HOME", &home_s)],
        );
        assert!(
            !ok && stderr.contains(phrase),
            "make {target} DIST={dist_s}: {stderr}"
        );
        assert!(!scratch.join("mirror/registry.terraform.io").exists());
        assert!(!scratch.join("home/.terraform.d").exists());
    }
    let registry = Registry::start(
        &[
            ("tampered", &r.tampered_zip),
            ("foreign", &r.foreign_signature),
        ],
        None,
    );
    let main_tf = pinned_required_providers();
    let zip_digest = sums(&r.signed)[ZIP].clone();
    let expected_zh = format!("(expected zh:{zip_digest})");
    // Each site fails with the engine's own check, named in the assertion.
    let attacks: [(&str, &[&str]); 2] = [
        // The zip's hash is not SHA256SUMS's (signed) line.
        (
            "tampered",
            &[
                "Failed to install provider",
                "archive has incorrect checksum",
                &expected_zh,
            ],
        ),
        // SHA256SUMS.sig was not made by signing-key.asc's key.
        (
            "foreign",
            &[
                "Failed to install provider",
                "authentication signature from unknown issuer",
            ],
        ),
    ];
    for_engines(&ENGINES, |engine| {
        for (site, failure) in attacks {
            let cli = registry.cli_config_for_site(site);
            let wd = workdir(engine, &main_tf, &cli, Some(&registry.ca), &[]);
            let run = init(&wd);
            run.fails();
            run.assert_contains(failure);
            let installed = wd
                .path()
                .join(".terraform/providers")
                .join(engine.provider_address())
                .join(VERSION);
            assert!(
                !installed.exists(),
                "[{engine}] {site}: {} exists",
                installed.display()
            );
        }
    });
}

/// The quickstart under engines with ephemeral resources; its data-source twin under the others.
fn quickstart_for(engine: Engine) -> String {
    let rel = if engine.has_ephemeral_resources() {
        "examples/quickstart/main.tf"
    } else {
        "examples/scenarios/data-source-legacy/main.tf"
    };
    std::fs::read_to_string(support::repo_root().join(rel)).unwrap()
}

fn quickstart_env(bed: &TestBed) -> Vec<(String, String)> {
    [
        ("TF_VAR_aws_endpoint", bed.aws_endpoint.as_str()),
        ("TF_VAR_metadata_host", bed.metadata_host.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn apply_and_destroy_quickstart(wd: &Workdir) {
    let engine = wd.engine();
    wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .ok();
    let state = wd.show_json();
    let arns: Vec<String> = state["values"]["root_module"]["resources"]
        .as_array()
        .expect("resources in state")
        .iter()
        .filter(|r| r["mode"] == "managed")
        .filter_map(|r| r["values"]["arn"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        arns.len(),
        2,
        "[{engine}] both roles of the quickstart exist: {arns:?}"
    );
    wd.run(&["destroy", "-auto-approve", "-input=false", "-no-color"])
        .ok();
}

#[test]
fn network_mirror_serves_the_quickstart() {
    let r = release();
    let registry = Registry::start(&[], Some(&r.mirror));
    let cli = format!(
        "provider_installation {{\n  network_mirror {{\n    url = \"{}/mirror/\"\n  }}\n}}\n",
        registry.url
    );
    let bed = TestBed::start();
    for_engines(&ENGINES, |engine| {
        bed.reset();
        let wd = workdir(
            engine,
            &quickstart_for(engine),
            &cli,
            Some(&registry.ca),
            &quickstart_env(&bed),
        );
        init(&wd)
            .ok()
            .assert_contains(&[&format!("Installed gcpfed/gcpfed v{VERSION}")]);
        apply_and_destroy_quickstart(&wd);
    });
    let requests = registry.requests();
    assert!(
        requests
            .iter()
            .any(|p| p.ends_with(&format!("/{VERSION}.json")))
            && requests.iter().any(|p| p.ends_with(ZIP)),
        "the engines did not use the mirror: {requests:?}"
    );
}

#[test]
fn make_install_serves_the_quickstart_offline() {
    let bed = TestBed::start();
    for_engines(&ENGINES, |engine| {
        bed.reset();
        // An empty CLI config: the engines' implied local directories, nothing else.
        let wd = workdir(
            engine,
            &quickstart_for(engine),
            "",
            None,
            &quickstart_env(&bed),
        );
        install_into(&wd.path().join("home"));
        init(&wd)
            .ok()
            .assert_contains(&[&format!("Installed gcpfed/gcpfed v{VERSION}")]);
        apply_and_destroy_quickstart(&wd);
    });
}
