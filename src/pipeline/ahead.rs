//! Work a build starts on a thread of its own early, because nothing
//! before its use needs it (the package database, the zone data), and
//! takes when it gets there. A thread that could not start or panicked
//! gives nothing, and the caller does the work in place instead, so the
//! result never depends on whether the thread ran.

use std::thread::JoinHandle;

pub(super) struct Ahead<T>(Option<JoinHandle<T>>);

impl<T: Send + 'static> Ahead<T> {
    pub(super) fn start(name: &str, work: impl FnOnce() -> T + Send + 'static) -> Ahead<T> {
        Ahead(
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(work)
                .ok(),
        )
    }

    /// Nothing to start: [`take`](Ahead::take) gives nothing.
    pub(super) fn none() -> Ahead<T> {
        Ahead(None)
    }

    /// The thread's result, once it has ended; `None` when there was no
    /// thread or it panicked.
    pub(super) fn take(self) -> Option<T> {
        self.0.and_then(|t| t.join().ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_the_result_or_nothing() {
        assert_eq!(Ahead::start("t", || 7).take(), Some(7));
        assert_eq!(Ahead::<u8>::none().take(), None);
        // A panic is nothing, for the caller to do the work itself.
        assert_eq!(Ahead::<u8>::start("t", || panic!("boom")).take(), None);
    }
}
