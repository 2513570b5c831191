# Run ONCE, from a workstation or pipeline that already has AWS administrator credentials:
# creates the bootstrap role that the Google Cloud runner assumes with its own identity.
# After this, the runner needs no AWS key at all (see ../main.tf and ../aws-config).

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

variable "runner_unique_id" {
  description = "Numeric unique ID (21 digits) of the runner's Google service account: `gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'` or google_service_account.x.unique_id."
  type        = string
}

variable "audience" {
  description = "Audience the runner requests from the metadata server; any string you choose, the same on both sides."
  type        = string
  default     = "sts.amazonaws.com/gcpfed-ci-bootstrap"
}

variable "managed_role_path" {
  description = "The runner may only manage roles under this IAM path."
  type        = string
  default     = "/ci-managed/"
}

# Uses the standard AWS credential chain of the workstation (AWS_PROFILE, SSO, ...).
provider "gcpfed" {
  region = var.region
}

resource "gcpfed_role" "bootstrap" {
  name        = "gcpfed-ci-bootstrap"
  description = "Assumed by the Google Cloud CI runner through its own identity; manages roles under ${var.managed_role_path}."
  audience    = var.audience

  service_account_unique_ids = [var.runner_unique_id]

  inline_policies = {
    manage-ci-roles = jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Effect = "Allow"
        Action = [
          "iam:CreateRole", "iam:GetRole", "iam:UpdateRole", "iam:DeleteRole",
          "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole",
          "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListAttachedRolePolicies",
          "iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:ListRolePolicies",
          "iam:PutRolePermissionsBoundary", "iam:DeleteRolePermissionsBoundary",
          "iam:ListInstanceProfilesForRole", "iam:RemoveRoleFromInstanceProfile",
        ]
        Resource = "arn:aws:iam::*:role${var.managed_role_path}*"
      }]
    })
  }
}

output "bootstrap_role_arn" {
  description = "Put this in the runner's assume_role_with_gcp_identity block and ~/.aws/config."
  value       = gcpfed_role.bootstrap.arn
}
