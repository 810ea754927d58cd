//! Shadow sync: the start-up (and periodic) loop of a device that follows its desired state.
//!
//! One sync reads the shadow; when its `delta` is not empty and its `version` is newer than
//! the applied version, each delta property goes to the application (`on_delta(key,
//! value_json)`), which applies it and accepts it, or declines it. The accepted values are
//! reported back with the shadow's version (optimistic locking): if the desired state changed
//! in between, the report is a conflict, and the sync reads the shadow again and offers the
//! new delta, a bounded number of times.
//!
//! The applied version is the version of the last shadow whose values the device applied
//! (or that it found in sync). A shadow whose version is not newer is never offered: a stale
//! read (a replica behind, a replayed response) must not take the device back to older
//! values. A declined value is not applied, so it does not move the applied version: it is
//! offered again by the next sync, until the device accepts it or the desired state drops
//! it. The caller keeps the applied version (e.g. in non-volatile memory) or lets
//! [`Client::shadow_sync_with_state_file`] keep it in a small file.
//!
//! A value may also be offered again after a conflict (with the same or a newer value), or
//! after a crash or a failed report (the applied version advances only once the report is
//! done). Applying a desired value must therefore be idempotent, as it normally is ("set the
//! target temperature to 24").

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::client::{Client, ReportOptions};
use crate::error::{Error, ErrorCode, Result};
use crate::workflows::storage;

/// Shadow reads per sync at most: the first, and one more per version conflict.
pub const SHADOW_SYNC_MAX_ROUNDS: u32 = 4;
/// A shadow-sync state file is tiny; a larger file is not one.
const STATE_FILE_LIMIT: u64 = 4096;

/// What a successful sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowSyncReport {
    /// The shadow's version after the sync (after the device's report when it made one).
    pub version: u64,
    /// The applied version now (what the caller keeps for the next sync): the version of
    /// the shadow whose values were applied, or found in sync.
    pub applied_version: u64,
    /// Delta properties the application accepted (and that were reported), over all rounds.
    pub accepted: u32,
    /// Delta properties the application declined, over all rounds.
    pub declined: u32,
    /// The shadow read was not newer than the applied version: its delta was not offered.
    pub stale: bool,
    /// Shadow reads made (1, plus 1 per version conflict).
    pub rounds: u32,
}

#[derive(Deserialize)]
struct Shadow {
    version: u64,
    #[serde(default)]
    delta: Option<BTreeMap<String, Box<RawValue>>>,
}

#[derive(Deserialize)]
struct ReportAnswer {
    version: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyncState {
    applied_version: u64,
}

impl Client {
    /// Syncs the thing's desired state into the device: see the module documentation.
    ///
    /// `applied_version` is read (0: nothing applied yet) and updated on success. `on_delta`
    /// gets each top-level delta property as its key and its JSON text and returns `true`
    /// when the device applied it (the value is reported back) or `false` when it did not
    /// (not reported; offered again by the next sync).
    ///
    /// Errors: those of `shadow_get` and `shadow_report`; `Conflict` when the desired state
    /// kept changing for [`SHADOW_SYNC_MAX_ROUNDS`] reads; `BadResponse` for a shadow without
    /// a version. `applied_version` is unchanged by a failed sync.
    pub fn shadow_sync(
        &self,
        thing_name: &str,
        applied_version: &mut u64,
        mut on_delta: impl FnMut(&str, &str) -> bool,
    ) -> Result<ShadowSyncReport> {
        let mut report = ShadowSyncReport {
            applied_version: *applied_version,
            ..ShadowSyncReport::default()
        };
        loop {
            report.rounds += 1;
            let shadow: Shadow = self.shadow_get(thing_name)?.json()?;
            report.version = shadow.version;
            let delta = shadow.delta.unwrap_or_default();
            if delta.is_empty() {
                report.applied_version = report.applied_version.max(shadow.version);
                break;
            }
            if shadow.version <= report.applied_version {
                report.stale = true;
                break;
            }
            // Declined values do not move the applied version: they come again next time.
            let mut reported = String::from("{");
            for (key, value) in &delta {
                if on_delta(key, value.get()) {
                    report.accepted += 1;
                    if reported.len() > 1 {
                        reported.push(',');
                    }
                    reported.push_str(&serde_json::to_string(key).map_err(|e| {
                        Error::new(ErrorCode::Internal, format!("encoding a key: {e}"))
                    })?);
                    reported.push(':');
                    reported.push_str(value.get());
                } else {
                    report.declined += 1;
                }
            }
            reported.push('}');
            if reported.len() == 2 {
                break;
            }
            let options = ReportOptions {
                client_token: None,
                version: shadow.version,
            };
            match self.shadow_report(thing_name, &reported, options) {
                Ok(answer) => {
                    let new_version = answer
                        .json::<ReportAnswer>()
                        .ok()
                        .and_then(|a| a.version)
                        .unwrap_or(shadow.version + 1);
                    report.version = new_version;
                    report.applied_version = shadow.version;
                    break;
                }
                Err(error)
                    if error.code() == ErrorCode::Conflict
                        && report.rounds < SHADOW_SYNC_MAX_ROUNDS => {}
                Err(error) => return Err(error),
            }
        }
        *applied_version = report.applied_version;
        Ok(report)
    }

    /// [`Client::shadow_sync`] with the applied version kept in `state_path` (a small JSON
    /// file, replaced atomically; a missing file means 0). The file is written only when
    /// the version changes.
    ///
    /// Errors: those of `shadow_sync`; `Storage` for a file that cannot be read or is not a
    /// shadow-sync state file; `DiskFull` or `Storage` when it cannot be written (the sync
    /// itself happened: the next one may offer the same delta again).
    pub fn shadow_sync_with_state_file(
        &self,
        thing_name: &str,
        state_path: &Path,
        on_delta: impl FnMut(&str, &str) -> bool,
    ) -> Result<ShadowSyncReport> {
        let mut applied = match storage::read_small(state_path, STATE_FILE_LIMIT)? {
            None => 0,
            Some(bytes) => {
                serde_json::from_slice::<SyncState>(&bytes)
                    .map_err(|e| {
                        Error::new(
                            ErrorCode::LocalFile,
                            format!(
                                "{} is not a shadow-sync state file: {e}",
                                state_path.display()
                            ),
                        )
                    })?
                    .applied_version
            }
        };
        let before = applied;
        let report = self.shadow_sync(thing_name, &mut applied, on_delta)?;
        if applied != before {
            let state = serde_json::to_vec(&SyncState {
                applied_version: applied,
            })
            .map_err(|e| Error::new(ErrorCode::Internal, format!("encoding state: {e}")))?;
            storage::write_atomic(state_path, &state)?;
        }
        Ok(report)
    }
}
