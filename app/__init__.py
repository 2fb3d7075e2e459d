"""The HTTP side of a node: FastAPI routes over the node's live models."""
