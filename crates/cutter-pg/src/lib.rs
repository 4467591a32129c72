//! PostgreSQL adapter: the reference schema, one transaction per phase method,
//! snapshots, preflight and throwaway clusters.
