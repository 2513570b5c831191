# Quickstart: the whole flow on a Google Cloud runner (a Compute Engine VM, GKE pod or Cloud Run
# job), reaching AWS without any stored AWS key:
#
#   1. gcpfed_role.runner: an IAM role that the runner's service account may assume (its trust
#      policy is rendered from the account's numeric unique ID and an audience);
#   2. ephemeral.gcpfed_credentials.runner: the runner's Google ID token, from the GCE metadata
#      server, exchanged with STS for that role's temporary credentials, which are never written
#      to the state or to plan files;
#   3. provider gcpfed.runner: a second provider instance that works with those credentials,
#      and manages a role of its own (gcpfed_role.app) to show that they work.
#
# Ephemeral resources need Terraform >= 1.10 (OpenTofu >= 1.11). On older engines,
# examples/scenarios/data-source-legacy does the same with the data source, which keeps the
# credentials in the state.
#
# Creating the first role needs AWS credentials that may manage IAM (the standard AWS chain:
# AWS_PROFILE, SSO, environment variables, ...). On Google Cloud leave aws_endpoint and
# metadata_host at null; `make demo` points them at the local test bed instead (an IAM/STS
# emulator and a metadata-server emulator on 127.0.0.1).
#
# On real AWS a freshly created role can take a few seconds to be trusted by STS (IAM is
# eventually consistent): if the first apply is denied, run it again.

terraform {
  required_version = ">= 1.10"
  required_providers {
    gcpfed = {
      source = "gcpfed/gcpfed"
    }
  }
}

variable "region" {
  description = "AWS region for IAM and STS calls."
  type        = string
  default     = "us-east-1"
}

variable "aws_endpoint" {
  description = "Custom IAM and STS endpoint (an emulator, FIPS or VPC endpoint); null means AWS itself."
  type        = string
  default     = null
}

variable "metadata_host" {
  description = "host[:port] of the GCE metadata server; null means the provider's default (GCE_METADATA_HOST, then metadata.google.internal)."
  type        = string
  default     = null
}

variable "runner_unique_id" {
  description = "Numeric unique ID (21 digits) of the runner's Google service account: `gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'`. The default is the local test bed's ci-runner account."
  type        = string
  default     = "104857600000000000001"
}

variable "name_prefix" {
  description = "Start of the names of the roles this configuration creates."
  type        = string
  default     = "gcpfed-quickstart"
}

provider "gcpfed" {
  region        = var.region
  metadata_host = var.metadata_host

  endpoints {
    iam = var.aws_endpoint
    sts = var.aws_endpoint
  }
}

# 1. The role the runner assumes. What it may do: manage roles under the /gcpfed-quickstart/
#    path (and nothing else), which the second provider below does.
resource "gcpfed_role" "runner" {
  name                       = "${var.name_prefix}-runner"
  description                = "Assumed by the quickstart's Google Cloud runner with its own identity."
  audience                   = "sts.amazonaws.com/${var.name_prefix}-runner"
  service_account_unique_ids = [var.runner_unique_id]

  inline_policies = {
    manage-quickstart-roles = jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Effect = "Allow"
        Action = [
          "iam:CreateRole", "iam:GetRole", "iam:UpdateRole", "iam:DeleteRole",
          "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole",
          "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:ListInstanceProfilesForRole",
        ]
        Resource = "arn:aws:iam::*:role/gcpfed-quickstart/*"
      }]
    })
  }
}

# 2. The exchange: the runner's ID token (service account `default`, audience of the role) for
#    temporary credentials of the role. Terraform opens it on every plan and apply (once the
#    role's ARN is known) and keeps the result in memory only.
ephemeral "gcpfed_credentials" "runner" {
  role_arn         = gcpfed_role.runner.arn
  audience         = gcpfed_role.runner.audience
  duration_seconds = 900
}

# 3. A second provider instance that works as the assumed role.
provider "gcpfed" {
  alias         = "runner"
  region        = var.region
  access_key    = ephemeral.gcpfed_credentials.runner.access_key_id
  secret_key    = ephemeral.gcpfed_credentials.runner.secret_access_key
  token         = ephemeral.gcpfed_credentials.runner.session_token
  metadata_host = var.metadata_host

  endpoints {
    iam = var.aws_endpoint
    sts = var.aws_endpoint
  }
}

resource "gcpfed_role" "app" {
  provider = gcpfed.runner

  name                       = "${var.name_prefix}-app"
  path                       = "/gcpfed-quickstart/"
  description                = "Created by the runner with its exchanged credentials."
  audience                   = "sts.amazonaws.com/${var.name_prefix}-app"
  service_account_unique_ids = [var.runner_unique_id]
}

output "role_arn" {
  description = "ARN of the role the runner assumes."
  value       = gcpfed_role.runner.arn
}

# The exchange's results (assumed_role_arn, expiration, subject, ...) are ephemeral: a root
# module cannot output them, and nothing of them is kept.

output "app_role_arn" {
  description = "ARN of the role that the second provider created with the exchanged credentials."
  value       = gcpfed_role.app.arn
}
