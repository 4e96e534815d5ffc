"""The Milvus backend: a :class:`~snaprag.index.base.DocumentStore` that also searches
(dense and BM25) where its data lives. Needs the ``milvus`` extra (``pymilvus``, and
``milvus-lite`` for local files); see ``docs/milvus.md``.

``store.py`` (the store: sources, documents, chunks, version), ``schema.py`` (connection and
collections), ``bm25.py`` (BM25 as sparse vectors), ``search.py`` (the search side) and
``names.py`` (URIs, collection names, ids; imported without pymilvus).
"""
