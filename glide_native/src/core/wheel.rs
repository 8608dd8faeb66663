//! Hierarchical timing wheel: heartbeats, auth timeouts and ack timers for every connection of a gateway.
//!
//! Sans-I/O: the caller passes monotonic milliseconds to [`TimingWheel::advance`] and chooses the `u64` ids.
//!
//! Layout: 11 levels of 64 slots, each level resolving 6 bits of the tick, so every `u64` tick has a slot and
//! no overflow list is needed. A timer sits at the level of the highest 6-bit group in which its tick differs
//! from the wheel's current tick. Hence all timers of a level lie in the current block of that level, the
//! lowest non-empty level holds the earliest timers, and the lowest set bit of a level's occupancy bitmap is
//! its earliest slot. `advance` jumps from occupied slot to occupied slot (`trailing_zeros`), firing level-0
//! slots and redistributing higher ones one level down; empty stretches cost nothing however far time jumps.
//!
//! Memory: an armed timer costs one 24-byte slab node (id, deadline, two `u32` links) plus one 16-byte entry
//! and one control byte in the id index, 41 bytes in all, plus the spare capacity of those two tables (both
//! grow by doubling and keep their capacity for reuse). The fixed part is ~3 KiB of slot heads.

use std::fmt;

use super::id_map::IdMap;

/// Bits of the tick resolved by one level.
const LEVEL_BITS: u32 = 6;
const SLOTS: usize = 1 << LEVEL_BITS;
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// ceil(64 / 6): enough levels for any `u64` tick.
const LEVELS: usize = 11;
/// List of timers already due when armed; they fire on the next `advance`.
const DUE: usize = LEVELS * SLOTS;
const NIL: u32 = u32::MAX;
/// A node's `prev` at or above this is `HEAD | list`: the node is first in that list.
const HEAD: u32 = 1 << 31;
/// Node indices stay below `HEAD`, so they never collide with a head tag or `NIL`.
const MAX_NODES: usize = HEAD as usize;

/// One armed timer. Free nodes chain through `next`.
#[derive(Clone, Copy)]
struct Node {
    id: u64,
    deadline_ms: u64,
    next: u32,
    prev: u32,
}

/// A hierarchical timing wheel keyed by caller-chosen `u64` ids.
///
/// A timer fires in the first [`advance`](Self::advance) whose `now_ms` reaches its deadline rounded up to
/// the tick grid (`origin + k * tick_ms`): never before its deadline, at most one tick after it. Insert,
/// re-arm and cancel are O(1); `advance` is amortised O(1) per timer (each timer moves down at most 11
/// levels) plus O(1) per occupied slot passed, independent of how much time elapsed.
pub struct TimingWheel {
    tick_ms: u64,
    origin_ms: u64,
    /// Last tick processed: every timer with a tick at or before it has fired or sits in `DUE`.
    elapsed: u64,
    /// First node of every slot list (`level * SLOTS + slot`), then the `DUE` list.
    heads: Vec<u32>,
    /// Bit `s` of `occupied[l]` is set iff slot `s` of level `l` is non-empty.
    occupied: [u64; LEVELS],
    nodes: Vec<Node>,
    free: u32,
    index: IdMap<u32>,
    /// Reused buffer for sorting the `DUE` list by deadline.
    due_scratch: Vec<(u64, u64)>,
}

impl TimingWheel {
    /// Creates an empty wheel with `tick_ms` granularity (0 is treated as 1) whose clock starts at `now_ms`.
    ///
    /// Deadlines before `now_ms` are simply past: they fire on the next `advance`.
    pub fn new(tick_ms: u64, now_ms: u64) -> Self {
        Self {
            tick_ms: tick_ms.max(1),
            origin_ms: now_ms,
            elapsed: 0,
            heads: vec![NIL; DUE + 1],
            occupied: [0; LEVELS],
            nodes: Vec::new(),
            free: NIL,
            index: IdMap::default(),
            due_scratch: Vec::new(),
        }
    }

    /// Arms timer `id` to fire at `deadline_ms`; an already armed `id` is moved to the new deadline. O(1).
    ///
    /// A deadline at or before the current tick fires on the next `advance`.
    ///
    /// # Panics
    ///
    /// Only if 2^31 timers are armed at once (about 80 GB of memory), like `Vec::push` on capacity overflow.
    pub fn insert(&mut self, id: u64, deadline_ms: u64) {
        let idx = if let Some(&idx) = self.index.get(&id) {
            self.unlink(idx);
            self.nodes[idx as usize].deadline_ms = deadline_ms;
            idx
        } else {
            let idx = self.alloc(id, deadline_ms);
            self.index.insert(id, idx);
            idx
        };
        self.place(idx);
    }

    /// Disarms timer `id`. Returns whether it was armed. O(1).
    pub fn cancel(&mut self, id: u64) -> bool {
        match self.index.remove(&id) {
            Some(idx) => {
                self.unlink(idx);
                self.release(idx);
                true
            }
            None => false,
        }
    }

