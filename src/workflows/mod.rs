//! Device workflows built on the ThingDatas calls: the loops every device writes, with
//! their edge cases handled once.
//!
//! - [`shadow_sync`]: read the shadow, hand each delta property to the application, report
//!   the accepted values back with the shadow's version, retry on a version conflict, never
//!   act on a version that is not newer than the last one applied;
//! - [`job_agent`]: claim the next job, dispatch it to a handler by its `action`, report
//!   progress and the final status with the expected version, and persist the claimed job
//!   and step so that a crash or reboot resumes it instead of starting it again;
//! - [`download`]: a resumable download verified with SHA-256 before it is renamed into
//!   place, in bounded memory.
//!
//! [`storage`] holds the atomic file writes they share.

pub mod download;
pub mod job_agent;
pub mod shadow_sync;
pub(crate) mod storage;
