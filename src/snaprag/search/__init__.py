"""Retrieval: fusion of ranked lists and the hybrid retriever."""
