//! Owns the `Secret` wrapper: tokens, secret access keys and session tokens travel in it so that
//! no `Debug`, `Display`, log line, diagnostic or panic message can print them by accident.
//! Reading the value takes an explicit `expose()` at the one place it is really needed.

use std::fmt;

/// A string that must never be printed. `Debug` and `Display` both write `***`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one call that sends or stores it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// Runs `fut` with the current tracing subscriber minus the TRACE events of the AWS SDK's
/// runtime. At TRACE the smithy orchestrator logs every request with its body, and the body of
/// `AssumeRoleWithWebIdentity` holds the web identity token (tf-provider installs a TRACE
/// subscriber whenever `PLUGIN_LOG_FILE` is set). Everything else passes through unchanged.
pub fn without_sdk_trace<F: std::future::Future>(fut: F) -> tracing::instrument::WithDispatch<F> {
    use tracing::instrument::WithSubscriber as _;
    let inner = tracing::dispatcher::get_default(|d| d.clone());
    fut.with_subscriber(SdkTraceFilter { inner })
}

struct SdkTraceFilter {
    inner: tracing::Dispatch,
}

impl SdkTraceFilter {
    fn blocked(meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() == tracing::Level::TRACE && meta.target().starts_with("aws_smithy")
    }
}

impl tracing::Subscriber for SdkTraceFilter {
    fn register_callsite(
        &self,
        _meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Interest is cached per call site across all subscribers: ask for a check every time
        // so that the filter below (and the inner subscriber's own) decide per event.
        tracing::subscriber::Interest::sometimes()
    }
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        !Self::blocked(meta) && self.inner.enabled(meta)
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        self.inner.new_span(span)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        self.inner.record(span, values)
    }
    fn record_follows_from(&self, span: &tracing::span::Id, follows: &tracing::span::Id) {
        self.inner.record_follows_from(span, follows)
    }
    fn event(&self, event: &tracing::Event<'_>) {
        if !Self::blocked(event.metadata()) {
            self.inner.event(event)
        }
    }
    fn enter(&self, span: &tracing::span::Id) {
        self.inner.enter(span)
    }
    fn exit(&self, span: &tracing::span::Id) {
        self.inner.exit(span)
    }
    fn clone_span(&self, id: &tracing::span::Id) -> tracing::span::Id {
        self.inner.clone_span(id)
    }
    fn try_close(&self, id: tracing::span::Id) -> bool {
        self.inner.try_close(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("wJalrXUtnFEMI/K7MDENG");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "wJalrXUtnFEMI/K7MDENG");
    }

    #[test]
    fn derived_debug_of_a_containing_struct_hides_it() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Creds {
            id: String,
            secret: Secret,
        }
        let c = Creds {
            id: "ASIA1".into(),
            secret: Secret::new("topsecretvalue"),
        };
        let printed = format!("{c:?} {c:#?}");
        assert!(!printed.contains("topsecretvalue"), "{printed}");
        assert!(printed.contains("ASIA1"));
    }

    /// Keeps the target and level of every event it sees.
    struct Seen(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
    impl tracing::Subscriber for Seen {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            let m = e.metadata();
            self.0
                .lock()
                .unwrap()
                .push(format!("{} {}", m.level(), m.target()));
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test]
    async fn sdk_trace_events_are_dropped_others_kept() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let dispatch = tracing::Dispatch::new(Seen(seen.clone()));
        let _guard = tracing::dispatcher::set_default(&dispatch);
        without_sdk_trace(async {
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", body = "token", "transmitting request");
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "debug kept");
            tracing::trace!(target: "gcpfed::exchange", "own trace kept");
        })
        .await;
        tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "outside the guard");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            vec![
                "DEBUG aws_smithy_runtime::client::orchestrator",
                "TRACE gcpfed::exchange",
                "TRACE aws_smithy_runtime::client::orchestrator",
            ]
        );
    }
}
