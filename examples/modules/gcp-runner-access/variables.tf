variable "name" {
  description = "Name of the IAM role (1–64 characters of letters, digits and _+=,.@-)."
  type        = string

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,64}$", var.name))
    error_message = "The role name must be 1 to 64 characters of letters, digits and _+=,.@- (IAM's rule)."
  }
}

variable "path" {
  description = "IAM path of the role."
  type        = string
  default     = "/"

  validation {
    condition     = startswith(var.path, "/") && endswith(var.path, "/") && length(var.path) <= 512
    error_message = "The path must start and end with \"/\" (for example \"/\" or \"/ci/\") and have at most 512 characters."
  }
}

variable "description" {
  description = "Description of the role."
  type        = string
  default     = null
}

variable "audience" {
  description = "Audience the runner requests from the GCE metadata server; any string you choose, the same on both sides (rendered as accounts.google.com:oaud)."
  type        = string

  validation {
    condition     = length(var.audience) > 0 && length(regexall("\\s", var.audience)) == 0
    error_message = "The audience must be a non-empty string without spaces (it is passed on the credential_process command line)."
  }
}

variable "service_account_unique_ids" {
  description = "Numeric unique IDs (21 digits) of the Google service accounts that may assume the role: google_service_account.x.unique_id, or `gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'`. Not emails. An ID of another length than 21 digits passes with the provider's warning \"Unusual service account unique ID\" (test beds use short ones)."
  type        = set(string)

  validation {
    condition     = length(var.service_account_unique_ids) > 0
    error_message = "Give at least one service account unique ID: a trust policy without one would let no Google identity in."
  }

  validation {
    condition     = alltrue([for id in var.service_account_unique_ids : can(regex("^[0-9]+$", id))])
    error_message = "Each service account unique ID must be all digits: the numeric unique ID (21 digits) from google_service_account.x.unique_id or `gcloud iam service-accounts describe EMAIL --format='value(uniqueId)'`, not the email (AWS compares the token's azp and sub, which carry the unique ID)."
  }
}

variable "managed_policy_arns" {
  description = "Managed policies attached to the role, for example arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess. Exactly these are attached."
  type        = set(string)
  default     = []
}

variable "inline_policies" {
  description = "Inline policies of the role: policy name to JSON document (jsonencode(...)). Exactly these exist."
  type        = map(string)
  default     = {}
}

variable "max_session_duration" {
  description = "Maximum session duration of the role in seconds, 3600–43200."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200
    error_message = "max_session_duration must be between 3600 and 43200 seconds."
  }
}

variable "permissions_boundary" {
  description = "ARN of the policy used as the role's permissions boundary."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags of the role."
  type        = map(string)
  default     = {}
}

# The runner's AWS config profile.

variable "profile_name" {
  description = "Name of the AWS config profile for the runner; default: the role name."
  type        = string
  default     = null

  validation {
    condition     = var.profile_name == null || can(regex("^[^\\s\\[\\]]+$", var.profile_name))
    error_message = "The profile name must not contain spaces or brackets."
  }
}

variable "profile_region" {
  description = "region line of the profile (the region of the AWS CLI's and SDKs' calls); null leaves it out."
  type        = string
  default     = null
}

variable "helper_path" {
  description = "Absolute path of terraform-provider-gcpfed on the runner (credential_process does not search PATH reliably and expands neither ~ nor variables)."
  type        = string
  default     = "/usr/local/bin/terraform-provider-gcpfed"

  validation {
    condition     = startswith(var.helper_path, "/") && length(regexall("\\s", var.helper_path)) == 0
    error_message = "helper_path must be an absolute path without spaces."
  }
}

variable "service_account" {
  description = "Service account whose token the runner exchanges: `default` (the one attached to the VM, node pool or Cloud Run service) or an email. Its unique ID must be in service_account_unique_ids."
  type        = string
  default     = "default"

  validation {
    condition     = length(var.service_account) > 0 && length(regexall("\\s", var.service_account)) == 0
    error_message = "service_account must be `default` or an email, without spaces."
  }
}

variable "duration_seconds" {
  description = "Session duration the helper asks for, 900–43200 and at most max_session_duration; null: the helper's default (3600)."
  type        = number
  default     = null

  validation {
    condition     = var.duration_seconds == null || (coalesce(var.duration_seconds, 900) >= 900 && coalesce(var.duration_seconds, 900) <= 43200)
    error_message = "duration_seconds must be null (the helper's default, 3600) or between 900 and 43200 seconds."
  }
}
