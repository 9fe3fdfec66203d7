//! One module per console page: each reads its figures from the use cases and renders
//! them; POST handlers take their form as a [`Verified`](super::verified::Verified) (origin,
//! session, CSRF token checked), then call one use case.

pub mod about;
pub mod account;
pub mod alerts;
pub mod app_page;
pub mod apps;
pub mod calls;
pub mod duplicates;
pub mod events;
pub mod operators;
pub mod overview;
pub mod packages;
pub mod registry;
pub mod try_it;
