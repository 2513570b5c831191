//! `credential-process` is an AWS `credential_process` helper: it prints the Version 1 JSON
//! document on stdout and nothing else, errors on stderr with a non-zero exit. The start-up path
//! of a cache hit is kept lean (it runs before every AWS CLI command): argument parsing, one
//! small file read, no async runtime, no AWS configuration, no HTTP client. Only a miss builds
//! the runtime, the metadata client and an STS client without credentials (the call is unsigned,
//! so no profile or credential chain is ever read and `AWS_PROFILE` naming the very profile that
//! runs us cannot recurse).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{CliError, BINARY};

use crate::cache::{self, Cache, CacheKey, Lookup};
use crate::clients::metadata::{self, MetadataClient};
use crate::clients::settings::{self, Environment, ProcessEnvironment, Service};
use crate::exchange::{
    self, ExchangeError, ExchangeParams, ExchangeRequest, Exchanger, TokenSource,
};
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::validate;

/// The sub-command's name.
pub const CREDENTIAL_PROCESS: &str = "credential-process";
/// Region used when neither `--region` nor the environment names one (no profile is read).
pub const DEFAULT_REGION: &str = settings::FALLBACK_REGION;
/// Session duration when `--duration-seconds` is not given (as the data source).
pub const DEFAULT_DURATION: i32 = validate::SESSION_DURATION_DEFAULT as i32;
/// How long an invocation waits for another one's exchange of the same key before it goes
/// ahead with its own: the exchange's own deadline, by which the holder's exchange has ended
/// (unless the holder is stopped or wedged). Worst case for the waiter: the look-up of an
/// alias's account (normally milliseconds), this wait, then its own exchange, each bounded by
/// [`exchange::DEADLINE`]: three times it, twice when the identity needs no look-up.
pub const LOCK_WAIT: Duration = exchange::DEADLINE;

#[derive(Debug, Clone, Args)]
pub struct CredentialProcessArgs {
    /// ARN of the IAM role to assume (its trust policy names accounts.google.com).
    #[arg(long, value_name = "ARN")]
    pub role_arn: String,

    /// Audience to request from the metadata server; must equal the role's
    /// accounts.google.com:oaud (gcpfed_role's `audience`).
    #[arg(long, value_name = "AUD")]
    pub audience: String,

    /// Metadata alias (`default`) or email of the service account.
    #[arg(long, value_name = "SA", default_value = "default")]
    pub service_account: String,

    /// Role session name; default: the token's `sub` (the service account's unique ID).
    #[arg(long, value_name = "NAME")]
    pub session_name: Option<String>,

