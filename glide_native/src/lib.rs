//! `glide._native`: the sans-I/O core (`core`) and its thin Python bindings (`py`).

pub mod core;
pub mod driver;
pub mod loadgen;
mod py;

use pyo3::prelude::*;

// The I/O thread allocates what the Python thread frees (decoded envelopes, frames): mimalloc's per-thread
// heaps free across threads without the arena locks of the system allocator (full case1: -8.5 % server CPU
// per message, bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` (mimalloc.h; the -sys crate names no constant for it).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

#[pymodule(gil_used = false)]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Arenas committed page by page as they are used, not all at once: an idle server's memory per
    // connection is then below what the system allocator gave (1.76 KiB against 1.9 at 10,000 connections;
    // eagerly committed arenas: 2.3).
    // SAFETY: sets a process-wide option before this module allocates anything on its threads.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
    py::register(m)
}
