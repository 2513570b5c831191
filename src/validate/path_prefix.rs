//! The IAM path prefix that selects which roles to list (the audit's `path_prefix` and
//! `--path-prefix`). Unlike a role's path it need not end with `/`: `/ci` lists `/ci/` and
//! `/ci-old/` alike, as IAM's `ListRoles` does.

use super::{first_bad_char, invalid, is_path_char, Invalid, ROLE_PATH_MAX};

/// IAM's `PathPrefix`: starts with `/`, at most 512 characters of printable ASCII but space.
/// `label` is the argument as the caller spells it.
pub fn path_prefix(label: &str, prefix: &str) -> Result<(), Invalid> {
    const S: &str = "Invalid path prefix";
    if !prefix.starts_with('/') {
        return invalid(
            S,
            format!("{label} {prefix:?} must start with \"/\", for example \"/\" (every role) or \"/ci/\"."),
        );
    }
    let len = prefix.chars().count();
    if len > ROLE_PATH_MAX {
        return invalid(
            S,
            format!(
                "{label} has {len} characters; IAM allows at most {ROLE_PATH_MAX}. Shorten it."
            ),
        );
    }
    if let Some(c) = first_bad_char(prefix, is_path_char) {
        return invalid(
            S,
            format!("{label} contains {c:?}; IAM paths allow printable ASCII characters other than space. Remove it."),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_iam_lists_by() {
        for ok in ["/", "/ci/", "/ci", "/a-b_c/d/"] {
            assert_eq!(path_prefix("path_prefix", ok), Ok(()), "{ok}");
        }
        let e = path_prefix("--path-prefix", "ci/").unwrap_err();
        assert!(
            e.detail
                .starts_with("--path-prefix \"ci/\" must start with \"/\""),
            "{}",
            e.detail
        );
        assert!(path_prefix("p", "/a b/")
            .unwrap_err()
            .detail
            .contains("' '"));
        assert!(path_prefix("p", &format!("/{}", "a".repeat(512)))
            .unwrap_err()
            .detail
            .contains("513 characters"));
    }
}
