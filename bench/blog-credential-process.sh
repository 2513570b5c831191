#!/usr/bin/env bash
# The AWS Security Blog's way of turning a GCE metadata ID token into AWS credentials for a
# `credential_process`, written by us as the benchmark's baseline (bench/bench.py runs it):
# curl the metadata server, read `sub` with jq, call STS with the AWS CLI, shape the
# credential_process Version 1 JSON with jq. It prints that JSON on stdout and nothing else.
#
#   blog-credential-process.sh ROLE_ARN AUDIENCE
#
# Environment: GCE_METADATA_HOST (host[:port], default metadata.google.internal),
# STS_ENDPOINT (optional --endpoint-url), AWS_CLI (default: `aws` on PATH),
# SERVICE_ACCOUNT (default: default).
set -euo pipefail

role_arn=$1
audience=$2
metadata_host=${GCE_METADATA_HOST:-metadata.google.internal}
service_account=${SERVICE_ACCOUNT:-default}
aws_cli=${AWS_CLI:-aws}

# 1. The Google-signed ID token from the metadata server.
token=$(curl -sSf --max-time 10 -H 'Metadata-Flavor: Google' \
  "http://${metadata_host}/computeMetadata/v1/instance/service-accounts/${service_account}/identity?audience=${audience}&format=full&licenses=FALSE")

# 2. Its `sub` (the service account's unique ID) as the session name. The payload is base64url
#    without padding; jq 1.6's @base64d chokes on `-` and `_`, so translate and pad first.
payload=$(printf '%s' "$token" | cut -d. -f2 | tr '_-' '/+')
case $(( ${#payload} % 4 )) in
  2) payload="${payload}==" ;;
  3) payload="${payload}=" ;;
esac
sub=$(printf '%s' "$payload" | base64 -d | jq -r '.sub')

# 3. The unsigned STS call through the AWS CLI.
endpoint_args=()
if [ -n "${STS_ENDPOINT:-}" ]; then
  endpoint_args=(--endpoint-url "$STS_ENDPOINT")
fi
answer=$("$aws_cli" sts assume-role-with-web-identity \
  --role-arn "$role_arn" \
  --role-session-name "$sub" \
  --web-identity-token "$token" \
  --duration-seconds 3600 \
  "${endpoint_args[@]}" \
  --output json)

# 4. The credential_process Version 1 document.
printf '%s' "$answer" | jq '{
  Version: 1,
  AccessKeyId: .Credentials.AccessKeyId,
  SecretAccessKey: .Credentials.SecretAccessKey,
  SessionToken: .Credentials.SessionToken,
  Expiration: .Credentials.Expiration
}'
