"""Rows 7 of `make bench` (bench/bench.py): auditing 1,000 roles (issue 17).

The bed's moto is filled with 1,000 roles written out of band (970 safe, 10 each critical, high
and medium), then:

  7a. `terraform-provider-gcpfed audit --format json` over all of them: wall time, the IAM calls
      the gate counted (ten ListRoles pages of 100, no GetRole), the process's peak RSS (VmHWM
      polled from /proc); baseline: `aws iam list-roles` from the venv, which reads the same ten
      pages and grades nothing;
  7b. `terraform plan` of `data "gcpfed_google_trusts" "all" {}`: wall time, IAM calls, the
      provider's peak RSS (bench.py's ProviderSampler); baseline: the same plan with no data
      source (Terraform's and the provider's start-up alone).

Every run's output is checked (the counts by severity, written here by hand), so a broken build
fails the bench instead of timing an error path.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

ROLES = 1000
OPEN, HIGH, MEDIUM = 10, 10, 10
# What the audit must find, by hand from the corpus below.
EXPECTED_COUNTS = {"critical": OPEN, "high": HIGH, "medium": MEDIUM, "info": ROLES - OPEN - HIGH - MEDIUM}
PAGES = (ROLES + 99) // 100
AUDIENCE = "gcpfed-bench-audit"
SA = "104857600000000000001"


def _trust(condition: dict | None) -> str:
    statement = {"Effect": "Allow", "Principal": {"Federated": "accounts.google.com"},
                 "Action": "sts:AssumeRoleWithWebIdentity"}
    if condition is not None:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _corpus():
    safe = {"StringEquals": {"accounts.google.com:aud": SA, "accounts.google.com:oaud": AUDIENCE,
                             "accounts.google.com:sub": SA}}
    high = {"StringEquals": {"accounts.google.com:aud": SA, "accounts.google.com:sub": SA}}
    medium = {"StringEquals": {"accounts.google.com:oaud": AUDIENCE, "accounts.google.com:sub": SA}}
    for i in range(ROLES):
        if i < OPEN:
            yield f"audit-open-{i:04}", _trust(None)
        elif i < OPEN + HIGH:
            yield f"audit-high-{i:04}", _trust(high)
        elif i < OPEN + HIGH + MEDIUM:
            yield f"audit-medium-{i:04}", _trust(medium)
        else:
            yield f"audit-safe-{i:04}", _trust(safe)


class _PeakRss:
    """VmHWM of one process, polled every 5 ms until it exits (the mark only grows)."""

    def __init__(self) -> None:
        self.peak = 0
        self.polls = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._loop, args=(pid,), daemon=True)
        self._thread.start()

    def _loop(self, pid: int) -> None:
        while not self._stop.is_set():
            try:
                with open(f"/proc/{pid}/status") as handle:
                    for line in handle:
                        if line.startswith("VmHWM:"):
                            self.peak = max(self.peak, int(line.split()[1]) * 1024)
                            self.polls += 1
                            break
            except OSError:
                return
            self._stop.wait(0.005)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


def _check_counts(stdout: bytes, what: str, h) -> None:
    try:
        counts = json.loads(stdout)["counts"]
    except (ValueError, KeyError) as err:
        raise h.BenchError(f"{what}: not the audit's JSON ({err})")
    if counts != EXPECTED_COUNTS:
        raise h.BenchError(f"{what}: counts {counts}, expected {EXPECTED_COUNTS}")


def _only_list_roles(calls: list[dict], what: str, h) -> None:
    iam = h.iam_calls(calls)
    actions = h.per_action(iam)
    if actions != {"ListRoles": PAGES}:
        raise h.BenchError(f"{what}: expected exactly {PAGES} ListRoles and nothing else, the bed saw {actions}")


def run_rows(bench, bed, tf, work: Path, h) -> None:
    runs = bench.args.runs
    h.log(f"7: auditing {ROLES} roles, {runs} runs of each")
    bed.reset()
    iam = bed.iam()
    for name, trust in _corpus():
        iam.create_role(RoleName=name, Path="/bench-audit/", AssumeRolePolicyDocument=trust)

    env = h.clean_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION=h.REGION,
                      AWS_DEFAULT_REGION=h.REGION,
                      AWS_ENDPOINT_URL_IAM=bed.aws, AWS_CONFIG_FILE=os.devnull,
                      AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    ours_argv = [bench.binary, "audit", "--format", "json"]
    aws_argv = [bench.aws_cli, "iam", "list-roles", "--endpoint-url", bed.aws, "--output", "json"]

    # 7a, checked once with the calls counted, then timed interleaved with the AWS CLI.
    bed.clear_calls()
    _check_counts(h.must(h.run(ours_argv, env=env), "audit", codes=(1,)).stdout, "audit", h)
    _only_list_roles(bed.calls(), "audit", h)
    h.must(h.run(aws_argv, env=env), "aws iam list-roles")
    ours, theirs, peaks = [], [], []
    for _ in range(runs):
        sampler = _PeakRss()
        r = h.run(ours_argv, env=env, on_start=sampler.start)
        sampler.stop()
        _check_counts(h.must(r, "audit", codes=(1,)).stdout, "audit", h)
        ours.append(r.wall)
        if sampler.polls:
            peaks.append(sampler.peak)
        theirs.append(h.must(h.run(aws_argv, env=env), "aws iam list-roles").wall)
    if not peaks:
        raise h.BenchError("the RSS sampler never saw the audit process")
    s_ours, s_theirs = h.summary(ours), h.summary(theirs)
    bench.rows.append({
        "n": "7a", "what": f"`audit` of {ROLES} roles ({PAGES} ListRoles, 0 GetRole; peak RSS "
                           f"{h.fmt_mb(max(peaks))})",
        "ours": h.fmt_span(s_ours), "baseline": "`aws iam list-roles` (same pages, no grading)",
        "base": h.fmt_span(s_theirs), "ratio": f"{s_theirs['median'] / s_ours['median']:.1f}× faster",
        "goal": f"{PAGES} calls", "met": "met", "runs": f"{runs}+{runs}"})

    # 7b: the data source under Terraform.
    data_dir, bare_dir = work / "audit-data", work / "audit-bare"
    data_dir.mkdir()
    bare_dir.mkdir()
    (data_dir / "main.tf").write_text(h.provider_block(bed) + '\ndata "gcpfed_google_trusts" "all" {}\n'
                                      'output "counts" { value = data.gcpfed_google_trusts.all.counts }\n')
    (bare_dir / "main.tf").write_text(h.provider_block(bed))
    bed.clear_calls()
    h.must(tf(data_dir, "plan", "-input=false", "-no-color"), "terraform plan (audit data source)")
    _only_list_roles(bed.calls(), "terraform plan of the data source", h)
    h.must(tf(bare_dir, "plan", "-input=false", "-no-color"), "terraform plan (no data source)")
    plans, bare, provider_peaks = [], [], []
    for _ in range(runs):
        sampler = h.ProviderSampler(bench.binary)
        r = tf(data_dir, "plan", "-input=false", "-no-color", on_start=sampler.start)
        sampler.stop()
        h.must(r, "terraform plan (audit data source)")
        if b"critical" not in r.stdout:
            raise h.BenchError("terraform plan of the data source shows no counts")
        plans.append(r.wall)
        if sampler.peaks:
            provider_peaks.append(max(sampler.peaks.values()))
        bare.append(h.must(tf(bare_dir, "plan", "-input=false", "-no-color"), "terraform plan (bare)").wall)
    if not provider_peaks:
        raise h.BenchError("the RSS sampler never saw a provider process")
    s_plan, s_bare = h.summary(plans), h.summary(bare)
    bench.rows.append({
        "n": "7b", "what": f"`terraform plan` of `gcpfed_google_trusts`, {ROLES} roles ({PAGES} ListRoles; "
                           f"provider peak RSS {h.fmt_mb(max(provider_peaks))})",
        "ours": h.fmt_span(s_plan), "baseline": "the same plan without the data source",
        "base": h.fmt_span(s_bare), "ratio": f"+{(s_plan['median'] - s_bare['median']) * 1000:.0f} ms",
        "goal": f"{PAGES} calls", "met": "met", "runs": f"{runs}+{runs}"})
    bench.raw["audit"] = {"cli": ours, "aws_cli": theirs, "cli_peak_rss": peaks, "plan": plans,
                          "bare_plan": bare, "provider_peak_rss": provider_peaks}
