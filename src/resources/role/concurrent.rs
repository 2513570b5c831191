//! How many IAM calls of one role run at the same time, and how their results are read back.
//!
//! Against AWS each IAM call is a WAN round trip (tens of milliseconds), so a role's time is the
//! number of round trips made one after another. Calls that do not depend on each other (the
//! policies a role gets, the reads of its inline documents) are therefore sent together, at most
//! [`PER_ROLE`] at a time. The results come back in the order the calls were listed, so that the
//! error reported is the one the same calls made one by one would have reported first.

use futures_util::future::{BoxFuture, FutureExt};
use futures_util::stream::{self, StreamExt};

/// At most this many IAM calls of one role in flight. Terraform already works on 10 resources at
/// a time (its default `-parallelism`), so a plan or apply keeps at most 40 calls open against
/// IAM's per-account request rate; throttling beyond that is retried by the SDK, with backoff.
pub const PER_ROLE: usize = 4;

/// Runs `calls`, at most [`PER_ROLE`] at a time, and returns every result in the calls' order.
///
/// Unordered underneath: a finished call frees its slot at once (an ordered buffer would hold it
/// until every call listed before it had finished too).
pub async fn all_in_order<'a, T: Send + 'a>(calls: Vec<BoxFuture<'a, T>>) -> Vec<T> {
    let numbered: Vec<BoxFuture<'a, (usize, T)>> = calls
        .into_iter()
        .enumerate()
        .map(|(i, call)| call.map(move |result| (i, result)).boxed())
        .collect();
    let mut done: Vec<(usize, T)> = stream::iter(numbered)
        .buffer_unordered(PER_ROLE)
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, result)| result).collect()
}

/// The first failure in listed order, after every call has finished.
pub fn first_error<E>(results: Vec<Result<(), E>>) -> Result<(), E> {
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn keeps_the_listed_order_and_the_bound() {
        let in_flight = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let calls: Vec<BoxFuture<'_, usize>> = (0..10usize)
            .map(|i| {
                let (in_flight, most) = (&in_flight, &most);
                async move {
                    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    // Later calls finish first: the order of results must not follow.
                    tokio::time::sleep(Duration::from_millis(100 - 10 * i as u64)).await;
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    i
                }
                .boxed()
            })
            .collect();
        assert_eq!(all_in_order(calls).await, (0..10).collect::<Vec<_>>());
        assert_eq!(most.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_finished_call_frees_its_slot_for_the_next() {
        // The first call waits until the fifth has started: with slots held by finished calls
        // (an ordered buffer) the fifth would never start and this would never end.
        let fifth_started = tokio::sync::Notify::new();
        let fifth = &fifth_started;
        let mut calls: Vec<BoxFuture<'_, u8>> = vec![async move {
            fifth.notified().await;
            0
        }
        .boxed()];
        calls.extend((1..4u8).map(|i| async move { i }.boxed()));
        calls.push(
            async move {
                fifth.notify_one();
                4
            }
            .boxed(),
        );
        let done = tokio::time::timeout(Duration::from_secs(60), all_in_order(calls)).await;
        assert_eq!(done, Ok(vec![0, 1, 2, 3, 4]));
    }

    #[test]
    fn the_first_error_is_the_first_listed() {
        assert_eq!(first_error(vec![Ok(()), Err("b"), Err("c")]), Err("b"));
        assert_eq!(first_error::<&str>(vec![Ok(()), Ok(())]), Ok(()));
    }
}
