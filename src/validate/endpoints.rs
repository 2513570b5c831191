//! Where the provider and the command line send their calls: custom endpoint URLs, the metadata
//! server's host and AWS region names. These rules return the reason alone (`Err(String)`): the
//! caller's message names its own argument, flag or environment variable, which differ more here
//! than anywhere else (`endpoints.sts`, `--sts-endpoint`, `AWS_ENDPOINT_URL_STS`).

/// A custom endpoint: an absolute `http://` or `https://` URL with a host. `Err` is the reason,
/// which the caller puts in a message naming its own argument or flag.
pub fn endpoint_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|err| format!("\"{text}\" does not parse: {err}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("\"{text}\" has scheme \"{}\"", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("\"{text}\" has no host"));
    }
    Ok(())
}

/// The metadata server's host[:port], without scheme or path. `Err` is the reason, as for
/// [`endpoint_url`].
pub fn metadata_host(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.contains("://") || text.contains('/') {
        return Err(format!("\"{text}\" has a scheme or a path"));
    }
    url::Url::parse(&format!("http://{text}/"))
        .map(|_| ())
        .map_err(|err| format!("\"{text}\" is not a host[:port]: {err}"))
}

/// An AWS region name such as `us-east-1`: lower-case letters, digits and inner dashes.
pub fn is_region_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 32
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}
