# The trust policy gcpfed_role would render, for a role that something else manages: here the
# AWS provider's aws_iam_role. Needs Terraform >= 1.8 (OpenTofu >= 1.7).
locals {
  ci_trust_policy = provider::gcpfed::trust_policy(
    "sts.amazonaws.com/gcp-ci-deployer", # the audience the runner requests
    ["104857600000000000001"],           # google_service_account.ci.unique_id
  )
}

# resource "aws_iam_role" "ci" {
#   name               = "gcp-ci-deployer"
#   assume_role_policy = local.ci_trust_policy
# }

output "ci_trust_policy" {
  value = local.ci_trust_policy
}
