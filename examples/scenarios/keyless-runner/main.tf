# Runs ON the Google Cloud runner (Compute Engine VM, GKE pod with Workload Identity, Cloud Run
# job): no AWS key anywhere. The runner's Google identity is exchanged for the bootstrap role's
# credentials (the role ./bootstrap creates) by the ephemeral resource below, on every plan and
# apply, and an aliased provider makes its IAM calls with them. Nothing of the exchange is
# written to the state or to plan files.
#
# Ephemeral resources need Terraform >= 1.10 (OpenTofu >= 1.11). On older engines, give the
# provider itself the block
#   assume_role_with_gcp_identity { role_arn = var.bootstrap_role_arn, audience = var.bootstrap_audience }
# instead: it performs the same exchange for the provider's own calls.

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

variable "bootstrap_role_arn" {
  description = "The bootstrap role's ARN (output bootstrap_role_arn of ./bootstrap)."
  type        = string
}

variable "bootstrap_audience" {
  description = "The bootstrap role's audience."
  type        = string
  default     = "sts.amazonaws.com/gcpfed-ci-bootstrap"
}

variable "deployer_unique_id" {
  description = "Numeric unique ID of the service account that will assume the application's role."
  type        = string
}

# No credentials: this instance only performs the exchange, whose STS call is unsigned.
provider "gcpfed" {
  region = var.region
}

ephemeral "gcpfed_credentials" "bootstrap" {
  role_arn = var.bootstrap_role_arn
  audience = var.bootstrap_audience
  # service_account  = "default"   # or the email of another account attached to the runner
  # duration_seconds = 3600
}

provider "gcpfed" {
  alias      = "bootstrap"
  region     = var.region
  access_key = ephemeral.gcpfed_credentials.bootstrap.access_key_id
  secret_key = ephemeral.gcpfed_credentials.bootstrap.secret_access_key
  token      = ephemeral.gcpfed_credentials.bootstrap.session_token
}

# Managed with the exchanged credentials: a role for an application's deployer.
resource "gcpfed_role" "deployer" {
  provider = gcpfed.bootstrap

  name        = "app-deployer"
  path        = "/ci-managed/"
  description = "Assumed by the deployer service account through its Google identity."
  audience    = "sts.amazonaws.com/app-deployer"

  service_account_unique_ids = [var.deployer_unique_id]
  managed_policy_arns        = ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
}

output "deployer_role_arn" {
  value = gcpfed_role.deployer.arn
}
