//! Choosing which open gates are mixed when a room caps its contributors at the loudest K.

use std::cmp::Ordering;

/// A participant whose gate is open this tick.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Candidate {
    /// Slot index of the participant.
    pub(crate) index: u32,
    /// Moderators rank above everyone else.
    pub(crate) moderator: bool,
    /// Smoothed energy, raised for last tick's contributors so the set does not flap.
    pub(crate) score: f32,
}

fn louder_first(a: &Candidate, b: &Candidate) -> Ordering {
    b.moderator
        .cmp(&a.moderator)
        .then_with(|| b.score.total_cmp(&a.score))
        .then_with(|| a.index.cmp(&b.index))
}

/// Moves the `max` best candidates to the front and returns them; `max == 0` keeps everyone.
/// O(n) on average and allocation-free.
pub(crate) fn select_loudest(candidates: &mut [Candidate], max: usize) -> &[Candidate] {
    if max == 0 || candidates.len() <= max {
        return candidates;
    }
    candidates.select_nth_unstable_by(max - 1, louder_first);
    &candidates[..max]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(index: u32, score: f32, moderator: bool) -> Candidate {
        Candidate {
            index,
            moderator,
            score,
        }
    }

    #[test]
    fn keeps_the_loudest_and_puts_moderators_first() {
        let mut list = vec![
            c(0, 10.0, false),
            c(1, 500.0, false),
            c(2, 1.0, true),
            c(3, 300.0, false),
            c(4, 0.0, false),
        ];
        let mut chosen: Vec<u32> = select_loudest(&mut list, 3)
            .iter()
            .map(|c| c.index)
            .collect();
        chosen.sort_unstable();
        assert_eq!(chosen, vec![1, 2, 3]);
    }

    #[test]
    fn zero_means_unlimited() {
        let mut list = vec![c(0, 1.0, false), c(1, 2.0, false)];
        assert_eq!(select_loudest(&mut list, 0).len(), 2);
    }
}
