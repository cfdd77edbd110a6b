//! Bridges: a parallel pair is either one document through a template ("with
//! bridges") or two documents placed far apart in the output ("without bridges").
//! Both orders draw on the same seeded permutations of the same mono documents and pairs.
use crate::error::{Error, Result};

/// A seeded SplitMix64: small, fast, and fixed here so outputs never change with a
/// dependency's version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..bound` (Lemire's multiply-shift).
    pub fn below(&mut self, bound: usize) -> usize {
        ((self.next_u64() as u128 * bound as u128) >> 64) as usize
    }
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Checks that a template has exactly one `{en}` and one `{xx}`.
pub fn check_template(template: &str, key: &str) -> Result<()> {
    for slot in ["{en}", "{xx}"] {
        if template.matches(slot).count() != 1 {
            return Err(Error::config(key, format!("template {template:?} must contain {slot} exactly once")));
        }
    }
    Ok(())
}

pub fn render(template: &str, en: &str, xx: &str) -> String {
    let (before, after) = template.split_once("{en}").expect("checked template");
    if let Some((mid, end)) = after.split_once("{xx}") {
        [before, en, mid, xx, end].concat()
    } else {
        let (pre, mid) = before.split_once("{xx}").expect("checked template");
        [pre, xx, mid, en, after].concat()
    }
}

/// One output document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Mono(u32),
    Bridged(u32),
    En(u32),
    Xx(u32),
}

/// Interleaves `a` into `b` at seeded random positions, keeping each one's order.
fn interleave(a: Vec<Unit>, b: Vec<Unit>, rng: &mut Rng) -> Vec<Unit> {
    let mut from_a: Vec<bool> = std::iter::repeat_n(true, a.len()).chain(std::iter::repeat_n(false, b.len())).collect();
    rng.shuffle(&mut from_a);
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    from_a.into_iter().map(|t| if t { a.next() } else { b.next() }.unwrap()).collect()
}

fn permutation(n: usize, rng: &mut Rng) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    rng.shuffle(&mut p);
    p
}

/// With bridges: mono documents and bridged pairs in seeded random order.
pub fn order_with(mono: usize, pairs: usize, seed: u64) -> Vec<Unit> {
    let mut rng = Rng::new(seed);
    let m = permutation(mono, &mut rng).into_iter().map(Unit::Mono).collect();
    let p = permutation(pairs, &mut rng).into_iter().map(Unit::Bridged).collect();
    interleave(m, p, &mut rng)
}

/// Without bridges: the pairs in a seeded order P; English halves in order P and
/// the other halves in P rotated by half its length, alternating, then interleaved
/// with the mono documents. The two halves of every pair lie at least `pairs - 1`
/// documents apart.
pub fn order_without(mono: usize, pairs: usize, seed: u64) -> Vec<Unit> {
    let mut rng = Rng::new(seed);
    let m = permutation(mono, &mut rng).into_iter().map(Unit::Mono).collect();
    let p = permutation(pairs, &mut rng);
    let half = pairs / 2;
    let halves = (0..pairs).flat_map(|k| [Unit::En(p[k]), Unit::Xx(p[(k + half) % pairs])]).collect();
    interleave(m, halves, &mut rng)
}

/// The smallest distance (in documents) between the two halves of any pair.
pub fn min_pair_distance(order: &[Unit], pairs: usize) -> Option<usize> {
    let mut en = vec![usize::MAX; pairs];
    let mut xx = vec![usize::MAX; pairs];
    for (pos, u) in order.iter().enumerate() {
        match *u {
            Unit::En(i) => en[i as usize] = pos,
            Unit::Xx(i) => xx[i as usize] = pos,
            _ => {}
        }
    }
    en.iter().zip(&xx).map(|(&a, &b)| a.abs_diff(b)).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert_eq!(render("English: {en} Chinese: {xx}", "Hi.", "你好。"), "English: Hi. Chinese: 你好。");
        assert_eq!(render("{xx} = {en}", "Hi.", "你好。"), "你好。 = Hi.");
        assert!(check_template("English: {en}", "k").unwrap_err().to_string().contains("{xx}"));
        assert!(check_template("{en} {en} {xx}", "k").is_err());
    }

    #[test]
    fn both_settings_hold_the_same_units() {
        let with = order_with(50, 30, 7);
        let without = order_without(50, 30, 7);
        let monos = |o: &[Unit]| {
            let mut v: Vec<u32> = o.iter().filter_map(|u| if let Unit::Mono(i) = u { Some(*i) } else { None }).collect();
            v.sort();
            v
        };
        assert_eq!(monos(&with), (0..50).collect::<Vec<_>>());
        assert_eq!(monos(&without), monos(&with));
        for i in 0..30 {
            assert_eq!(with.iter().filter(|&&u| u == Unit::Bridged(i)).count(), 1);
            assert_eq!(without.iter().filter(|&&u| u == Unit::En(i)).count(), 1);
            assert_eq!(without.iter().filter(|&&u| u == Unit::Xx(i)).count(), 1);
        }
    }

    #[test]
    fn halves_are_far_apart() {
        for (mono, pairs, seed) in [(0, 2, 1), (10, 101, 2), (1000, 500, 3), (5, 4000, 4)] {
            let order = order_without(mono, pairs, seed);
            let d = min_pair_distance(&order, pairs).unwrap();
            assert!(d + 1 >= pairs, "pairs {pairs}: min distance {d}");
        }
        // A plain shuffle would put some pair's halves close together.
        let mut rng = Rng::new(5);
        let mut naive: Vec<Unit> = (0..4000).flat_map(|i| [Unit::En(i), Unit::Xx(i)]).collect();
        rng.shuffle(&mut naive);
        assert!(min_pair_distance(&naive, 4000).unwrap() < 100);
    }

    #[test]
    fn same_seed_same_order_other_seed_other_order() {
        assert_eq!(order_without(100, 100, 9), order_without(100, 100, 9));
        assert_ne!(order_without(100, 100, 9), order_without(100, 100, 10));
    }
}