    /// Session duration in seconds, 900 to 43200 (at most the role's maximum).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_DURATION,
          value_parser = clap::value_parser!(i32)
              .range(validate::SESSION_DURATION_MIN..=validate::SESSION_DURATION_MAX))]
    pub duration_seconds: i32,

    /// AWS region whose STS endpoint is called [env: AWS_REGION, AWS_DEFAULT_REGION; default:
    /// us-east-1].
    #[arg(long, value_name = "R")]
    pub region: Option<String>,

    /// STS endpoint URL (VPC endpoint, FIPS, emulator) [env: AWS_ENDPOINT_URL_STS,
    /// AWS_ENDPOINT_URL].
    #[arg(long, value_name = "URL")]
    pub sts_endpoint: Option<String>,

    /// host[:port] of the GCE metadata server [env: GCE_METADATA_HOST; default:
    /// metadata.google.internal].
    #[arg(long, value_name = "HOST")]
    pub metadata_host: Option<String>,

    /// Read the Google ID token from this file instead of asking the metadata server.
    #[arg(long, value_name = "F", conflicts_with = "impersonate_service_account")]
    pub web_identity_token_file: Option<PathBuf>,

    /// Email or unique ID of a service account to impersonate: its ID token is minted by the
    /// IAM Credentials API, authorised by --service-account's access token (which needs
    /// roles/iam.serviceAccountTokenCreator on it).
    #[arg(long, value_name = "SA")]
    pub impersonate_service_account: Option<String>,

    /// Delegation chain to --impersonate-service-account (repeatable, in order: the runner can
    /// impersonate the first, each the next, the last one the impersonated account).
    #[arg(
        long = "delegate",
        value_name = "SA",
        requires = "impersonate_service_account"
    )]
    pub delegates: Vec<String>,

    /// Base URL of the IAM Credentials API [env: GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT;
    /// default: https://iamcredentials.googleapis.com/v1/].
    #[arg(long, value_name = "URL")]
    pub iam_credentials_endpoint: Option<String>,

    /// Session policy (JSON) that further limits the session.
    #[arg(long, value_name = "JSON")]
    pub policy: Option<String>,

    /// Managed session policy ARN (repeatable, at most 10).
    #[arg(long = "policy-arn", value_name = "ARN")]
    pub policy_arns: Vec<String>,

    /// Retry budget for throttling and transient faults of STS and the metadata server.
    #[arg(long, value_name = "N", default_value_t = settings::DEFAULT_MAX_RETRIES,
          value_parser = clap::value_parser!(u32).range(0..=settings::MAX_RETRIES_MAX))]
    pub max_retries: u32,

    /// Cache directory [default: $XDG_CACHE_HOME/gcpfed, else ~/.cache/gcpfed].
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,

    /// Neither read nor write the cache: one STS call per invocation.
    #[arg(long)]
    pub no_cache: bool,
}

/// The `~/.aws/config` snippet and notes that `credential-process --help` ends with.
pub fn config_snippet(binary: &str) -> String {
    format!(
        "Use it as the credential_process of a profile in ~/.aws/config:

  [profile gcp-ci]
  credential_process = {binary} credential-process --role-arn arn:aws:iam::123456789012:role/gcpfed-ci --audience aws-ci
  region = us-east-1

then `aws sts get-caller-identity --profile gcp-ci`, or `AWS_PROFILE=gcp-ci terraform apply`.

The STS call is unsigned: no AWS credential, profile or credential file is read, so AWS_PROFILE may
name the very profile that runs this command. Errors go to stderr with a non-zero exit and never
contain the token or a secret."
    )
}

