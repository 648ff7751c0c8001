//! The dataset's random stream: SplitMix64, fixed by its definition.
//!
//! Expected values in tests and benchmarks are pinned to what a seed generates, so the stream
//! must never change with a dependency upgrade. `rand`'s generators and range sampling do not
//! promise that across versions; these few lines do. Each account and each security draws from
//! its own stream, derived from (seed, purpose, index), so adding a client changes no other
//! client's data and generation order does not matter.

/// What a stream is used for; part of its derivation so two purposes never share numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    Client = 1,
    Account = 2,
    Prices = 3,
    Fx = 4,
}

/// A deterministic pseudo-random stream.
pub(crate) struct Stream {
    state: u64,
}

impl Stream {
    /// The stream for one purpose and index under a seed.
    pub(crate) fn new(seed: u64, purpose: Purpose, index: u64) -> Stream {
        let mut stream = Stream {
            state: seed ^ (purpose as u64).wrapping_mul(0xA076_1D64_78BD_642F),
        };
        stream.state ^= stream.next_u64() ^ index.wrapping_mul(0xE703_7ED1_A0B4_28DB);
        stream
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0). Multiply-shift: the bias is below 2^-32 for the
    /// ranges used here, and no rejection loop makes the stream length depend on the values.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// An index in `0..n` (0 when `n` is 0).
    pub(crate) fn index(&mut self, n: usize) -> usize {
        // usize fits in u64 on every supported target, and the result is below n.
        self.below(n as u64) as usize
    }

    /// A number in `low..=high`; `low` when the range is empty.
    pub(crate) fn between(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        let span = high.abs_diff(low).saturating_add(1);
        low.wrapping_add_unsigned(self.below(span))
    }

    /// True with the given probability in percent.
    pub(crate) fn percent(&mut self, chance: u64) -> bool {
        self.below(100) < chance
    }

    /// Shuffles a slice in place (Fisher-Yates).
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_purpose_and_index_give_the_same_stream() {
        let mut a = Stream::new(7, Purpose::Account, 3);
        let mut b = Stream::new(7, Purpose::Account, 3);
        let mut c = Stream::new(7, Purpose::Account, 4);
        let mut d = Stream::new(7, Purpose::Client, 3);
        let first: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        assert_eq!(first, (0..8).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(first, (0..8).map(|_| c.next_u64()).collect::<Vec<_>>());
        assert_ne!(first, (0..8).map(|_| d.next_u64()).collect::<Vec<_>>());
    }

    #[test]
    fn ranges_stay_within_their_bounds() {
        let mut s = Stream::new(1, Purpose::Prices, 0);
        for _ in 0..10_000 {
            let v = s.between(-3, 5);
            assert!((-3..=5).contains(&v));
            assert!(s.below(10) < 10);
        }
        assert_eq!(s.between(4, 4), 4);
        assert_eq!(s.below(0), 0);
    }
}
