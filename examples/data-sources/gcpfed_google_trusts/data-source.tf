# Every IAM role that Google identities can assume, graded. Reads one paginated ListRoles.
data "gcpfed_google_trusts" "all" {
  # path_prefix  = "/ci/"      # default "/": every role
  # min_severity = "high"      # default "info": every Google trust

  # Fail the plan while any role lets any Google identity in the world assume it.
  lifecycle {
    postcondition {
      condition     = self.counts["critical"] == 0
      error_message = "Roles open to any Google identity: ${join(", ", [for r in self.roles : r.name if r.severity == "critical"])}. Run `terraform-provider-gcpfed audit` for the fixes."
    }
  }
}

output "google_trust_findings" {
  value = {
    for r in data.gcpfed_google_trusts.all.roles : r.name => [
      for f in r.findings : "${f.severity}: ${f.message}"
    ]
  }
}
