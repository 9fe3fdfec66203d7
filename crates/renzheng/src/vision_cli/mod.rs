//! Commands that exercise the face engine on its own: `models`, `compare`, `eval`, `bench`.

pub mod bench;
pub mod compare;
pub mod eval;
pub mod models;
