//! Commands that exercise the face engine on its own: `models` (with
//! `pack_archive`, the pack as one file), `compare`, `eval`, `calibrate`, `bench`.

pub mod bench;
pub mod calibrate;
pub mod compare;
pub mod degrade;
pub mod eval;
pub mod models;
pub mod pack_archive;
