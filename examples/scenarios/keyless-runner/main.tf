# Runs ON the Google Cloud runner (Compute Engine VM, GKE pod with Workload Identity, Cloud Run
# job): no AWS key anywhere. The provider's own IAM calls use credentials that it gets by
# exchanging the runner's Google identity for the bootstrap role (created by ./bootstrap),
# renewed 5 minutes before they expire.

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

provider "gcpfed" {
  region = var.region

  assume_role_with_gcp_identity {
    role_arn = var.bootstrap_role_arn
    audience = var.bootstrap_audience
    # service_account  = "default"   # or the email of another account attached to the runner
    # duration_seconds = 3600
  }
}

# Managed with the exchanged credentials: a role for an application's deployer.
resource "gcpfed_role" "deployer" {
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
