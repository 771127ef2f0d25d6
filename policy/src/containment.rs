//! Comparing what two patterns match: does one match every name the other matches
//! ([`Pattern::contains`]), is there a name both match ([`Pattern::overlaps`])? Used to check
//! that a team admin grants no more than they hold.
//!
//! Names here are what refs and repos can be: one or more non-empty segments joined by `/`
//! (refs are stricter still, which only makes the answers safe over-approximations). Each
//! pattern becomes an NFA over an abstract alphabet: the literal characters of either
//! pattern, one class standing for every other character except `/` (they all behave alike
//! in both patterns, so the abstraction is exact), and `/`. Containment runs one NFA against
//! the subset construction of the other, overlap runs the product of both; a third, tiny
//! automaton keeps to names without empty segments. Both searches are breadth-first and
//! return a shortest witness name.
//!
//! `{user}` stands for any non-empty run of characters within a segment (every user's name
//! at once). To compare one user's view, bind it first with [`Pattern::bind_user`].
//!
//! The work is bounded by [`MAX_STATES`]: hostile patterns (`*a??????…`) have exponential
//! subset constructions. Beyond it the answer is [`TooComplex`], which `contains` reads as
//! "no" and `overlaps` as "yes": the safe answers for a permission check.

use std::collections::{HashSet, VecDeque};

use thiserror::Error;

use crate::pattern::{Pattern, Segment, Tok};

/// Search states explored before a comparison gives up. Real patterns need a few dozen.
pub const MAX_STATES: usize = 20_000;

/// A comparison that would need more than [`MAX_STATES`] states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("patterns too complex to compare (more than {MAX_STATES} states)")]
pub struct TooComplex;

impl Pattern {
    /// Whether every name `other` matches, `self` matches too (`false` when too complex to
    /// tell).
    pub fn contains(&self, other: &Pattern) -> bool {
        matches!(self.uncovered_name(other), Ok(None))
    }

    /// Whether some name matches both (`true` when too complex to tell).
    pub fn overlaps(&self, other: &Pattern) -> bool {
        !matches!(self.common_name(other), Ok(None))
    }

    /// A shortest name that `other` matches and `self` does not; `None` when `self`
    /// contains `other`.
    pub fn uncovered_name(&self, other: &Pattern) -> Result<Option<String>, TooComplex> {
        let alphabet = Alphabet::of(self, other);
        let (outer, inner) = (Nfa::build(self, &alphabet), Nfa::build(other, &alphabet));
        // A node: the inner NFA's state, the outer's subset, inside a segment (not at its start).
        let mut search = Search::new((0u32, vec![0u32], false));
        while let Some((id, (i, outer_set, in_seg))) = search.next() {
            for sym in 0..alphabet.len() {
                let Some(in_seg) = alphabet.segment_step(in_seg, sym) else {
                    continue;
                };
                let targets = &inner.next[i as usize][sym];
                if targets.is_empty() {
                    continue;
                }
                let outer_set = outer.step(&outer_set, sym);
                let outer_accepts = outer_set.iter().any(|&o| outer.accepting[o as usize]);
                for &i in targets {
                    let found = in_seg && inner.accepting[i as usize] && !outer_accepts;
                    if let Some(end) = search.visit(id, sym, (i, outer_set.clone(), in_seg), found)? {
                        return Ok(Some(alphabet.spell(&search.path(end))));
                    }
                }
            }
        }
        Ok(None)
    }

    /// A shortest name both patterns match, if any.
    pub fn common_name(&self, other: &Pattern) -> Result<Option<String>, TooComplex> {
        let alphabet = Alphabet::of(self, other);
        let (a, b) = (Nfa::build(self, &alphabet), Nfa::build(other, &alphabet));
        let mut search = Search::new((0u32, 0u32, false));
        while let Some((id, (x, y, in_seg))) = search.next() {
            for sym in 0..alphabet.len() {
                let Some(in_seg) = alphabet.segment_step(in_seg, sym) else {
                    continue;
                };
                for &x in &a.next[x as usize][sym] {
                    for &y in &b.next[y as usize][sym] {
                        let found = in_seg && a.accepting[x as usize] && b.accepting[y as usize];
                        if let Some(end) = search.visit(id, sym, (x, y, in_seg), found)? {
                            return Ok(Some(alphabet.spell(&search.path(end))));
                        }
                    }
                }
            }
        }
        Ok(None)
    }
}

