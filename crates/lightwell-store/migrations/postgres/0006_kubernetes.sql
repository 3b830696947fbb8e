-- PostgreSQL flavour of the SQLite migration of the same number.
-- Kubernetes clusters of a tenant. The cluster's settings, its CAs and its
-- nodes are one JSON document (`spec`) that the service layer owns; the store
-- only scopes, names and versions it.
CREATE TABLE k8s_clusters (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL,
    name        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX k8s_clusters_name ON k8s_clusters (tenant_id, lower(name));
