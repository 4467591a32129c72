//! The document cutter: published legal text (HTML or plain text) → cut plan.
//!
//! Invariant: pure — bytes in, plan and report out; no I/O.
