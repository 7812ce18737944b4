//! Cooperative games: the [`Game`] trait, closure games and the memoising
//! [`MemoGame`] wrapper that every estimator evaluates through.

use std::collections::{HashMap, HashSet};

use crate::coalition::{check_n_players, Coalition};
use crate::error::{Result, ShapleyError};

/// Default number of coalitions passed to [`Game::evaluate`] per call.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// A cooperative game `v: 2^N -> R` over `n` named players.
///
/// Evaluation is batched so that expensive games (language-model prompts) can
/// run many coalitions in one forward pass. Implementations must return exactly
/// one value per requested coalition, in order.
pub trait Game {
    /// Number of players `n` (1 to [`MAX_PLAYERS`](crate::MAX_PLAYERS)).
    fn n_players(&self) -> usize;

    /// Human-readable player names, `n_players()` of them.
    fn player_names(&self) -> Vec<String>;

    /// The worth `v(S)` of each coalition, in order.
    fn evaluate(&mut self, coalitions: &[Coalition]) -> Result<Vec<f64>>;
}

impl<G: Game + ?Sized> Game for &mut G {
    fn n_players(&self) -> usize {
        (**self).n_players()
    }
    fn player_names(&self) -> Vec<String> {
        (**self).player_names()
    }
    fn evaluate(&mut self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        (**self).evaluate(coalitions)
    }
}

impl<G: Game + ?Sized> Game for Box<G> {
    fn n_players(&self) -> usize {
        (**self).n_players()
    }
    fn player_names(&self) -> Vec<String> {
        (**self).player_names()
    }
    fn evaluate(&mut self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        (**self).evaluate(coalitions)
    }
}

/// A game defined by a closure `Fn(Coalition) -> f64`, handy for synthetic
/// games, tests and documentation.
///
/// ```
/// use lantern_shapley::{Coalition, FnGame, Game};
/// // Additive game: v(S) = sum of the weights of the members.
/// let w = [1.0, 2.0, 3.0];
/// let mut g = FnGame::new(3, move |s: Coalition| s.players().map(|i| w[i]).sum());
/// assert_eq!(g.player_names(), vec!["p0", "p1", "p2"]);
/// assert_eq!(g.evaluate(&[Coalition::full(3)]).unwrap(), vec![6.0]);
/// ```
pub struct FnGame<F> {
    names: Vec<String>,
    f: F,
}

impl<F: FnMut(Coalition) -> f64> FnGame<F> {
    /// A game over `n` players named `p0`, `p1`, ...
    pub fn new(n: usize, f: F) -> Self {
        FnGame {
            names: (0..n).map(|i| format!("p{i}")).collect(),
            f,
        }
    }

    /// A game whose players carry the given names.
    pub fn with_names(names: Vec<String>, f: F) -> Self {
        FnGame { names, f }
    }
}

impl<F: FnMut(Coalition) -> f64> Game for FnGame<F> {
    fn n_players(&self) -> usize {
        self.names.len()
    }
    fn player_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn evaluate(&mut self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        Ok(coalitions.iter().map(|&c| (self.f)(c)).collect())
    }
}

/// Memoising wrapper: each distinct coalition is evaluated by the inner game
/// at most once, in batches of at most `batch_size` coalitions.
///
/// [`MemoGame::evaluations`] counts the distinct coalitions evaluated so far,
/// i.e. the real cost in model evaluations. The wrapper also validates the
/// inner game's answers (length and finiteness).
///
/// ```
/// use lantern_shapley::{Coalition, FnGame, MemoGame};
/// let mut g = MemoGame::new(FnGame::new(2, |s: Coalition| s.len() as f64), 8).unwrap();
/// let c = Coalition::full(2);
/// assert_eq!(g.values(&[c, c, Coalition::empty()]).unwrap(), vec![2.0, 2.0, 0.0]);
/// assert_eq!(g.values(&[c]).unwrap(), vec![2.0]);
/// assert_eq!(g.evaluations(), 2);
/// ```
pub struct MemoGame<G> {
    inner: G,
    cache: HashMap<Coalition, f64>,
    batch_size: usize,
    evaluations: usize,
    calls: usize,
}

