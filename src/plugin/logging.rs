//! The provider's own trace log: with `PLUGIN_LOG_FILE` set (the variable tf-provider's
//! servers read, kept for the users and tests that rely on it), every `tracing` event of the
//! provider and of the AWS SDK, at TRACE level, goes to that file.
//!
//! The file is created readable by its owner only: a trace log is a debugging aid, and it
//! should not become readable by every user of a shared runner.

use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;

use anyhow::{Context, Result};

/// Starts the trace log when `path` is given.
pub fn init(path: Option<&str>) -> Result<()> {
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("opening PLUGIN_LOG_FILE {path}"))?;
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .try_init()
        .map_err(|err| anyhow::anyhow!("starting the trace log: {err}"))
}
