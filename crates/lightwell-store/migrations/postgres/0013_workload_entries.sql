-- PostgreSQL flavour of the SQLite migration of the same number.
-- Workload entries: which workloads (selectors) on which hosts hold an
-- identity of a service. The selectors, hosts, lifetime and DNS names are one
-- JSON document (`spec`) that the service layer owns; the store scopes,
-- names and ties it to its service.
CREATE TABLE workload_entries (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    service_id  TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX workload_entries_name ON workload_entries (tenant_id, lower(name));
CREATE INDEX workload_entries_service ON workload_entries (tenant_id, service_id);
