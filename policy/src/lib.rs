//! Pure access-decision model for ostree-gateway.
//!
//! The gateway asks one question per ref update: may `user` (member of
//! `teams`) perform `op` on `ref` in `repo`, given what was verified about
//! the pushed commit? Rules are evaluated gitolite-style — in order, the
//! first matching rule decides, and no match means deny — and every
//! decision carries a trace so operators can see *why*.
//!
//! This crate does no I/O and holds no state: the gateway loads rules and
//! verifies signatures/timestamps, then hands plain facts to [`decide`].

mod containment;
pub mod decide;
pub mod grant;
pub mod names;
pub mod pattern;
pub mod rule;
mod timefmt;

pub use containment::{TooComplex, MAX_STATES};
pub use decide::{decide, Decision, Facts, MatchOutcome, Request, SignatureStatus, TraceStep};
pub use grant::{check_grant, Grant, GrantRefusal};
pub use names::{validate_name, validate_ref_name, NameError};
pub use pattern::{Pattern, PatternError};
pub use rule::{Effect, Op, OpSet, Rule, RuleError, Subject};
