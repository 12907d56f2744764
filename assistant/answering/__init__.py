"""One question, one way through: references and retrieval, the scope decision, composing the answer, grounding."""
