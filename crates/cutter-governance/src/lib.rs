//! The append-only, hash-chained governance ledger (any N), run-scoped signed
//! approvals (SG_1, SG_2), the SG_3 escalation record, idempotency claims and void.
