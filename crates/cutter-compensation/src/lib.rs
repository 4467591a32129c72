//! Compensation A (revert the draft units of one change set) and B (append a
//! compensating review decision), planned from the core matrix, idempotent.
