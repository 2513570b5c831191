#!/usr/bin/env python3
"""`make sweep`: delete IAM roles the acceptance suite left behind.

Every name the suite creates starts with `gcpfedacc-` (then a per-run id). This script deletes
each role whose name starts with that prefix, after detaching its managed policies, deleting its
inline policies and removing it from instance profiles (what blocks DeleteRole). Other roles are
never touched.

Target, as for the acceptance suite:
  * GCPFED_ACC=aws: the AWS account of the standard credential chain (env, profile, SSO, ...);
  * otherwise --endpoint URL (or GCPFED_SWEEP_ENDPOINT): a local IAM emulator such as the test bed;
  * otherwise there is nothing to sweep: the local bed lives only as long as a test.

  python tests/sweep.py [--endpoint URL] [--prefix gcpfedacc-RUNID-] [--dry-run]
"""

from __future__ import annotations

import argparse
import os
import sys

SUITE_PREFIX = "gcpfedacc-"


def say(message: str) -> None:
    print(f"sweep: {message}", flush=True)


def iam_client(endpoint: str | None):
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 8, "mode": "standard"})
    if endpoint:
        # A local emulator: it needs some credentials, never the machine's real ones.
        session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        return session.client("iam", endpoint_url=endpoint, config=config), session
    session = boto3.session.Session()
    return session.client("iam", config=config), session


def paginate(client, operation: str, key: str, **kwargs):
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def sweep_role(iam, name: str, dry_run: bool) -> dict:
    counts = {"attachments": 0, "inline": 0, "instance_profiles": 0}
    for policy in paginate(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name):
        say(f"  detach {policy['PolicyArn']} from {name}")
        counts["attachments"] += 1
        if not dry_run:
            iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
    for policy_name in paginate(iam, "list_role_policies", "PolicyNames", RoleName=name):
        say(f"  delete inline policy {policy_name} of {name}")
        counts["inline"] += 1
        if not dry_run:
            iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
    for profile in paginate(
        iam, "list_instance_profiles_for_role", "InstanceProfiles", RoleName=name
    ):
        say(f"  remove {name} from instance profile {profile['InstanceProfileName']}")
        counts["instance_profiles"] += 1
        if not dry_run:
            iam.remove_role_from_instance_profile(
                InstanceProfileName=profile["InstanceProfileName"], RoleName=name
            )
    say(f"  delete role {name}")
    if not dry_run:
        iam.delete_role(RoleName=name)
    return counts


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", default=os.environ.get("GCPFED_SWEEP_ENDPOINT") or None)
    parser.add_argument("--prefix", default=SUITE_PREFIX)
    parser.add_argument("--dry-run", action="store_true", help="print, delete nothing")
    args = parser.parse_args(argv)

    if not args.prefix.startswith(SUITE_PREFIX):
        say(f"refusing prefix {args.prefix!r}: it must start with {SUITE_PREFIX!r}")
        return 2

    opted_in = os.environ.get("GCPFED_ACC", "") == "aws"
    if opted_in and args.endpoint:
        say("GCPFED_ACC=aws and --endpoint both given; choose one")
        return 2
    if not opted_in and not args.endpoint:
        say(
            "nothing to sweep: GCPFED_ACC is not `aws` (the local test bed is gone after each "
            "test); give --endpoint URL (make sweep ENDPOINT=URL) to sweep a running emulator"
        )
        return 0

    from botocore.exceptions import BotoCoreError, ClientError

    iam, session = iam_client(args.endpoint)
    if args.endpoint:
        say(f"target: IAM emulator at {args.endpoint}")
    else:
        try:
            identity = session.client("sts").get_caller_identity()
        except (BotoCoreError, ClientError) as err:
            say(f"cannot reach AWS with the standard credential chain: {err}")
            return 1
        say(f"target: AWS account {identity['Account']} as {identity['Arn']}")

    try:
        names = sorted(
            role["RoleName"]
            for role in paginate(iam, "list_roles", "Roles")
            if role["RoleName"].startswith(args.prefix)
        )
    except (BotoCoreError, ClientError) as err:
        say(f"listing roles failed: {err}")
        return 1

    totals = {"roles": 0, "attachments": 0, "inline": 0, "instance_profiles": 0}
    failures = 0
    for name in names:
        try:
            counts = sweep_role(iam, name, args.dry_run)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") == "NoSuchEntity":
                say(f"  {name} is already gone")
                continue
            say(f"  FAILED on {name}: {err}")
            failures += 1
            continue
        except BotoCoreError as err:
            say(f"  FAILED on {name}: {err}")
            failures += 1
            continue
        totals["roles"] += 1
        for key, value in counts.items():
            totals[key] += value

    verb = "would delete" if args.dry_run else "deleted"
    say(
        f"{verb} {totals['roles']} role(s) starting with {args.prefix!r} "
        f"({totals['attachments']} policy attachment(s), {totals['inline']} inline "
        f"policy(ies), {totals['instance_profiles']} instance-profile membership(s)); "
        f"{failures} failure(s)"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
