"""Answer generation: the extractive answerer (no LLM needed)."""
