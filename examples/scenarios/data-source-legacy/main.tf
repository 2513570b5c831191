# The exchange through the data source, for engines without ephemeral resources (Terraform
# 1.6–1.9, OpenTofu 1.6–1.10): the same flow as ../../quickstart, which needs Terraform >= 1.10
# or OpenTofu >= 1.11.
#
#   gcpfed_role.runner           the role the runner's service account assumes
#   data.gcpfed_credentials.ci   the runner's ID token exchanged for that role's credentials
#   provider gcpfed.ci           works with them: creates gcpfed_role.app
#
# The data source runs on every plan and apply, and its results, the secret key and session
# token included (marked sensitive), are stored in the state and in saved plan files until
# they expire. Keep duration_seconds short and the state in an encrypted backend with
# restricted access; move to the ephemeral resource when the engine allows.

terraform {
  required_version = ">= 1.6"
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
  description = "Custom IAM and STS endpoint (an emulator such as the local test bed); null means AWS itself."
  type        = string
  default     = null
}

variable "metadata_host" {
  description = "host[:port] of the GCE metadata server; null means the provider's default (GCE_METADATA_HOST, then metadata.google.internal)."
  type        = string
  default     = null
}

variable "runner_unique_id" {
  description = "Numeric unique ID of the runner's Google service account (google_service_account.x.unique_id). The default is the local test bed's ci-runner account."
  type        = string
  default     = "104857600000000000001"
}

# Creating the runner's role needs AWS credentials that may manage IAM (the standard chain).
provider "gcpfed" {
  region        = var.region
  metadata_host = var.metadata_host

  endpoints {
    iam = var.aws_endpoint
    sts = var.aws_endpoint
  }
}

resource "gcpfed_role" "runner" {
  name                       = "gcpfed-legacy-runner"
  audience                   = "sts.amazonaws.com/gcpfed-legacy-runner"
  service_account_unique_ids = [var.runner_unique_id]

  inline_policies = {
    manage-legacy-roles = jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Effect   = "Allow"
        Action   = ["iam:CreateRole", "iam:GetRole", "iam:DeleteRole", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:ListInstanceProfilesForRole"]
        Resource = "arn:aws:iam::*:role/gcpfed-legacy/*"
      }]
    })
  }
}

data "gcpfed_credentials" "ci" {
  role_arn         = gcpfed_role.runner.arn
  audience         = gcpfed_role.runner.audience
  duration_seconds = 900
}

provider "gcpfed" {
  alias         = "ci"
  region        = var.region
  access_key    = data.gcpfed_credentials.ci.access_key_id
  secret_key    = data.gcpfed_credentials.ci.secret_access_key
  token         = data.gcpfed_credentials.ci.session_token
  metadata_host = var.metadata_host

  endpoints {
    iam = var.aws_endpoint
    sts = var.aws_endpoint
  }
}

resource "gcpfed_role" "app" {
  provider = gcpfed.ci

  name                       = "gcpfed-legacy-app"
  path                       = "/gcpfed-legacy/"
  audience                   = "sts.amazonaws.com/gcpfed-legacy-app"
  service_account_unique_ids = [var.runner_unique_id]
}

output "assumed_role_arn" {
  description = "The session STS opened: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION."
  value       = data.gcpfed_credentials.ci.assumed_role_arn
}

# A new exchange runs on every plan, so a plan after apply shows this output changing (and no
# resource changes).
output "expiration" {
  description = "When the exchanged credentials expire (RFC 3339, UTC)."
  value       = data.gcpfed_credentials.ci.expiration
}

output "app_role_arn" {
  description = "ARN of the role created with the exchanged credentials."
  value       = gcpfed_role.app.arn
}
