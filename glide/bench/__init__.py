"""``glide bench``: GlideIM's load tests (2,000 and 10,000 connections), saturation, fan-out and idle memory,
against glide, the baselines in ``bench/baselines`` or any server that speaks the protocol.

The clients run in Rust (``glide._native.LoadGen``, one tokio thread); this package provisions users,
manages the server under test, samples its CPU and memory, and reports (table, JSON, PNG charts).
"""
