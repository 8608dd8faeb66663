//! The timing wheel for Python: one `advance` per gateway tick returns every expired id.

use pyo3::prelude::*;

use crate::core::wheel::TimingWheel;

/// Hierarchical timing wheel: O(1) insert/re-arm/cancel; `advance` returns expired ids in one batch.
#[pyclass(name = "TimingWheel", module = "glide._native")]
pub struct PyTimingWheel {
    inner: TimingWheel,
    expired: Vec<u64>,
}

#[pymethods]
impl PyTimingWheel {
    #[new]
    fn new(tick_ms: u64, now_ms: u64) -> Self {
        Self {
            inner: TimingWheel::new(tick_ms, now_ms),
            expired: Vec::new(),
        }
    }
    fn insert(&mut self, timer_id: u64, deadline_ms: u64) {
        self.inner.insert(timer_id, deadline_ms);
    }
    fn cancel(&mut self, timer_id: u64) -> bool {
        self.inner.cancel(timer_id)
    }
    fn advance(&mut self, now_ms: u64) -> Vec<u64> {
        self.expired.clear();
        self.inner.advance(now_ms, &mut self.expired);
        std::mem::take(&mut self.expired)
    }
    fn __len__(&self) -> usize {
        self.inner.len()
    }
    fn __contains__(&self, timer_id: u64) -> bool {
        self.inner.contains(timer_id)
    }
}