impl<G: Game> MemoGame<G> {
    /// Wraps `inner`; errors if `batch_size` is 0 or the game has an
    /// unsupported number of players.
    pub fn new(inner: G, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(ShapleyError::InvalidArgument(
                "batch size must be at least 1".into(),
            ));
        }
        check_n_players(inner.n_players())?;
        let names = inner.player_names();
        if names.len() != inner.n_players() {
            return Err(ShapleyError::LengthMismatch {
                what: "game player_names",
                expected: inner.n_players(),
                got: names.len(),
            });
        }
        Ok(MemoGame {
            inner,
            cache: HashMap::new(),
            batch_size,
            evaluations: 0,
            calls: 0,
        })
    }

    /// Number of distinct coalitions evaluated by the inner game.
    pub fn evaluations(&self) -> usize {
        self.evaluations
    }

    /// Number of batched calls made to the inner game.
    pub fn batches(&self) -> usize {
        self.calls
    }

    /// Whether `c` has already been evaluated.
    pub fn contains(&self, c: Coalition) -> bool {
        self.cache.contains_key(&c)
    }

    /// The cached value of `c`, if evaluated.
    pub fn cached(&self, c: Coalition) -> Option<f64> {
        self.cache.get(&c).copied()
    }

    /// The wrapped game.
    pub fn inner(&self) -> &G {
        &self.inner
    }

    /// Unwraps the inner game.
    pub fn into_inner(self) -> G {
        self.inner
    }

    /// Values of `coalitions` (duplicates allowed), evaluating only those not
    /// yet cached, first-seen order, in batches of `batch_size`.
    pub fn values(&mut self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        let mut seen = HashSet::new();
        let missing: Vec<Coalition> = coalitions
            .iter()
            .copied()
            .filter(|c| !self.cache.contains_key(c) && seen.insert(*c))
            .collect();
        let n = self.inner.n_players();
        let full = Coalition::full(n).bits();
        for chunk in missing.chunks(self.batch_size) {
            if let Some(bad) = chunk.iter().find(|c| c.bits() & !full != 0) {
                return Err(ShapleyError::InvalidArgument(format!(
                    "coalition {bad} has players outside 0..{n}"
                )));
            }
            let vals = self.inner.evaluate(chunk)?;
            self.calls += 1;
            if vals.len() != chunk.len() {
                return Err(ShapleyError::LengthMismatch {
                    what: "game",
                    expected: chunk.len(),
                    got: vals.len(),
                });
            }
            for (&c, &v) in chunk.iter().zip(&vals) {
                if !v.is_finite() {
                    return Err(ShapleyError::NonFiniteValue {
                        coalition: c.bits(),
                        value: v,
                    });
                }
                self.cache.insert(c, v);
            }
            self.evaluations += chunk.len();
        }
        Ok(coalitions.iter().map(|c| self.cache[c]).collect())
    }

    /// Value of a single coalition (memoised).
    pub fn value(&mut self, c: Coalition) -> Result<f64> {
        Ok(self.values(&[c])?[0])
    }
}

impl<G: Game> Game for MemoGame<G> {
    fn n_players(&self) -> usize {
        self.inner.n_players()
    }
    fn player_names(&self) -> Vec<String> {
        self.inner.player_names()
    }
    fn evaluate(&mut self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        self.values(coalitions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Bad(usize);
    impl Game for Bad {
        fn n_players(&self) -> usize {
            2
        }
        fn player_names(&self) -> Vec<String> {
            vec!["a".into(), "b".into()]
        }
        fn evaluate(&mut self, c: &[Coalition]) -> Result<Vec<f64>> {
            match self.0 {
                0 => Ok(vec![1.0; c.len() + 1]),
                _ => Ok(vec![f64::NAN; c.len()]),
            }
        }
    }

    #[test]
    fn validates_inner_answers() {
        let mut g = MemoGame::new(Bad(0), 4).unwrap();
        assert!(matches!(
            g.values(&[Coalition::empty()]),
            Err(ShapleyError::LengthMismatch { .. })
        ));
        let mut g = MemoGame::new(Bad(1), 4).unwrap();
        assert!(matches!(
            g.values(&[Coalition::empty()]),
            Err(ShapleyError::NonFiniteValue { .. })
        ));
        assert!(MemoGame::new(Bad(1), 0).is_err());
        let mut g = MemoGame::new(FnGame::new(2, |_| 0.0), 4).unwrap();
        assert!(g.values(&[Coalition::from_bits(0b100)]).is_err());
    }

    #[test]
    fn batches_respect_size() {
        let mut g = MemoGame::new(FnGame::new(4, |c: Coalition| c.len() as f64), 3).unwrap();
        let all: Vec<_> = (0..16).map(Coalition::from_bits).collect();
        g.values(&all).unwrap();
        assert_eq!(g.evaluations(), 16);
        assert_eq!(g.batches(), 6);
        g.values(&all).unwrap();
        assert_eq!(g.batches(), 6);
    }
}
