//! Encrypted, streaming pre-write backups of the mutation surface, their manifest,
//! selftest, and the restore proof into a throwaway cluster.
