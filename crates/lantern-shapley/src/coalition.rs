//! Coalitions of players as `u64` bitsets.

use std::fmt;

use crate::error::{Result, ShapleyError};

/// Largest number of players a [`Coalition`] can represent.
pub const MAX_PLAYERS: usize = 63;

/// A set of players, stored as a bitset: bit `i` is set when player `i` is
/// present. Supports up to [`MAX_PLAYERS`] players.
///
/// ```
/// use lantern_shapley::Coalition;
/// let c = Coalition::empty().with(0).with(2);
/// assert!(c.contains(2) && !c.contains(1));
/// assert_eq!(c.len(), 2);
/// assert_eq!(c.players().collect::<Vec<_>>(), vec![0, 2]);
/// assert_eq!(Coalition::full(3).without(1), c);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Coalition(u64);

impl Coalition {
    /// The empty coalition.
    pub const fn empty() -> Self {
        Coalition(0)
    }

    /// The grand coalition of `n` players (`n` is clamped to [`MAX_PLAYERS`]).
    pub const fn full(n: usize) -> Self {
        let n = if n > MAX_PLAYERS { MAX_PLAYERS } else { n };
        Coalition((1u64 << n) - 1)
    }

    /// Builds a coalition from raw bits.
    pub const fn from_bits(bits: u64) -> Self {
        Coalition(bits)
    }

    /// Builds a coalition from player indices, checking that each is `< n`.
    pub fn from_players(n: usize, players: impl IntoIterator<Item = usize>) -> Result<Self> {
        check_n_players(n)?;
        let mut c = Coalition::empty();
        for p in players {
            if p >= n {
                return Err(ShapleyError::InvalidArgument(format!(
                    "player index {p} out of range for {n} players"
                )));
            }
            c = c.with(p);
        }
        Ok(c)
    }

    /// The raw bits.
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Whether player `i` is present.
    pub const fn contains(self, i: usize) -> bool {
        self.0 & bit(i) != 0
    }

    /// This coalition with player `i` added (indices `>= 64` are ignored).
    pub const fn with(self, i: usize) -> Self {
        Coalition(self.0 | bit(i))
    }

    /// This coalition with player `i` removed (indices `>= 64` are ignored).
    pub const fn without(self, i: usize) -> Self {
        Coalition(self.0 & !bit(i))
    }

    /// The complement within `n` players.
    pub const fn complement(self, n: usize) -> Self {
        Coalition(!self.0 & Coalition::full(n).0)
    }

    /// Number of players present.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Whether no player is present.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Indices of the present players, ascending.
    pub fn players(self) -> impl Iterator<Item = usize> {
        let bits = self.0;
        (0..64).filter(move |&i| bits & (1u64 << i) != 0)
    }
}

impl fmt::Display for Coalition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (k, p) in self.players().enumerate() {
            if k > 0 {
                write!(f, ",")?;
            }
            write!(f, "{p}")?;
        }
        write!(f, "}}")
    }
}

/// The bit of player `i`, or 0 when `i` does not fit in a `u64`.
const fn bit(i: usize) -> u64 {
    if i < 64 {
        1u64 << i
    } else {
        0
    }
}

/// Errors unless `1 <= n <= MAX_PLAYERS`.
pub(crate) fn check_n_players(n: usize) -> Result<()> {
    if n == 0 {
        Err(ShapleyError::NoPlayers)
    } else if n > MAX_PLAYERS {
        Err(ShapleyError::TooManyPlayers {
            n,
            max: MAX_PLAYERS,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_ops() {
        let c = Coalition::from_players(5, [1, 3]).unwrap();
        assert_eq!(c.bits(), 0b1010);
        assert_eq!(c.complement(5).bits(), 0b10101);
        assert_eq!(c.to_string(), "{1,3}");
        assert!(Coalition::from_players(3, [3]).is_err());
        assert_eq!(Coalition::full(63).len(), 63);
        assert!(Coalition::empty().is_empty());
    }

    #[test]
    fn player_count_limits() {
        assert!(matches!(check_n_players(0), Err(ShapleyError::NoPlayers)));
        assert!(matches!(
            check_n_players(64),
            Err(ShapleyError::TooManyPlayers { .. })
        ));
        assert!(check_n_players(63).is_ok());
    }
}