/// The binary's own path for the snippet, quoted for the AWS CLI's shell-like splitting when
/// it holds anything but plain path characters.
pub(super) fn binary_for_snippet() -> String {
    let path = std::env::current_exe()
        .ok()
        .and_then(|p| p.to_str().map(str::to_owned))
        .unwrap_or_else(|| BINARY.to_owned());
    if path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+@".contains(c))
    {
        path
    } else {
        format!("\"{}\"", path.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// Runs the sub-command as the AWS CLI calls it: the document on stdout, errors on stderr.
pub(super) fn run(args: &CredentialProcessArgs) -> ExitCode {
    let result = credential_process(args, &ProcessEnvironment, &mut |line| {
        let _ = writeln!(
            std::io::stderr().lock(),
            "{BINARY} {CREDENTIAL_PROCESS}: {line}"
        );
    });
    match result {
        Ok(json) => {
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{}", json.expose()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("{BINARY} {CREDENTIAL_PROCESS}: cannot write to stdout: {err}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(err) => {
            eprintln!("{BINARY} {CREDENTIAL_PROCESS}: {}\n\n{err}", err.summary());
            ExitCode::FAILURE
        }
    }
}

/// `credential-process`'s arguments with their environment fallbacks applied and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// What to ask STS for; the policy ARNs sorted and deduplicated.
    pub params: ExchangeParams,
    pub region: String,
    pub sts_endpoint: Option<String>,
    pub metadata_host: String,
    /// Base URL of the IAM Credentials API (used when impersonating).
    pub iam_credentials_endpoint: String,
    pub token_file: Option<PathBuf>,
    pub max_retries: u32,
    /// `None` with `--no-cache`, or when no directory can be found (no HOME).
    pub cache_dir: Option<PathBuf>,
}

impl Resolved {
    /// The cache entry these arguments share with every invocation that would get
    /// interchangeable credentials: the same arguments, region and token source, and the same
    /// Google `identity` (see [`token_identity`] and [`metadata_identity`]).
    pub fn cache_key(&self, identity: String) -> CacheKey {
        let token_source = match &self.token_file {
            // The same file named from another directory is the same identity; a path that
            // cannot be made absolute (no current directory) is keyed as given.
            Some(path) => {
                let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                format!("file {}", path.display())
            }
            // An impersonated token comes through the API too: another endpoint may stand for
            // another identity.
            None if self.params.impersonate_service_account.is_some() => format!(
                "metadata {} iamcredentials {}",
                self.metadata_host, self.iam_credentials_endpoint
            ),
            None => format!("metadata {}", self.metadata_host),
        };
        CacheKey {
            params: self.params.clone(),
            identity,
            region: self.region.clone(),
            token_source,
            sts_endpoint: self.sts_endpoint.clone(),
        }
    }
}

/// Applies the environment fallbacks (as the provider does) and checks every argument that
/// can be checked without I/O; each message names the flag and the fix.
pub fn resolve(args: &CredentialProcessArgs, env: &dyn Environment) -> Result<Resolved, CliError> {
    let invalid = |text: String| Err(CliError::Invalid(text));
    if let Err(e) = validate::role_arn(&args.role_arn) {
        return invalid(format!("--role-arn: {}", e.detail));
    }
    // These rules name the flag themselves.
    let sa = &args.service_account;
    let named = [
        validate::requested_audience("--audience", &args.audience),
        validate::service_account("--service-account", sa),
        args.session_name.as_deref().map_or(Ok(()), |name| {
            validate::session_name("--session-name", name)
        }),
    ];
    if let Some(Err(e)) = named.into_iter().find(Result::is_err) {
        return invalid(e.detail);
    }
    if let Some(policy) = &args.policy {
        if let Err(e) = validate::policy_document(policy) {
            return invalid(format!("--policy: {}", e.detail));
        }
    }
    if let Err(e) = validate::policy_arn_count("--policy-arn", args.policy_arns.len()) {
        return invalid(e.detail);
    }
    for arn in &args.policy_arns {
        if let Err(e) = validate::policy_arn(arn) {
            return invalid(format!("--policy-arn: {}", e.detail));
        }
    }
    let region =
        settings::region(args.region.as_deref(), env).unwrap_or_else(|| DEFAULT_REGION.to_owned());
    if !validate::is_region_name(&region) {
        return invalid(format!(
            "the region {region:?} (--region, AWS_REGION or AWS_DEFAULT_REGION) is not an AWS \
             region name such as \"us-east-1\"."
        ));
    }
    let sts_endpoint = settings::endpoint(Service::Sts, args.sts_endpoint.as_deref(), env);
    if let Some(url) = &sts_endpoint {
        if let Err(reason) = validate::endpoint_url(url) {
            return invalid(format!(
                "the STS endpoint (--sts-endpoint, AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL) must \
                 be an absolute http:// or https:// URL; {reason}."
            ));
        }
    }
    let metadata_host = settings::metadata_host(args.metadata_host.as_deref(), env);
    let iam_credentials_endpoint =
        settings::iam_credentials_endpoint(args.iam_credentials_endpoint.as_deref(), env);
    let target = args.impersonate_service_account.as_deref();
    if let Some(target) = target {
        if let Err(e) = validate::impersonated_account("--impersonate-service-account", target) {
            return invalid(e.detail);
        }
        if let Err(reason) = validate::endpoint_url(&iam_credentials_endpoint) {
            return invalid(format!(
                "the IAM Credentials endpoint (--iam-credentials-endpoint or \
                 GOOGLE_IAM_CREDENTIALS_CUSTOM_ENDPOINT) must be an absolute http:// or https:// \
                 URL; {reason}."
            ));
        }
    }
    let delegates = match validate::delegates(
        "--delegate",
        &args.delegates,
        target,
        "--impersonate-service-account",
    ) {
        Ok(chain) => chain,
        Err(e) => return invalid(e.detail),
    };
    let mut policy_arns = args.policy_arns.clone();
    policy_arns.sort();
    policy_arns.dedup();
    let cache_dir = if args.no_cache {
        None
    } else {
        args.cache_dir.clone().or_else(|| {
            cache::default_dir(
                env.var("XDG_CACHE_HOME").as_deref(),
                env.var("HOME").as_deref(),
            )
        })
    };
    Ok(Resolved {
        params: ExchangeParams {
            role_arn: args.role_arn.clone(),
            audience: args.audience.clone(),
            service_account: sa.clone(),
            session_name: args.session_name.clone(),
            duration_seconds: Some(args.duration_seconds),
            policy: args.policy.clone(),
            policy_arns,
            impersonate_service_account: args.impersonate_service_account.clone(),
            delegates,
        },
        region,
        sts_endpoint,
        metadata_host,
        iam_credentials_endpoint,
        token_file: args.web_identity_token_file.clone(),
        max_retries: args.max_retries,
        cache_dir,
    })
}

/// The cache key's identity for a token read from a file: its current `sub` and `azp`,
/// decoded without verification (STS verifies; a forged token gets no session to share). A
/// token whose claims cannot be read is keyed by its SHA-256, so it never shares an entry.
pub fn token_identity(token: &Secret) -> String {
    match crate::claims::decode_unverified(token.expose()) {
        Ok(claims) if claims.sub.is_some() || claims.azp.is_some() => format!(
            "sub:{} azp:{}",
            claims.sub.unwrap_or_default(),
            claims.azp.unwrap_or_default()
        ),
        _ => format!(
            "token-sha256:{}",
            cache::sha256_hex(token.expose().as_bytes())
        ),
    }
}

/// The cache key's identity with the metadata server: the email of the account, as given or,
/// for an alias such as `default`, as the server resolves it now (an alias may point at another
/// account on another runner sharing the cache, or after the runner's account changed).
pub fn metadata_identity(
    resolved: &Resolved,
    runtime: &tokio::runtime::Runtime,
) -> Result<String, CliError> {
    let sa = &resolved.params.service_account;
    if sa.contains('@') {
        return Ok(format!("email:{sa}"));
    }
    let backoff = RetryPolicy::new(resolved.max_retries);
    // Within the exchange's deadline, like the token request it stands before: a metadata
    // server that keeps failing cannot stretch a run past it, whatever --max-retries says.
    let email = runtime.block_on(async {
        let client =
            MetadataClient::new(&resolved.metadata_host, metadata::DEFAULT_TIMEOUT, backoff)?;
        tokio::time::timeout(exchange::DEADLINE, client.service_account_email(sa))
            .await
            .map_err(|_| ExchangeError::DeadlineExceeded {
                deadline: exchange::DEADLINE,
                during: "asking the metadata server for the service account's email",
            })?
            .map_err(ExchangeError::from)
    });
    Ok(format!("email:{}", email?))
}

/// Runs `credential-process`: the cached document when it is fresh, else one exchange (shared
/// with concurrent invocations of the same key through the key's lock). `warn` receives
/// one-line notes about a cache that cannot be used (the command then works without it).
pub fn credential_process(
    args: &CredentialProcessArgs,
    env: &dyn Environment,
    warn: &mut dyn FnMut(&str),
) -> Result<Secret, CliError> {
    let resolved = resolve(args, env)?;
    // The token file is read on every run: its token's identity is part of the cache key.
    let token = match &resolved.token_file {
        Some(path) => Some(read_token_file(path)?),
        None => None,
    };
    let cache = match &resolved.cache_dir {
        None if args.no_cache => None,
        None => {
            warn("no cache: neither XDG_CACHE_HOME nor HOME is set (pass --cache-dir)");
            None
        }
        Some(dir) => match Cache::open(dir.clone()) {
            Ok(cache) => Some(cache),
            Err(e) => {
                warn(&format!("no cache: {e}"));
                None
            }
        },
    };
    let mut runtime = None;
    let Some(cache) = cache else {
        return Ok(exchange_once(&resolved, token, runtime_in(&mut runtime)?)?.to_json());
    };
    let identity = match &token {
        Some(token) => token_identity(token),
        None => metadata_identity(&resolved, runtime_in(&mut runtime)?)?,
    };
    let key = resolved.cache_key(identity);

    if let Lookup::Fresh(document) = cache.load(&key, cache::now_epoch()) {
        return Ok(document.to_json());
    }
    // Held until this function returns, i.e. until the new entry is in place.
    let _lock = match cache.lock(&key, LOCK_WAIT) {
        Ok(Some(guard)) => Some(guard),
        Ok(None) => {
            warn(&format!(
                "another invocation has held the cache lock {} for {} s, the exchange's \
                 deadline, without finishing (stopped or wedged?); exchanging without it",
                cache.lock_path(&key).display(),
                LOCK_WAIT.as_secs()
            ));
            None
        }
        Err(e) => {
            warn(&format!("cannot lock the cache entry: {e}"));
            None
        }
    };
    // Whoever held the lock before us may have just written a fresh entry.
    if let Lookup::Fresh(document) = cache.load(&key, cache::now_epoch()) {
        return Ok(document.to_json());
    }
    let document = exchange_once(&resolved, token, runtime_in(&mut runtime)?)?;
    if let Err(e) = cache.store(&key, &document) {
        warn(&format!("the credentials were not cached: {e}"));
    }
    Ok(document.to_json())
}

/// The trimmed, non-empty token of `path`.
fn read_token_file(path: &std::path::Path) -> Result<Secret, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::TokenFile {
        path: path.to_owned(),
        source,
    })?;
    let text = text.trim();
    if text.is_empty() {
        return Err(CliError::EmptyTokenFile(path.to_owned()));
    }
    Ok(Secret::new(text))
}

/// The one runtime of this run, built when first needed (a cache hit from a token file needs
/// none).
fn runtime_in(
    slot: &mut Option<tokio::runtime::Runtime>,
) -> Result<&tokio::runtime::Runtime, CliError> {
    if slot.is_none() {
        // Both rustls back ends are linked in (aws-lc through the AWS SDK, ring through
        // reqwest); name one before any TLS client is built, as plugin mode does.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?;
        *slot = Some(runtime);
    }
    Ok(slot.as_ref().expect("just built"))
}

/// One metadata → STS exchange, on this run's runtime.
fn exchange_once(
    resolved: &Resolved,
    token: Option<Secret>,
    runtime: &tokio::runtime::Runtime,
) -> Result<exchange::CredentialProcessDocument, CliError> {
    let credentials = runtime.block_on(async {
        let backoff = RetryPolicy::new(resolved.max_retries);
        let token = match token {
            Some(token) => TokenSource::Given(token),
            None => TokenSource::google(
                MetadataClient::new(&resolved.metadata_host, metadata::DEFAULT_TIMEOUT, backoff)
                    .map_err(ExchangeError::from)?,
                &resolved.iam_credentials_endpoint,
                backoff,
                &resolved.params,
            )?,
        };
        let sts =
            exchange::unsigned_sts_client(None, &resolved.region, resolved.sts_endpoint.as_deref());
        let request = ExchangeRequest {
            params: resolved.params.clone(),
            token,
        };
        Exchanger::new(sts, None, backoff).exchange(request).await
    })?;
    Ok(credentials.credential_process())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::exchange::CredentialProcessDocument;
    use clap::{CommandFactory, Parser};
    use std::collections::HashMap;

    fn parse(extra: &[&str]) -> Result<CredentialProcessArgs, clap::Error> {
        let mut argv = vec![
            BINARY,
            CREDENTIAL_PROCESS,
            "--role-arn",
            "arn:aws:iam::123456789012:role/ci",
            "--audience",
            "aws-ci",
        ];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv)?;
        match cli.command {
            Some(Command::CredentialProcess(args)) => Ok(args),
            _ => panic!("not credential-process"),
        }
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        settings::test_environment(pairs)
    }

    #[test]
    fn flags_win_over_the_environment_and_fallbacks_apply_in_order() {
        let e = env(&[
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://all.example"),
            ("GCE_METADATA_HOST", "10.0.0.1:80"),
            ("HOME", "/home/u"),
        ]);
        let r = resolve(&parse(&[]).unwrap(), &e).unwrap();
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(r.sts_endpoint.as_deref(), Some("http://all.example"));
        assert_eq!(r.metadata_host, "10.0.0.1:80");
        assert_eq!(r.cache_dir, Some(PathBuf::from("/home/u/.cache/gcpfed")));
        assert_eq!(r.params.duration_seconds, Some(DEFAULT_DURATION));
        assert_eq!(r.params.service_account, "default");

        let e2 = env(&[
            ("AWS_REGION", "ap-south-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ENDPOINT_URL", "http://all.example"),
            ("AWS_ENDPOINT_URL_STS", "http://sts.example"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/home/u"),
        ]);
        let r = resolve(&parse(&[]).unwrap(), &e2).unwrap();
        assert_eq!(r.region, "ap-south-1");
        assert_eq!(r.sts_endpoint.as_deref(), Some("http://sts.example"));
        assert_eq!(r.metadata_host, "metadata.google.internal");
        assert_eq!(r.cache_dir, Some(PathBuf::from("/x/gcpfed")));

        let args = parse(&[
            "--region",
            "us-west-2",
            "--sts-endpoint",
            "http://127.0.0.1:9",
            "--metadata-host",
            "127.0.0.1:8",
            "--cache-dir",
            "/c",
        ])
        .unwrap();
        let r = resolve(&args, &e2).unwrap();
        assert_eq!(r.region, "us-west-2");
        assert_eq!(r.sts_endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(r.metadata_host, "127.0.0.1:8");
        assert_eq!(r.cache_dir, Some(PathBuf::from("/c")));

        let r = resolve(&parse(&["--no-cache"]).unwrap(), &e2).unwrap();
        assert_eq!(r.cache_dir, None);
        let r = resolve(&parse(&[]).unwrap(), &HashMap::new()).unwrap();
        assert_eq!(r.region, DEFAULT_REGION);
        assert_eq!(r.sts_endpoint, None);
    }

    #[test]
    fn bad_arguments_name_the_flag() {
        assert!(parse(&["--duration-seconds", "899"]).is_err());
        assert!(parse(&["--duration-seconds", "43201"]).is_err());
        assert!(parse(&["--cache-dir", "/c", "--no-cache"]).is_err());
        let none = HashMap::new();
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec!["--session-name", "has space"], "--session-name"),
            (vec!["--service-account", "a/b@c"], "--service-account"),
            (vec!["--service-account", "ci-runner"], "--service-account"),
            (vec!["--policy", "{not json"], "--policy"),
            (vec!["--policy-arn", "arn:aws:s3:::bucket"], "--policy-arn"),
            (vec!["--region", "Not A Region"], "--region"),
            (vec!["--sts-endpoint", "sts.example.com"], "--sts-endpoint"),
        ];
        for (extra, flag) in cases {
            let err = resolve(&parse(&extra).unwrap(), &none).unwrap_err();
            assert!(err.to_string().contains(flag), "{extra:?}: {err}");
            assert_eq!(err.summary(), "Invalid argument");
        }
        let mut argv = vec![
            BINARY,
            CREDENTIAL_PROCESS,
            "--role-arn",
            "arn:aws:sts::123456789012:assumed-role/ci/x",
            "--audience",
            "aws-ci",
        ];
        let args = match Cli::try_parse_from(&argv).unwrap().command {
            Some(Command::CredentialProcess(a)) => a,
            _ => unreachable!(),
        };
        let err = resolve(&args, &none).unwrap_err().to_string();
        assert!(
            err.contains("--role-arn") && err.contains("not a role ARN"),
            "{err}"
        );
        argv[3] = "arn:aws:iam::123456789012:role/ci";
        argv[5] = " ";
        let args = match Cli::try_parse_from(&argv).unwrap().command {
            Some(Command::CredentialProcess(a)) => a,
            _ => unreachable!(),
        };
        assert!(resolve(&args, &none)
            .unwrap_err()
            .to_string()
            .contains("--audience"));
    }

    #[test]
    fn an_audience_with_surrounding_whitespace_is_refused_like_the_roles() {
        for (audience, says) in [
            (" aws-ci", "starts or ends with whitespace"),
            ("aws-ci\n", "starts or ends with whitespace"),
            ("", "is empty"),
        ] {
            let argv = [
                BINARY,
                CREDENTIAL_PROCESS,
                "--role-arn",
                "arn:aws:iam::123456789012:role/ci",
                "--audience",
                audience,
            ];
            let args = match Cli::try_parse_from(argv).unwrap().command {
                Some(Command::CredentialProcess(a)) => a,
                _ => unreachable!(),
            };
            let err = resolve(&args, &HashMap::new()).unwrap_err();
            assert_eq!(err.summary(), "Invalid argument");
            let text = err.to_string();
            assert!(
                text.contains("--audience") && text.contains(says),
                "{audience:?}: {text}"
            );
            assert!(text.contains("gcpfed_role.x.audience"), "{text}");
        }
    }

    #[test]
    fn the_cache_key_holds_every_part_of_the_contract() {
        let e = env(&[("HOME", "/h")]);
        let id = || "email:ci@p.iam.gserviceaccount.com".to_owned();
        let base = resolve(&parse(&[]).unwrap(), &e).unwrap().cache_key(id());
        let others = [
            vec!["--service-account", "deployer@p.iam.gserviceaccount.com"],
            vec!["--session-name", "ci-run"],
            vec!["--duration-seconds", "900"],
            vec!["--policy", r#"{"Statement":[]}"#],
            vec!["--policy-arn", "arn:aws:iam::aws:policy/ReadOnlyAccess"],
            vec!["--metadata-host", "127.0.0.1:1"],
            vec!["--web-identity-token-file", "/run/token"],
            vec!["--sts-endpoint", "http://127.0.0.1:1"],
            vec!["--region", "eu-west-3"],
        ];
        for extra in others {
            let key = resolve(&parse(&extra).unwrap(), &e)
                .unwrap()
                .cache_key(id());
            assert_ne!(key.digest(), base.digest(), "{extra:?}");
        }
        // Impersonation: each impersonated account, each chain and each IAM Credentials
        // endpoint has its own entry; a delegate written either way is the same chain.
        let team = |extra: &[&str]| {
            let mut args = vec![
                "--impersonate-service-account",
                "team-a@p.iam.gserviceaccount.com",
            ];
            args.extend_from_slice(extra);
            resolve(&parse(&args).unwrap(), &e)
                .unwrap()
                .cache_key(id())
                .digest()
        };
        let keys = [
            base.digest(),
            team(&[]),
            resolve(
                &parse(&[
                    "--impersonate-service-account",
                    "team-b@p.iam.gserviceaccount.com",
                ])
                .unwrap(),
                &e,
            )
            .unwrap()
            .cache_key(id())
            .digest(),
            team(&["--delegate", "hop@p.iam.gserviceaccount.com"]),
            team(&["--iam-credentials-endpoint", "http://127.0.0.1:1/v1/"]),
        ];
        let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len(), "{keys:?}");
        assert_eq!(
            team(&["--delegate", "hop@p.iam.gserviceaccount.com"]),
            team(&[
                "--delegate",
                "projects/-/serviceAccounts/hop@p.iam.gserviceaccount.com"
            ])
        );
        // Another identity behind the same arguments: another entry.
        let r = resolve(&parse(&[]).unwrap(), &e).unwrap();
        assert_ne!(
            r.cache_key("email:deployer@p.iam.gserviceaccount.com".into()),
            base
        );
        // The order of --policy-arn does not matter.
        let a = [
            "--policy-arn",
            "arn:aws:iam::aws:policy/A",
            "--policy-arn",
            "arn:aws:iam::aws:policy/B",
        ];
        let b = [
            "--policy-arn",
            "arn:aws:iam::aws:policy/B",
            "--policy-arn",
            "arn:aws:iam::aws:policy/A",
        ];
        assert_eq!(
            resolve(&parse(&a).unwrap(), &e).unwrap().cache_key(id()),
            resolve(&parse(&b).unwrap(), &e).unwrap().cache_key(id())
        );
    }

    #[test]
    fn a_token_file_is_keyed_by_its_tokens_sub_and_azp() {
        use base64::Engine as _;
        let jwt = |payload: &str| {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            Secret::new(format!(
                "{}.{}.sig",
                b64.encode(r#"{"alg":"RS256"}"#),
                b64.encode(payload)
            ))
        };
        assert_eq!(
            token_identity(&jwt(r#"{"sub":"111","azp":"222","aud":"x"}"#)),
            "sub:111 azp:222"
        );
        assert_ne!(
            token_identity(&jwt(r#"{"sub":"111","azp":"222"}"#)),
            token_identity(&jwt(r#"{"sub":"333","azp":"333"}"#))
        );
        // Unreadable claims: keyed by the token's hash, never by (or quoting) the token.
        let opaque = Secret::new("not-a-jwt-opaque-token-value");
        let id = token_identity(&opaque);
        assert!(
            id.starts_with("token-sha256:") && !id.contains("opaque"),
            "{id}"
        );
        assert_ne!(id, token_identity(&Secret::new("another-opaque-token")));
    }

    #[test]
    fn a_fresh_entry_is_served_without_any_exchange() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        // A metadata host and STS endpoint where nothing listens: any exchange would fail.
        let args = parse(&[
            "--cache-dir",
            dir.to_str().unwrap(),
            "--metadata-host",
            "127.0.0.1:9",
            "--sts-endpoint",
            "http://127.0.0.1:9",
            // An email: its identity needs no metadata look-up.
            "--service-account",
            "ci@p.iam.gserviceaccount.com",
        ])
        .unwrap();
        let none = HashMap::new();
        let key = resolve(&args, &none)
            .unwrap()
            .cache_key("email:ci@p.iam.gserviceaccount.com".into());
        let exp = cache::now_epoch() + 3600;
        let expiration = time::OffsetDateTime::from_unix_timestamp(exp)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let creds = CredentialProcessDocument::new(
            "ASIACACHED",
            Secret::new("s3cr3t"),
            Secret::new("t0k3n"),
            &expiration,
        );
        Cache::open(&dir).unwrap().store(&key, &creds).unwrap();
        let mut warnings = Vec::new();
        let json = credential_process(&args, &none, &mut |w| warnings.push(w.to_owned())).unwrap();
        assert_eq!(json, creds.to_json());
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn the_help_snippet_is_a_usable_profile() {
        let text = config_snippet("/opt/bin/terraform-provider-gcpfed");
        assert!(text.contains("[profile gcp-ci]"));
        assert!(text.contains(
            "credential_process = /opt/bin/terraform-provider-gcpfed credential-process --role-arn"
        ));
        let help = Cli::command()
            .mut_subcommand(CREDENTIAL_PROCESS, |s| s.after_long_help(text.clone()))
            .find_subcommand_mut(CREDENTIAL_PROCESS)
            .unwrap()
            .render_long_help()
            .to_string();
        for flag in [
            "--role-arn",
            "--audience",
            "--service-account",
            "--session-name",
            "--duration-seconds",
            "--region",
            "--sts-endpoint",
            "--metadata-host",
            "--web-identity-token-file",
            "--max-retries",
            "--cache-dir",
            "--no-cache",
            "~/.aws/config",
        ] {
            assert!(help.contains(flag), "{flag} missing from:\n{help}");
        }
    }
}
