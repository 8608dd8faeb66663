use super::*;
use std::collections::{BTreeMap, BTreeSet};

/// splitmix64: deterministic, so a failing seed reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn advance(wheel: &mut TimingWheel, now_ms: u64) -> Vec<u64> {
    let mut fired = Vec::new();
    wheel.advance(now_ms, &mut fired);
    fired
}

/// Occupancy bits must mirror the slot lists, or `advance` visits stale slots.
fn assert_occupancy_consistent(wheel: &TimingWheel) {
    for list in 0..DUE {
        let bit = wheel.occupied[list / SLOTS] & (1 << (list % SLOTS)) != 0;
        assert_eq!(bit, wheel.heads[list] != NIL, "slot list {list}");
    }
}

#[test]
fn node_is_24_bytes() {
    assert_eq!(std::mem::size_of::<Node>(), 24);
}

#[test]
fn fires_in_deadline_order() {
    let mut wheel = TimingWheel::new(1, 0);
    let deadlines = [500u64, 3, 70_000, 64, 4_096, 63, 1, 262_144, 65, 999_999_999];
    for (id, &d) in deadlines.iter().enumerate() {
        wheel.insert(id as u64, d);
    }
    let fired = advance(&mut wheel, u64::MAX);
    let got: Vec<u64> = fired.iter().map(|&id| deadlines[id as usize]).collect();
    let mut sorted = deadlines.to_vec();
    sorted.sort_unstable();
    assert_eq!(got, sorted);
    assert!(wheel.is_empty());
}

#[test]
fn never_early_at_most_one_tick_late() {
    let mut wheel = TimingWheel::new(10, 1_000);
    wheel.insert(1, 1_105);
    wheel.insert(2, 1_100);
    assert!(advance(&mut wheel, 1_099).is_empty());
    assert_eq!(advance(&mut wheel, 1_100), vec![2]);
    assert!(
        advance(&mut wheel, 1_109).is_empty(),
        "1_105 rounds up to the 1_110 tick"
    );
    assert_eq!(advance(&mut wheel, 1_110), vec![1]);
    assert!(advance(&mut wheel, 5_000).is_empty());
}

#[test]
fn past_deadlines_fire_on_next_advance_in_deadline_order() {
    let mut wheel = TimingWheel::new(10, 10_000);
    assert!(advance(&mut wheel, 20_000).is_empty());
    wheel.insert(1, 19_990);
    wheel.insert(2, 0);
    wheel.insert(3, 20_000);
    wheel.insert(4, 15_000);
    assert_eq!(advance(&mut wheel, 20_000), vec![2, 4, 1, 3]);
}

#[test]
fn rearm_moves_the_timer() {
    let mut wheel = TimingWheel::new(10, 0);
    wheel.insert(7, 100);
    wheel.insert(7, 5_000);
    assert_eq!(wheel.len(), 1);
    assert_eq!(wheel.deadline(7), Some(5_000));
    assert!(advance(&mut wheel, 1_000).is_empty());
    wheel.insert(7, 1_500); // earlier again, and from a higher level into a lower one
    assert_eq!(advance(&mut wheel, 1_500), vec![7]);
    assert!(advance(&mut wheel, 10_000).is_empty());
}

#[test]
fn rearm_of_fired_id() {
    let mut wheel = TimingWheel::new(10, 0);
    wheel.insert(1, 50);
    assert_eq!(advance(&mut wheel, 50), vec![1]);
    assert!(!wheel.contains(1));
    assert_eq!(wheel.deadline(1), None);
    wheel.insert(1, 80);
    assert!(wheel.contains(1));
    assert_eq!(advance(&mut wheel, 80), vec![1]);
}

#[test]
fn cancel_known_and_unknown() {
    let mut wheel = TimingWheel::new(10, 0);
    assert!(!wheel.cancel(42));
    wheel.insert(1, 100);
    wheel.insert(2, 100);
    wheel.insert(3, 0); // in the due list
    assert!(wheel.cancel(1));
    assert!(!wheel.cancel(1));
    assert!(wheel.cancel(3));
    assert_occupancy_consistent(&wheel);
    assert_eq!(wheel.len(), 1);
    assert_eq!(advance(&mut wheel, 1_000), vec![2]);
    assert!(!wheel.cancel(2));
    assert!(wheel.is_empty());
}

#[test]
fn big_jumps_skip_empty_time() {
    // At 1 ms ticks a tick-by-tick walk to these deadlines would never finish.
    let mut wheel = TimingWheel::new(1, 0);
    wheel.insert(1, 3_600_000);
    wheel.insert(2, 86_400_000);
    wheel.insert(3, 1 << 40);
    wheel.insert(4, 1 << 62);
    wheel.insert(5, u64::MAX);
    assert_eq!(advance(&mut wheel, 3_600_000), vec![1]);
    assert_eq!(advance(&mut wheel, (1 << 40) - 1), vec![2]);
    assert_eq!(advance(&mut wheel, 1 << 61), vec![3]);
    assert_eq!(advance(&mut wheel, u64::MAX - 1), vec![4]);
    assert_eq!(advance(&mut wheel, u64::MAX), vec![5]);
    wheel.insert(6, u64::MAX);
    assert_eq!(advance(&mut wheel, u64::MAX), vec![6]);
}

#[test]
fn time_going_backwards_is_no_time_passing() {
    let mut wheel = TimingWheel::new(10, 0);
    assert!(advance(&mut wheel, 1_000).is_empty());
    wheel.insert(1, 1_005);
    wheel.insert(2, 1_100);
    assert!(advance(&mut wheel, 10).is_empty());
    assert!(
        advance(&mut wheel, 1_000).is_empty(),
        "slots stay relative to the latest time"
    );
    assert_eq!(advance(&mut wheel, 1_010), vec![1]);
    assert_eq!(advance(&mut wheel, 1_100), vec![2]);
}

