output "role_arn" {
  description = "ARN of the role (the runner's --role-arn)."
  value       = gcpfed_role.this.arn
}

output "role_name" {
  description = "Name of the role."
  value       = gcpfed_role.this.name
}

output "audience" {
  description = "The audience the runner must request."
  value       = var.audience
}

output "trust_policy" {
  description = "The trust policy document sent to IAM."
  value       = gcpfed_role.this.trust_policy
}

output "credential_process" {
  description = "The credential_process command line of the profile."
  value       = local.credential_process
}

output "aws_config_profile" {
  description = "The profile to add to ~/.aws/config on the runner; then `aws --profile NAME ...` or AWS_PROFILE=NAME."
  value       = local.aws_config_profile
}
