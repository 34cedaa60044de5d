//! The data layer: which samples a suite has, how they are labelled and weighted, and where their
//! image bytes are. It knows nothing of models, images' pixels or results.
//!
//! - [`suite`]: a suite YAML loaded into a [`Suite`] (samples sorted by id, class subset, remap,
//!   weights, checksums, content digest);
//! - [`sources`]: the layouts a suite's samples come from (ImageFolder, flat folders, label
//!   tables, the ImageNet devkit, LAIONet's Parquet joined with img2dataset's shards);
//! - [`sample`]: one sample and its [`ImageRef`] (a file, a tar member, or absent);
//! - [`table`]: CSV/TSV/Parquet read one way; [`classes`]: class subsets; [`weights`]: class
//!   weights; [`checksums`]: pinned sha256 files; [`env`]: paths and `${VAR}` in YAML;
//! - [`verify`]: `shiftbench verify`; [`demo`]: the synthetic suites of `shiftbench demo`.

pub mod captions;
pub mod checksums;
pub mod classes;
pub mod demo;
pub mod env;
pub mod lexicon;
pub mod matcher;
pub mod sample;
pub mod sources;
pub mod suite;
pub mod table;
pub mod verify;
pub mod weights;

pub use sample::{ImageRef, ReadError, Sample};
pub use suite::Suite;
pub use weights::Weights;
