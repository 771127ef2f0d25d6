//! Admin commands, one module per command group. Each takes the opened store and state dir.

pub mod audit;
pub mod gpg_key;
pub mod key;
pub mod output;
pub mod policy;
pub mod repo;
pub mod rule;
pub mod team;
pub mod user;

use crate::state::StateDir;
use crate::store::Store;

/// What every admin command works on.
pub struct Admin {
    pub store: Store,
    pub state: StateDir,
}
