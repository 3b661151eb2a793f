//! What tests may attach to a running history: hold or fail the writer's
//! commits, make the reader's queries panic. Compiled in only for tests
//! and with the `test-hooks` feature; otherwise [`Hooks`] is empty and
//! every check below is a constant the compiler removes.

#[cfg(any(test, feature = "test-hooks"))]
pub use attached::{CommitPause, DiskFull, Hooks};

/// Nothing to attach outside tests.
#[cfg(not(any(test, feature = "test-hooks")))]
#[derive(Clone, Debug, Default)]
pub(crate) struct Hooks {}

#[cfg(not(any(test, feature = "test-hooks")))]
impl Hooks {
    pub(super) fn before_commit(&self) {}

    pub(super) fn disk_is_full(&self) -> bool {
        false
    }

    pub(super) fn panic_queries(&self) -> bool {
        false
    }
}

#[cfg(any(test, feature = "test-hooks"))]
mod attached {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Condvar, Mutex};

    /// Things tests may attach to a history.
    #[derive(Clone, Debug, Default)]
    pub struct Hooks {
        /// Holds every commit while paused.
        pub commit_pause: Option<CommitPause>,
        /// Makes every commit fail as on a full disk while set.
        pub disk_full: Option<DiskFull>,
        /// Makes every query panic on the reader thread.
        pub panic_queries: bool,
    }

    impl Hooks {
        /// Waits while commits are paused.
        pub(in crate::history) fn before_commit(&self) {
            if let Some(pause) = &self.commit_pause {
                pause.wait();
            }
        }

        /// Whether a commit should fail as on a full disk.
        pub(in crate::history) fn disk_is_full(&self) -> bool {
            self.disk_full.as_ref().is_some_and(DiskFull::is_full)
        }

        pub(in crate::history) fn panic_queries(&self) -> bool {
            self.panic_queries
        }
    }

    /// Makes every commit fail as on a full disk while set, so tests can
    /// watch what the server does when history cannot be written.
    #[derive(Clone, Debug, Default)]
    pub struct DiskFull(Arc<AtomicBool>);

    impl DiskFull {
        pub fn set(&self, full: bool) {
            self.0.store(full, Ordering::SeqCst);
        }

        fn is_full(&self) -> bool {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// Holds the writer before each commit while paused, so tests can
    /// watch lines wait for their record.
    #[derive(Clone, Debug, Default)]
    pub struct CommitPause {
        paused: Arc<(Mutex<Pause>, Condvar)>,
    }

    /// Whether commits are paused, and whether the writer is held now.
    #[derive(Debug, Default)]
    struct Pause {
        paused: bool,
        holding: bool,
    }

    impl CommitPause {
        pub fn pause(&self) {
            self.lock().paused = true;
        }

        pub fn resume(&self) {
            self.lock().paused = false;
            self.paused.1.notify_all();
        }

        /// Waits until the writer is held before a commit, so it takes no
        /// more jobs from its queue until resumed.
        pub fn wait_until_holding(&self) {
            let mut pause = self.lock();
            while !pause.holding {
                pause = self.wait_on(pause);
            }
        }

        fn wait(&self) {
            let mut pause = self.lock();
            pause.holding = pause.paused;
            self.paused.1.notify_all();
            while pause.paused {
                pause = self.wait_on(pause);
            }
            pause.holding = false;
        }

        fn wait_on<'a>(
            &self,
            pause: std::sync::MutexGuard<'a, Pause>,
        ) -> std::sync::MutexGuard<'a, Pause> {
            self.paused
                .1
                .wait(pause)
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Pause> {
            self.paused
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }
}