/// The literal characters of two patterns; symbol `i < lits.len()` is `lits[i]`, then one
/// symbol for every other character but `/`, then `/`.
struct Alphabet {
    lits: Vec<char>,
}

impl Alphabet {
    fn of(a: &Pattern, b: &Pattern) -> Alphabet {
        let mut lits: Vec<char> = [a, b]
            .iter()
            .flat_map(|p| p.segments())
            .flat_map(|s| match s {
                Segment::Any => &[][..],
                Segment::Toks(toks) => &toks[..],
            })
            .filter_map(|t| match t {
                Tok::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        lits.sort_unstable();
        lits.dedup();
        Alphabet { lits }
    }

    fn len(&self) -> usize {
        self.lits.len() + 2
    }

    fn other(&self) -> usize {
        self.lits.len()
    }

    fn slash(&self) -> usize {
        self.lits.len() + 1
    }

    fn symbol(&self, c: char) -> usize {
        self.lits.binary_search(&c).expect("literal in the alphabet")
    }

    /// Keeps to names without empty segments: `in_seg` after reading `sym`, or `None` for a
    /// `/` at the start of a segment. (A name must also end inside a segment.)
    fn segment_step(&self, in_seg: bool, sym: usize) -> Option<bool> {
        if sym == self.slash() {
            in_seg.then_some(false)
        } else {
            Some(true)
        }
    }

    /// A concrete name for a word of symbols.
    fn spell(&self, word: &[usize]) -> String {
        let other = ('a'..='z')
            .chain('A'..='Z')
            .chain('0'..='9')
            .chain(['_', '-', '.'])
            .chain('\u{c0}'..=char::MAX)
            .find(|c| self.lits.binary_search(c).is_err())
            .expect("some character is not a literal");
        word.iter()
            .map(|&sym| match sym {
                s if s < self.other() => self.lits[s],
                s if s == self.other() => other,
                _ => '/',
            })
            .collect()
    }
}

/// What an NFA transition reads.
#[derive(Clone, Copy)]
enum On {
    Symbol(usize),
    /// Any symbol but `/`.
    NonSlash,
    Slash,
}

/// An NFA without ε-moves; state 0 is the start.
struct Nfa {
    /// `next[state][symbol]`: the states after reading `symbol`, sorted.
    next: Vec<Vec<Vec<u32>>>,
    accepting: Vec<bool>,
}

impl Nfa {
    /// States per pattern segment `i`: `start[i]` at the start of a name segment with
    /// segment `i` next, `end[i]` right after a name segment with segment `i` next; `**`
    /// adds one state inside the segments it takes, a token segment one state per token
    /// (`*` is a loop). The name is complete in `end[k]`.
    fn build(pattern: &Pattern, alphabet: &Alphabet) -> Nfa {
        let segments = pattern.segments();
        let k = segments.len();
        let mut b = Builder::default();
        let start: Vec<usize> = (0..=k).map(|_| b.state()).collect();
        let end: Vec<usize> = (0..=k).map(|_| b.state()).collect();
        for (i, segment) in segments.iter().enumerate() {
            b.on(end[i], On::Slash, start[i]);
            match segment {
                Segment::Any => {
                    let inside = b.state();
                    b.eps(start[i], start[i + 1]); // zero segments, at the name's start
                    b.eps(end[i], end[i + 1]); // zero segments, after a '/'
                    b.on(start[i], On::NonSlash, inside);
                    b.on(inside, On::NonSlash, inside);
                    b.eps(inside, end[i]); // one more segment taken; '/' takes another
                }
                Segment::Toks(toks) => {
                    let mut at = start[i];
                    for tok in toks {
                        match tok {
                            Tok::Lit(c) => at = b.then(at, On::Symbol(alphabet.symbol(*c))),
                            Tok::One => at = b.then(at, On::NonSlash),
                            Tok::Star => b.on(at, On::NonSlash, at),
                            Tok::User => {
                                at = b.then(at, On::NonSlash);
                                b.on(at, On::NonSlash, at);
                            }
                        }
                    }
                    b.eps(at, end[i + 1]);
                }
            }
        }
        b.finish(end[k], alphabet)
    }

    /// The states after reading `sym` from any of `states`.
    fn step(&self, states: &[u32], sym: usize) -> Vec<u32> {
        let mut out: Vec<u32> = states
            .iter()
            .flat_map(|&s| self.next[s as usize][sym].iter().copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[derive(Default)]
struct Builder {
    moves: Vec<Vec<(On, usize)>>,
    eps: Vec<Vec<usize>>,
}

impl Builder {
    fn state(&mut self) -> usize {
        self.moves.push(Vec::new());
        self.eps.push(Vec::new());
        self.moves.len() - 1
    }

    fn on(&mut self, from: usize, on: On, to: usize) {
        self.moves[from].push((on, to));
    }

    /// A new state reached from `from` by `on`.
    fn then(&mut self, from: usize, on: On) -> usize {
        let to = self.state();
        self.on(from, on, to);
        to
    }

    fn eps(&mut self, from: usize, to: usize) {
        self.eps[from].push(to);
    }

    /// Removes the ε-moves: a state reads what its ε-closure reads, and accepts when the
    /// closure holds `accept`.
    fn finish(self, accept: usize, alphabet: &Alphabet) -> Nfa {
        let n = self.moves.len();
        let mut next = Vec::with_capacity(n);
        let mut accepting = vec![false; n];
        for (s, accepts) in accepting.iter_mut().enumerate() {
            let mut row = vec![Vec::new(); alphabet.len()];
            for p in self.closure(s) {
                *accepts |= p == accept;
                for &(on, to) in &self.moves[p] {
                    for (sym, targets) in row.iter_mut().enumerate() {
                        let reads = match on {
                            On::Symbol(x) => sym == x,
                            On::NonSlash => sym != alphabet.slash(),
                            On::Slash => sym == alphabet.slash(),
                        };
                        if reads {
                            targets.push(to as u32);
                        }
                    }
                }
            }
            for targets in &mut row {
                targets.sort_unstable();
                targets.dedup();
            }
            next.push(row);
        }
        Nfa { next, accepting }
    }

    fn closure(&self, s: usize) -> Vec<usize> {
        let mut seen = vec![s];
        let mut todo = vec![s];
        while let Some(p) = todo.pop() {
            for &q in &self.eps[p] {
                if !seen.contains(&q) {
                    seen.push(q);
                    todo.push(q);
                }
            }
        }
        seen
    }
}

/// A breadth-first search remembering how each node was reached, to spell the witness.
struct Search<N> {
    seen: HashSet<N>,
    queue: VecDeque<(usize, N)>,
    /// Per node id: the id it was reached from and the symbol read.
    trail: Vec<(usize, usize)>,
}

impl<N: Clone + Eq + std::hash::Hash> Search<N> {
    fn new(start: N) -> Search<N> {
        let mut search = Search {
            seen: HashSet::new(),
            queue: VecDeque::new(),
            trail: vec![(0, 0)],
        };
        search.seen.insert(start.clone());
        search.queue.push_back((0, start));
        search
    }

    fn next(&mut self) -> Option<(usize, N)> {
        self.queue.pop_front()
    }

    /// Records `node`, reached from node `from` by `sym`; returns its id when `found`.
    fn visit(&mut self, from: usize, sym: usize, node: N, found: bool) -> Result<Option<usize>, TooComplex> {
        if self.seen.contains(&node) {
            return Ok(None);
        }
        if self.seen.len() >= MAX_STATES {
            return Err(TooComplex);
        }
        let id = self.trail.len();
        self.trail.push((from, sym));
        if found {
            return Ok(Some(id));
        }
        self.seen.insert(node.clone());
        self.queue.push_back((id, node));
        Ok(None)
    }

    /// The symbols read from the start to node `id`.
    fn path(&self, mut id: usize) -> Vec<usize> {
        let mut word = Vec::new();
        while id != 0 {
            let (from, sym) = self.trail[id];
            word.push(sym);
            id = from;
        }
        word.reverse();
        word
    }
}
