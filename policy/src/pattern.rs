//! Glob patterns over `/`-separated names (refs and repos).
//!
//! Syntax, per segment: literal `A-Za-z0-9 . _ -`, `*` (any run within the
//! segment), `?` (one character), `{user}` (the pushing user's name, matched
//! literally). A segment that is exactly `**` matches zero or more whole
//! segments. Anything else is rejected at parse time so that a typo in a
//! rule fails loudly instead of silently matching nothing.
//!
//! Matching is a dynamic program over (pattern segment, name segment) pairs
//! with a star-backtracking matcher inside each segment, so its cost is
//! polynomial in the input sizes — hostile patterns cannot blow it up.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The placeholder replaced by the pushing user's name.
const USER_PLACEHOLDER: &str = "{user}";

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Error)]
pub enum PatternError {
    #[error("empty pattern: use ** to match everything")]
    Empty,
    #[error("invalid pattern {pattern:?}: empty segment (leading, trailing or doubled '/')")]
    EmptySegment { pattern: String },
    #[error(
        "invalid pattern {pattern:?}: '**' must be a whole segment (like a/**/b); \
         use '*' inside a segment"
    )]
    MixedDoubleStar { pattern: String },
    #[error("invalid pattern {pattern:?}: braces are only allowed as {{user}}")]
    BadBrace { pattern: String },
    #[error(
        "invalid pattern {pattern:?}: character {ch:?} is not allowed \
         (use A-Z a-z 0-9 . _ - / * ? ** and {{user}})"
    )]
    BadChar { pattern: String, ch: char },
}

/// One element of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `{user}`
    User,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// `**`: zero or more whole segments.
    Any,
    Toks(Vec<Tok>),
}

/// A parsed glob pattern; keeps its source text for display and storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pattern {
    source: String,
    #[serde(skip)]
    segments: Vec<Segment>,
}

impl Pattern {
    /// Parses and validates a pattern.
    pub fn parse(s: &str) -> Result<Pattern, PatternError> {
        if s.is_empty() {
            return Err(PatternError::Empty);
        }
        let segments = s
            .split('/')
            .map(|seg| parse_segment(s, seg))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Pattern {
            source: s.to_owned(),
            segments,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    fn uses_user(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Toks(t) if t.contains(&Tok::User)))
    }

    /// This pattern as it applies to `user`: `{user}` replaced by the name's characters as
    /// literals, so that it matches exactly what [`Pattern::matches`] matches for that user.
    /// `None` when it can match nothing for that user (an empty name or one with `/`).
    pub fn bind_user(&self, user: &str) -> Option<Pattern> {
        if !self.uses_user() {
            return Some(self.clone());
        }
        if user.is_empty() || user.contains('/') {
            return None;
        }
        let chars: Vec<char> = user.chars().collect();
        Some(Pattern {
            source: self.source.replace(USER_PLACEHOLDER, user),
            segments: self
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Any => Segment::Any,
                    Segment::Toks(t) => Segment::Toks(expand_user(t, &chars)),
                })
                .collect(),
        })
    }

    /// Whether `candidate` (a ref or repo name) matches, with `{user}` bound
    /// to `user`.
    ///
    /// A pattern that mentions `{user}` never matches for an empty user or
    /// one containing `/`: such a name could otherwise widen a per-user
    /// namespace into someone else's.
    pub fn matches(&self, candidate: &str, user: &str) -> bool {
        if candidate.is_empty() {
            return false;
        }
        if self.uses_user() && (user.is_empty() || user.contains('/')) {
            return false;
        }
        let user: Vec<char> = user.chars().collect();
        let pat: Vec<Option<Vec<Tok>>> = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Any => None,
                Segment::Toks(t) => Some(expand_user(t, &user)),
            })
            .collect();
        let cand: Vec<Vec<char>> = candidate.split('/').map(|s| s.chars().collect()).collect();
        match_segments(&pat, &cand)
    }
}

fn parse_segment(pattern: &str, seg: &str) -> Result<Segment, PatternError> {
    let err_pat = || pattern.to_owned();
    if seg.is_empty() {
        return Err(PatternError::EmptySegment { pattern: err_pat() });
    }
    if seg == "**" {
        return Ok(Segment::Any);
    }
    if seg.contains("**") {
        return Err(PatternError::MixedDoubleStar { pattern: err_pat() });
    }
    let mut toks = Vec::with_capacity(seg.len());
    let mut rest = seg;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix(USER_PLACEHOLDER) {
            toks.push(Tok::User);
            rest = after;
            continue;
        }
        toks.push(match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            '{' | '}' => return Err(PatternError::BadBrace { pattern: err_pat() }),
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') => Tok::Lit(c),
            ch => {
                return Err(PatternError::BadChar {
                    pattern: err_pat(),
                    ch,
                })
            }
        });
        rest = &rest[c.len_utf8()..];
    }
    Ok(Segment::Toks(toks))
}

/// Replaces `{user}` with the user's characters as literals, so metacharacters
/// in a user name can never act as wildcards.
fn expand_user(toks: &[Tok], user: &[char]) -> Vec<Tok> {
    let mut out = Vec::with_capacity(toks.len() + user.len());
    for &t in toks {
        match t {
            Tok::User => out.extend(user.iter().map(|&c| Tok::Lit(c))),
            t => out.push(t),
        }
    }
    out
}

/// Segment-level DP: `ok[i][j]` = pattern segments `i..` match name
/// segments `j..`. `None` is a `**` segment. O(P·C) segment comparisons.
fn match_segments(pat: &[Option<Vec<Tok>>], cand: &[Vec<char>]) -> bool {
    let (p, c) = (pat.len(), cand.len());
    let width = c + 1;
    let mut ok = vec![false; (p + 1) * width];
    ok[p * width + c] = true;
    for i in (0..p).rev() {
        for j in (0..=c).rev() {
            ok[i * width + j] = match &pat[i] {
                None => ok[(i + 1) * width + j] || (j < c && ok[i * width + j + 1]),
                Some(toks) => j < c && ok[(i + 1) * width + j + 1] && match_segment(toks, &cand[j]),
            };
        }
    }
    ok[0]
}

/// Classic single-backtrack-point wildcard matcher: on mismatch, retry from
/// the most recent `*` consuming one more character. O(len(p)·len(s)).
fn match_segment(pat: &[Tok], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match pat.get(pi) {
            Some(Tok::Star) => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(Tok::One) => {
                pi += 1;
                si += 1;
            }
            Some(Tok::Lit(c)) if *c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    pat[pi..].iter().all(|t| *t == Tok::Star)
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for Pattern {
    type Err = PatternError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::parse(s)
    }
}

impl TryFrom<String> for Pattern {
    type Error = PatternError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Pattern::parse(&s)
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> String {
        p.source
    }
}