    /// Advances the clock to `now_ms` and appends to `expired` the id of every timer that is due, earliest
    /// deadline first (timers rounded to the same tick come in no particular order). Fired timers are
    /// disarmed.
    ///
    /// `now_ms` should not decrease; an earlier value is treated as no time passing (timers already due
    /// still fire).
    pub fn advance(&mut self, now_ms: u64, expired: &mut Vec<u64>) {
        let now_tick = now_ms.saturating_sub(self.origin_ms) / self.tick_ms;
        // Due timers have ticks at or before `elapsed`, earlier than anything still in the slots.
        self.fire_due(expired);
        while let Some((level, slot)) = self.earliest_slot() {
            let start = slot_start(self.elapsed, level, slot);
            if start > now_tick {
                break;
            }
            self.elapsed = start;
            let list = level * SLOTS + slot;
            let mut idx = std::mem::replace(&mut self.heads[list], NIL);
            self.occupied[level] &= !(1 << slot);
            while idx != NIL {
                let node = self.nodes[idx as usize];
                // A level-0 slot is exactly one tick: everything in it is due. Higher slots span many ticks:
                // fire what is due at the slot's first tick, move the rest to a lower level.
                if level == 0 || self.tick_of(node.deadline_ms) <= start {
                    self.index.remove(&node.id);
                    self.release(idx);
                    expired.push(node.id);
                } else {
                    self.place(idx);
                }
                idx = node.next;
            }
        }
        // Every slot before `now_tick` is empty, so the remaining timers keep their levels (see module doc).
        self.elapsed = self.elapsed.max(now_tick);
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Whether timer `id` is armed.
    pub fn contains(&self, id: u64) -> bool {
        self.index.contains_key(&id)
    }

    /// The deadline timer `id` was armed with, if it is armed.
    pub fn deadline(&self, id: u64) -> Option<u64> {
        self.index.get(&id).map(|&idx| self.nodes[idx as usize].deadline_ms)
    }

    /// The first tick at or after `deadline_ms`: firing at that tick is never early and at most one tick late.
    fn tick_of(&self, deadline_ms: u64) -> u64 {
        deadline_ms.saturating_sub(self.origin_ms).div_ceil(self.tick_ms)
    }

    /// Lowest occupied slot of the lowest non-empty level: the slot holding the earliest timers.
    fn earliest_slot(&self) -> Option<(usize, usize)> {
        self.occupied
            .iter()
            .position(|&bits| bits != 0)
            .map(|level| (level, self.occupied[level].trailing_zeros() as usize))
    }

    /// Links an unlinked node into the list its tick belongs to, relative to the current `elapsed`.
    fn place(&mut self, idx: u32) {
        let tick = self.tick_of(self.nodes[idx as usize].deadline_ms);
        let list = if tick <= self.elapsed {
            DUE
        } else {
            let level = level_for(self.elapsed, tick);
            let slot = ((tick >> (level as u32 * LEVEL_BITS)) & SLOT_MASK) as usize;
            self.occupied[level] |= 1 << slot;
            level * SLOTS + slot
        };
        let first = self.heads[list];
        let node = &mut self.nodes[idx as usize];
        node.next = first;
        node.prev = HEAD | list as u32;
        if first != NIL {
            self.nodes[first as usize].prev = idx;
        }
        self.heads[list] = idx;
    }

    /// Removes a linked node from its list, clearing the slot's occupancy bit when the list empties.
    fn unlink(&mut self, idx: u32) {
        let Node { next, prev, .. } = self.nodes[idx as usize];
        if prev >= HEAD {
            let list = (prev - HEAD) as usize;
            self.heads[list] = next;
            if next == NIL && list < DUE {
                self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
            }
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }

    fn alloc(&mut self, id: u64, deadline_ms: u64) -> u32 {
        let node = Node {
            id,
            deadline_ms,
            next: NIL,
            prev: NIL,
        };
        if self.free != NIL {
            let idx = self.free;
            self.free = self.nodes[idx as usize].next;
            self.nodes[idx as usize] = node;
            idx
        } else {
            assert!(self.nodes.len() < MAX_NODES, "TimingWheel holds at most 2^31 timers");
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        }
    }

    fn release(&mut self, idx: u32) {
        self.nodes[idx as usize].next = self.free;
        self.free = idx;
    }

    /// Fires the `DUE` list sorted by deadline: it can hold timers armed with deadlines far apart in the past.
    fn fire_due(&mut self, expired: &mut Vec<u64>) {
        let mut idx = std::mem::replace(&mut self.heads[DUE], NIL);
        if idx == NIL {
            return;
        }
        while idx != NIL {
            let node = self.nodes[idx as usize];
            self.index.remove(&node.id);
            self.release(idx);
            self.due_scratch.push((node.deadline_ms, node.id));
            idx = node.next;
        }
        self.due_scratch.sort_unstable();
        expired.extend(self.due_scratch.drain(..).map(|(_, id)| id));
    }
}

impl fmt::Debug for TimingWheel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimingWheel")
            .field("tick_ms", &self.tick_ms)
            .field("origin_ms", &self.origin_ms)
            .field("elapsed_ticks", &self.elapsed)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Level of a tick later than `elapsed`: the highest 6-bit group in which the two differ.
fn level_for(elapsed: u64, tick: u64) -> usize {
    let highest_bit = 63 - ((elapsed ^ tick) | SLOT_MASK).leading_zeros();
    (highest_bit / LEVEL_BITS) as usize
}

/// First tick of `slot` at `level` within the level's block that contains `elapsed`.
fn slot_start(elapsed: u64, level: usize, slot: usize) -> u64 {
    let shift = level as u32 * LEVEL_BITS;
    let block_bits = shift + LEVEL_BITS;
    let block_base = if block_bits >= 64 {
        0
    } else {
        (elapsed >> block_bits) << block_bits
    };
    block_base | ((slot as u64) << shift)
}

#[cfg(test)]
#[path = "wheel_tests.rs"]
mod tests;