#[test]
fn zero_tick_is_treated_as_one_ms() {
    let mut wheel = TimingWheel::new(0, 0);
    wheel.insert(1, 3);
    assert!(advance(&mut wheel, 2).is_empty());
    assert_eq!(advance(&mut wheel, 3), vec![1]);
}

/// Random inserts, re-arms, cancels, queries and advances against a `BTreeMap` model.
fn check_against_model(seed: u64, tick_ms: u64, origin: u64) {
    let mut rng = Rng(seed);
    let mut wheel = TimingWheel::new(tick_ms, origin);
    let mut model: BTreeMap<u64, u64> = BTreeMap::new();
    let tick_of = |d: u64| d.saturating_sub(origin).div_ceil(tick_ms);
    let mut now = origin;
    for _ in 0..6_000 {
        let id = rng.below(150);
        match rng.below(12) {
            0..=4 => {
                let d = match rng.below(10) {
                    0 => now.saturating_sub(rng.below(5_000)),
                    1 => u64::MAX - rng.below(3),
                    2 => now.saturating_add(rng.below(1 << 40)),
                    3 => now.saturating_add(rng.below(300_000)),
                    _ => now.saturating_add(rng.below(200)),
                };
                wheel.insert(id, d);
                model.insert(id, d);
            }
            5 => assert_eq!(wheel.cancel(id), model.remove(&id).is_some()),
            6 => {
                assert_eq!(wheel.contains(id), model.contains_key(&id));
                assert_eq!(wheel.deadline(id), model.get(&id).copied());
            }
            _ => {
                let step = if rng.below(40) == 0 {
                    rng.below(1 << 36)
                } else {
                    rng.below(3 * tick_ms + 20)
                };
                now = now.saturating_add(step);
                let fired = advance(&mut wheel, now);
                let now_tick = (now - origin) / tick_ms;
                let fired_set: BTreeSet<u64> = fired.iter().copied().collect();
                assert_eq!(fired_set.len(), fired.len(), "duplicate fire");
                let due: BTreeSet<u64> = model
                    .iter()
                    .filter(|&(_, &d)| tick_of(d) <= now_tick)
                    .map(|(&id, _)| id)
                    .collect();
                assert_eq!(fired_set, due, "seed {seed} now {now}");
                for (id, &d) in &model {
                    let fired = fired_set.contains(id);
                    assert!(!fired || d <= now, "early: {id} deadline {d} now {now}");
                    assert!(
                        fired || d.saturating_add(tick_ms) > now,
                        "late: {id} deadline {d} now {now}"
                    );
                }
                let ticks: Vec<u64> = fired.iter().map(|id| tick_of(model[id])).collect();
                assert!(ticks.windows(2).all(|w| w[0] <= w[1]), "out of order: {ticks:?}");
                for id in &fired {
                    model.remove(id);
                }
                assert_occupancy_consistent(&wheel);
            }
        }
        assert_eq!(wheel.len(), model.len());
    }
}

#[test]
fn matches_model_1ms_ticks() {
    check_against_model(1, 1, 0);
    check_against_model(2, 1, 123_456_789);
}

#[test]
fn matches_model_coarse_ticks() {
    check_against_model(3, 10, 1_000_003);
    check_against_model(4, 7, 5);
    check_against_model(5, 1_000, u64::MAX / 2);
}

#[test]
fn hundred_thousand_timers() {
    let mut rng = Rng(99);
    let mut wheel = TimingWheel::new(10, 0);
    let mut deadlines = Vec::with_capacity(100_000);
    for id in 0..100_000u64 {
        let d = rng.below(3_600_000);
        wheel.insert(id << 32, d); // ids that differ only in high bits
        deadlines.push(d);
    }
    for id in (0..100_000u64).step_by(10) {
        assert!(wheel.cancel(id << 32));
    }
    for id in (5..100_000u64).step_by(10) {
        deadlines[id as usize] = rng.below(3_600_000);
        wheel.insert(id << 32, deadlines[id as usize]);
    }
    assert_eq!(wheel.len(), 90_000);
    let mut fired = Vec::new();
    let mut prev_now = 0;
    let mut last_deadline_tick = 0;
    for now in (1_000..=3_600_000).step_by(1_000) {
        let start = fired.len();
        wheel.advance(now, &mut fired);
        for &id in &fired[start..] {
            let d = deadlines[(id >> 32) as usize];
            assert!(d <= now && d + 10 > prev_now, "deadline {d} fired at {now}");
            assert!(d.div_ceil(10) >= last_deadline_tick);
            last_deadline_tick = d.div_ceil(10);
        }
        prev_now = now;
    }
    assert_eq!(fired.len(), 90_000);
    assert!(wheel.is_empty());
    // The freed slab is reused, and one jump fires everything in order.
    for id in 0..100_000u64 {
        wheel.insert(id, 3_600_000 + rng.below(86_400_000));
    }
    let expected: Vec<u64> = (0..100_000)
        .map(|id| wheel.deadline(id).unwrap_or(0).div_ceil(10))
        .collect();
    fired.clear();
    wheel.advance(u64::MAX, &mut fired);
    assert_eq!(fired.len(), 100_000);
    assert!(fired
        .windows(2)
        .all(|w| expected[w[0] as usize] <= expected[w[1] as usize]));
}
