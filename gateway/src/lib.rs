//! ostree-gateway: an SSH server that receives OSTree commits into shared repos under policy.
//!
//! See docs/ARCHITECTURE.md for the map of modules and the receive pipeline.

pub mod admin;
pub mod authorized_keys;
pub mod cli;
pub mod command;
pub mod config;
pub mod gpg;
pub mod hooks;
pub mod metrics;
pub mod receive;
pub mod repo_path;
pub mod sd_notify;
pub mod serve;
pub mod server;
pub mod state;
pub mod store;
pub mod summary;
