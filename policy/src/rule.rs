//! Rules: who may do which operations on which refs of which repos.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::names::{validate_name, NameError};
use crate::pattern::Pattern;

/// Errors from parsing the textual forms of rule parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Error)]
pub enum RuleError {
    #[error("unknown operation {word:?}: valid operations are create, update, force, delete (or all)")]
    UnknownOp { word: String },
    #[error("empty operation list: give one or more of create, update, force, delete (or all)")]
    EmptyOps,
    #[error("invalid subject {input:?}: use user:NAME, team:NAME or everyone")]
    BadSubject { input: String },
    #[error(transparent)]
    BadSubjectName(#[from] NameError),
    #[error("unknown effect {word:?}: use allow or deny")]
    UnknownEffect { word: String },
}

/// What a push does to a ref. Distinguishing fast-forward from forced
/// updates lets rules protect history (e.g. allow `update` but not `force`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// The ref does not exist yet.
    Create,
    /// Fast-forward: the new commit descends from the current one.
    Update,
    /// Non-fast-forward: history is rewritten.
    Force,
    /// The ref is removed.
    Delete,
}

impl Op {
    /// All operations, in canonical order.
    pub const ALL: [Op; 4] = [Op::Create, Op::Update, Op::Force, Op::Delete];

    /// Lowercase name as used in rules and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Update => "update",
            Op::Force => "force",
            Op::Delete => "delete",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Op {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Op::ALL
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| RuleError::UnknownOp { word: s.to_owned() })
    }
}

/// A set of [`Op`]s, stored as a bitset and written as a comma list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OpSet(u8);

impl OpSet {
    /// The empty set (never produced by [`OpSet::parse`]).
    pub const EMPTY: OpSet = OpSet(0);
    /// Every operation.
    pub const ALL: OpSet = OpSet(0b1111);

    /// Parses `"create, update"`, `"all"`, … Duplicates are harmless; an
    /// empty list is an error because a rule that matches no operation is
    /// almost certainly a mistake.
    pub fn parse(s: &str) -> Result<OpSet, RuleError> {
        let mut set = OpSet::EMPTY;
        for word in s.split(',').map(str::trim) {
            if word.is_empty() {
                continue;
            }
            if word == "all" {
                set = OpSet::ALL;
            } else {
                set.insert(word.parse()?);
            }
        }
        if set.is_empty() {
            return Err(RuleError::EmptyOps);
        }
        Ok(set)
    }

    /// Adds an operation.
    pub fn insert(&mut self, op: Op) {
        self.0 |= op.bit();
    }

    pub fn contains(&self, op: Op) -> bool {
        self.0 & op.bit() != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Members in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = Op> + '_ {
        Op::ALL.into_iter().filter(|op| self.contains(*op))
    }
}

impl FromIterator<Op> for OpSet {
    fn from_iter<I: IntoIterator<Item = Op>>(iter: I) -> Self {
        let mut set = OpSet::EMPTY;
        iter.into_iter().for_each(|op| set.insert(op));
        set
    }
}

impl fmt::Display for OpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, op) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(op.as_str())?;
        }
        Ok(())
    }
}

impl FromStr for OpSet {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OpSet::parse(s)
    }
}

impl TryFrom<String> for OpSet {
    type Error = RuleError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        OpSet::parse(&s)
    }
}

impl From<OpSet> for String {
    fn from(s: OpSet) -> String {
        s.to_string()
    }
}

/// Whom a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Subject {
    User(String),
    Team(String),
    Everyone,
}

impl Subject {
    /// Whether this subject covers `user`, who belongs to `teams`.
    pub fn covers(&self, user: &str, teams: &[String]) -> bool {
        match self {
            Subject::Everyone => true,
            Subject::User(name) => name == user,
            Subject::Team(team) => teams.iter().any(|t| t == team),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(n) => write!(f, "user:{n}"),
            Subject::Team(n) => write!(f, "team:{n}"),
            Subject::Everyone => f.write_str("everyone"),
        }
    }
}

impl FromStr for Subject {
    type Err = RuleError;
    /// Parses `user:NAME`, `team:NAME` or `everyone`; names are validated.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "everyone" {
            return Ok(Subject::Everyone);
        }
        let (kind, name) = match s.split_once(':') {
            Some((kind @ ("user" | "team"), name)) => (kind, name),
            _ => return Err(RuleError::BadSubject { input: s.to_owned() }),
        };
        validate_name(kind, name)?;
        Ok(if kind == "user" {
            Subject::User(name.to_owned())
        } else {
            Subject::Team(name.to_owned())
        })
    }
}

impl TryFrom<String> for Subject {
    type Error = RuleError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Subject> for String {
    fn from(s: Subject) -> String {
        s.to_string()
    }
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        })
    }
}

impl FromStr for Effect {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Effect::Allow),
            "deny" => Ok(Effect::Deny),
            _ => Err(RuleError::UnknownEffect { word: s.to_owned() }),
        }
    }
}

fn default_true() -> bool {
    true
}

/// One access rule. `id` identifies it in messages; `position` orders it
/// (the caller sorts; [`crate::decide`] evaluates in slice order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub id: i64,
    pub position: i64,
    pub subject: Subject,
    pub repo: Pattern,
    pub refs: Pattern,
    pub ops: OpSet,
    pub effect: Effect,
    /// Allowed pushes must carry a valid signature by a trusted key.
    #[serde(default)]
    pub require_signature: bool,
    /// Updates must be strictly newer than the current commit. On by
    /// default to stop replay/downgrade of old commits; a rule may waive it
    /// (e.g. for a branch that is deliberately rolled back).
    #[serde(default = "default_true")]
    pub timestamp_check: bool,
    #[serde(default)]
    pub comment: Option<String>,
}

impl Rule {
    /// A rule with the defaults: no signature required, timestamp check on,
    /// no comment.
    pub fn new(
        id: i64,
        position: i64,
        subject: Subject,
        repo: Pattern,
        refs: Pattern,
        ops: OpSet,
        effect: Effect,
    ) -> Rule {
        Rule {
            id,
            position,
            subject,
            repo,
            refs,
            ops,
            effect,
            require_signature: false,
            timestamp_check: true,
            comment: None,
        }
    }
}

impl fmt::Display for Rule {
    /// One line, e.g. `#3 allow create,update on repo "flathub" ref "app/**"
    /// for team:devs [signature required]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} {} on repo {:?} ref {:?} for {}",
            self.id,
            self.effect,
            self.ops,
            self.repo.as_str(),
            self.refs.as_str(),
            self.subject
        )?;
        if self.require_signature {
            f.write_str(" [signature required]")?;
        }
        if !self.timestamp_check {
            f.write_str(" [timestamp check waived]")?;
        }
        Ok(())
    }
}
