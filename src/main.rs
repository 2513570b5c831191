//! Entry point: serve the plugin when Terraform or OpenTofu starts us, otherwise act as a
//! command-line tool (so running the binary by hand never hangs).

use std::process::ExitCode;
use std::time::Duration;

/// Terraform sets this variable (to a fixed value) for every plugin it starts.
const PLUGIN_MAGIC_COOKIE: &str = "TF_PLUGIN_MAGIC_COOKIE";

/// The AWS SDK logs the bodies it marks sensitive (STS's secret key and session token) at trace
/// level when this variable is `true`. A user may have it set for another tool; credentials must
/// not reach a log because of it, so this process drops it.
const SDK_SENSITIVE_BODY_LOGGING: &str = "LOG_SENSITIVE_BODIES";

fn main() -> ExitCode {
    if std::env::var_os(SDK_SENSITIVE_BODY_LOGGING).is_some() {
        // Before any thread starts: the environment is still ours alone.
        std::env::remove_var(SDK_SENSITIVE_BODY_LOGGING);
        eprintln!(
            "terraform-provider-gcpfed: {SDK_SENSITIVE_BODY_LOGGING} is ignored: this binary never \
             logs credentials"
        );
    }
    // Terraform starts a plugin with no arguments. Any argument means the command line, even
    // with the cookie set: a `credential_process` helper started by a provider (ours or
    // terraform-provider-aws) inherits the cookie from it, and must print credentials
    // rather than serve a plugin nobody will connect to.
    let has_arguments = std::env::args_os().len() > 1;
    if std::env::var_os(PLUGIN_MAGIC_COOKIE).is_some() && !has_arguments {
        serve_plugin()
    } else {
        gcpfed::cli::run(std::env::args_os())
    }
}

fn serve_plugin() -> ExitCode {
    // tf-provider's Diagnostic constructors append a captured backtrace to the detail when
    // backtraces are enabled (RUST_BACKTRACE=1 is common on CI machines): hundreds of lines
    // under every error. RUST_LIB_BACKTRACE=0 turns that capture off; panics keep theirs.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    // Both rustls back ends (aws-lc via the AWS SDK, ring via reqwest) are linked in; rustls
    // needs one chosen before any TLS configuration is built.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("terraform-provider-gcpfed: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let env = gcpfed::plugin::PluginEnvironment::from_process();
    let served = runtime.block_on(gcpfed::plugin::serve(gcpfed::provider::registry(), env));
    // Do not wait for stray blocking tasks: Terraform waits for this process to exit.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // stderr only: stdout belongs to the plugin handshake. Terraform shows stderr when
            // a plugin fails to start.
            eprintln!("terraform-provider-gcpfed: {err:#}");
            ExitCode::FAILURE
        }
    }
}
