#!/usr/bin/env python3
"""The local test bed of terraform-provider-gcpfed.

Starts, all on 127.0.0.1 and free ports:
  * moto (IAM, STS, ...), AWS managed policies loaded: its own HTTP server, the bed's
    unrecorded endpoint, and the same state called in-process by the gate (bed_moto);
  * the AWS gate (bed_gate): the recorded endpoint, which hands each call to moto, checks
    AssumeRoleWithWebIdentity as real STS does, injects faults, and serves /_testbed/ control;
  * our GCE metadata emulator (bed_metadata) and the issuer's JWKS;
  * our IAM Credentials API emulator (bed_iamcredentials: generateIdToken, impersonation).

Prints exactly one JSON line on stdout once everything listens:
  {"aws_endpoint": ..., "moto_endpoint": ..., "metadata_host": ..., "jwks_url": ..., "pid": ...}
then serves until stdin reaches EOF (the parent closed it or died), SIGTERM/SIGINT, or the
process given by --parent-pid ends; then shuts down and exits 0.

  python tests/testbed/testbed.py                      # for tests: parent holds our stdin
  python tests/testbed/testbed.py --serve --ready-file F [--parent-pid PID]
      # for `make demo`: also writes the JSON line to F; a stdin that is /dev/null or a
      # terminal (a background job) is not watched, so use a signal or --parent-pid to stop it.

Logs go to stderr only (GCPFED_TESTBED_LOG=1 logs each request's method and path).
"""

from __future__ import annotations

import os
import sys

# Before moto is imported: moto reads these at import / backend creation.
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
for _var in list(os.environ):
    # The bed's own AWS clients talk to moto only: no profile, endpoint or credential of the
    # machine may leak in.
    if _var.startswith("AWS_") and _var != "AWS_CA_BUNDLE":
        del os.environ[_var]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import stat  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bed_gate  # noqa: E402
import bed_http  # noqa: E402
import bed_iamcredentials  # noqa: E402
import bed_latency  # noqa: E402
import bed_metadata  # noqa: E402
import bed_moto  # noqa: E402
import bed_state  # noqa: E402


class MotoSide:
    """The bed's own, unrecorded access to moto: role reads for the gate, warm-up, reset."""

    def __init__(self, url: str, moto: bed_moto.InProcessMoto) -> None:
        self.url = url
        self.moto = moto
        self.ready = threading.Event()

    def get_role(self, name: str) -> dict | None:
        return self.moto.get_role(name)

    def warm(self) -> None:
        """Create moto's IAM backend and its web app ahead of the first test request."""
        try:
            self.get_role("gcpfed-testbed-warm-up")
        except Exception as err:  # noqa: BLE001 - a warm-up failure must not kill the bed
            bed_http.log(f"warm-up of moto failed: {err!r}")
        finally:
            self.ready.set()

    def reset(self) -> None:
        self.ready.clear()
        try:
            request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
            with urllib.request.urlopen(request, timeout=60) as answer:
                answer.read()
        finally:
            self.warm()


def stdin_is_unwatchable() -> bool:
    """A background job's stdin: /dev/null, or a terminal it must not read from."""
    try:
        if os.isatty(0):
            return True
        info = os.fstat(0)
        return stat.S_ISCHR(info.st_mode) and info.st_rdev == os.stat(os.devnull).st_rdev
    except OSError:
        return True


def watch_stdin(stop: threading.Event) -> None:
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    stop.set()


def watch_parent(pid: int, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stop.set()
        except PermissionError:
            pass


def serve(server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return thread


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", help="run for a demo (see above)")
    parser.add_argument("--ready-file", help="also write the JSON line to this file")
    parser.add_argument("--parent-pid", type=int, help="stop when this process ends")
    args = parser.parse_args()

    started = time.monotonic()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    bed_moto.limit_iam_partitions()
    bed_moto.remember_moto_modules()

    state = bed_state.BedState()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    moto_host, moto_port = moto.get_host_and_port()
    moto_url = f"http://{moto_host}:{moto_port}"
    in_process_moto = bed_moto.InProcessMoto()
    moto_side = MotoSide(moto_url, in_process_moto)

    latency = bed_latency.Latency()  # GCPFED_BED_*LATENCY_MS, shared by the gate and the metadata server
    gate = bed_gate.Gate(state, in_process_moto, moto_side.get_role, moto_side.reset, moto_side.ready, latency)
    iam_credentials = bed_iamcredentials.IamState(state)
    metadata = bed_metadata.start(state, latency, iam_credentials)
    iam_server = bed_iamcredentials.start(iam_credentials)
    threads = [serve(gate.server), serve(metadata), serve(iam_server)]

    metadata_host = f"127.0.0.1:{metadata.server_port}"
    info = {
        "aws_endpoint": f"http://127.0.0.1:{gate.server.server_port}",
        "moto_endpoint": moto_url,
        "metadata_host": metadata_host,
        "jwks_url": f"http://{metadata_host}{bed_metadata.JWKS_PATH}",
        "iam_credentials_endpoint": f"http://127.0.0.1:{iam_server.server_port}/v1/",
        "pid": os.getpid(),
    }
    gate.info = info
    line = json.dumps(info)
    if args.ready_file:
        partial = f"{args.ready_file}.partial"
        with open(partial, "w", encoding="utf-8") as handle:
            handle.write(line + "\n")
        os.replace(partial, args.ready_file)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    if bed_http.VERBOSE:
        bed_http.log(f"ready in {time.monotonic() - started:.2f}s")

    threading.Thread(target=moto_side.warm, daemon=True).start()
    if not (args.serve and stdin_is_unwatchable()):
        threading.Thread(target=watch_stdin, args=(stop,), daemon=True).start()
    if args.parent_pid:
        threading.Thread(target=watch_parent, args=(args.parent_pid, stop), daemon=True).start()

    while not stop.wait(0.5):
        pass

    for server in (gate.server, metadata, iam_server):
        server.shutdown()
        server.server_close()
    for thread in threads:
        thread.join(timeout=2)
    # moto's server thread is a daemon and its socket closes with the process; waiting for
    # ThreadedMotoServer.stop() would only add its 0.5 s poll interval to every test.
    if args.ready_file:
        try:
            os.unlink(args.ready_file)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Daemon threads may sit in blocking reads (stdin, sockets); skip interpreter teardown.
    os._exit(code)
