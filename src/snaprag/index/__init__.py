"""Storage and indexes: SQLite store, dense (exact / HNSW) and lexical (BM25) indexes."""
