//! Gets a large blob onto the disk while it is still being written, so
//! that the fsync before its rename has little left to wait for: on the
//! 145 MB JDK layer that fsync took 0.16 s, with both cores idle, at the
//! end of a 2.4 s build.
//!
//! std has no sync_file_range(2); an fdatasync(2) of what is written so
//! far, on a helper thread with its own handle to the file, does the same
//! job. Its errors are dropped: the final, blocking sync reports them.

use std::fs::File;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;

/// Bytes written between two background syncs. Smaller blobs (configs,
/// manifests, most layers) never start the thread.
const EVERY: u64 = 32 << 20;

#[derive(Default)]
pub(super) struct Writeback {
    unsynced: u64,
    helper: Option<(Sender<()>, JoinHandle<()>)>,
}

impl Writeback {
    /// Counts `n` more bytes handed to the kernel for `file`, and asks the
    /// helper to sync them once enough have gathered.
    pub(super) fn wrote(&mut self, file: &File, n: usize) {
        self.unsynced += n as u64;
        if self.unsynced < EVERY {
            return;
        }
        self.unsynced = 0;
        if self.helper.is_none() {
            // Without a second handle (or a thread) the blob is synced at
            // the end only, as before.
            let Ok(handle) = file.try_clone() else {
                return;
            };
            let (tx, rx) = mpsc::channel::<()>();
            let Ok(thread) = std::thread::Builder::new()
                .name("blob writeback".into())
                .spawn(move || {
                    while rx.recv().is_ok() {
                        // Requests that came while syncing are covered.
                        while rx.try_recv().is_ok() {}
                        let _ = handle.sync_data();
                    }
                })
            else {
                return;
            };
            self.helper = Some((tx, thread));
        }
        if let Some((tx, _)) = &self.helper {
            let _ = tx.send(());
        }
    }

    /// Waits for the helper, before the final sync.
    pub(super) fn finish(self) {
        if let Some((tx, thread)) = self.helper {
            drop(tx);
            let _ = thread.join();
        }
    }
}
