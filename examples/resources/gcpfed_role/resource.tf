# The numeric unique ID of the Google service account that may assume the role. With the Google
# provider, pass google_service_account.ci.unique_id; from the command line:
#   gcloud iam service-accounts describe ci-runner@PROJECT.iam.gserviceaccount.com --format='value(uniqueId)'
variable "ci_service_account_unique_id" {
  type    = string
  default = "104857600000000000001"
}

resource "gcpfed_role" "ci" {
  name        = "gcp-ci-deployer"
  description = "Assumed by the CI runner on Google Cloud"

  # The audience the runner requests from the metadata server (gcpfed_credentials.audience).
  audience = "sts.amazonaws.com/gcp-ci-deployer"

  # Numeric unique IDs, not emails: AWS compares them with the token's azp and sub claims.
  service_account_unique_ids = [var.ci_service_account_unique_id]

  managed_policy_arns = ["arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"]

  inline_policies = {
    "write-artifacts" = jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Effect   = "Allow"
        Action   = ["s3:PutObject"]
        Resource = "arn:aws:s3:::my-artifacts/*"
      }]
    })
  }

  max_session_duration = 7200

  tags = {
    team = "platform"
  }
}

output "role_arn" {
  value = gcpfed_role.ci.arn
}
