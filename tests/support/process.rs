//! Running a child process to completion with a time limit, both streams captured: the one
//! home of the wait-or-kill logic that the engine driver (`tf`), the command-line tests and the
//! bed's shutdown share. Waiting is `wait-timeout`'s; nothing here polls.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

/// How a process run by [`run_with_timeout`] ended.
#[derive(Debug)]
pub struct Finished {
    /// The exit status; a process killed at the time limit has the status of its kill.
    pub status: ExitStatus,
    /// Whether the time limit was reached (the process and its group were then killed).
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    /// For reports only: tests never assert on it.
    pub elapsed: Duration,
}

/// Runs `command` with stdin closed and both streams captured; after `timeout` kills it (and
/// its process group, when the command was given its own) and reports `timed_out`. Panics,
/// naming `what`, when the process cannot be started or waited for.
pub fn run_with_timeout(command: &mut Command, timeout: Duration, what: &str) -> Finished {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);
    let (status, timed_out) = wait_or_kill(&mut child, timeout, what);
    let text = |h: Option<JoinHandle<String>>| h.map(|h| h.join().unwrap_or_default());
    Finished {
        status,
        timed_out,
        stdout: text(stdout).unwrap_or_default(),
        stderr: text(stderr).unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

/// Waits for `child` at most `timeout`; then kills it (with its process group, if it leads
/// one) and reaps it. Returns the status and whether the time limit was reached.
pub fn wait_or_kill(child: &mut Child, timeout: Duration, what: &str) -> (ExitStatus, bool) {
    match child.wait_timeout(timeout) {
        Ok(Some(status)) => (status, false),
        Ok(None) => {
            kill_group(child.id());
            let _ = child.kill();
            let status = child
                .wait()
                .unwrap_or_else(|e| panic!("waiting for {what} after killing it: {e}"));
            (status, true)
        }
        Err(e) => panic!("waiting for {what}: {e}"),
    }
}

/// Reads a whole stream on its own thread, so that neither pipe can fill up and block the child.
fn reader<R: Read + Send + 'static>(mut stream: R) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Kills the process group led by `pid` (an engine and the provider it started); does nothing
/// when `pid` leads none.
fn kill_group(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
