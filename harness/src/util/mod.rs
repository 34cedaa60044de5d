//! The ground floor: what every layer may use and that knows nothing of suites, models or
//! results. Bounded reads of untrusted files ([`safeio`]), atomic writes ([`files`]), sha256
//! helpers ([`digest`]), clean stops on Ctrl-C ([`interrupt`]),
//! one process at a time per lock file ([`lock`]), the host name and timestamps ([`sysinfo`]).

pub mod digest;
pub mod files;
pub mod interrupt;
pub mod lock;
pub mod safeio;
pub mod sysinfo;
