# The AWS Security Blog's example, as code: Team A's Google Cloud workload reads S3 through the
# role TeamA-S3ReadOnlyAccess (the AWS managed policy AmazonS3ReadOnlyAccess), and its
# ~/.aws/config profile calls the gcpfed credential_process helper instead of the blog's bash
# script (curl + jq + aws sts): one binary, cached credentials, no AWS key on the workload.
#
#   terraform apply
#   terraform output -raw aws_config_profile >> ~/.aws/config     # on the workload
#   aws s3 ls --profile TeamA-S3ReadOnlyAccess

terraform {
  required_version = ">= 1.6"
  required_providers {
    gcpfed = {
      source = "gcpfed/gcpfed"
    }
  }
}

variable "team_a_service_account_unique_id" {
  description = "Numeric unique ID (21 digits) of Team A's Google service account: `gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'`. The default is the local test bed's ci-runner account."
  type        = string
  default     = "104857600000000000001"
}

variable "audience" {
  description = "Audience Team A's workload requests from the metadata server; any string, the same on both sides."
  type        = string
  default     = "sts.amazonaws.com/TeamA-S3ReadOnlyAccess"
}

variable "region" {
  description = "AWS region for IAM and STS calls, and the profile's region."
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

# Creating the role needs AWS administrator credentials of the account (the standard AWS
# credential chain: AWS_PROFILE, SSO, environment, ...).
provider "gcpfed" {
  region        = var.region
  metadata_host = var.metadata_host

  endpoints {
    iam = var.aws_endpoint
    sts = var.aws_endpoint
  }
}

module "team_a" {
  source = "../../modules/gcp-runner-access"

  name                       = "TeamA-S3ReadOnlyAccess"
  description                = "Team A's Google Cloud workload reads S3."
  audience                   = var.audience
  service_account_unique_ids = [var.team_a_service_account_unique_id]
  managed_policy_arns        = ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]
  max_session_duration       = 3600
  tags = {
    team = "team-a"
  }

  profile_region = var.region
}

output "role_arn" {
  description = "ARN of TeamA-S3ReadOnlyAccess."
  value       = module.team_a.role_arn
}

output "aws_config_profile" {
  description = "Append to ~/.aws/config on Team A's workload."
  value       = module.team_a.aws_config_profile
}
