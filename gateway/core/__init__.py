"""Core logic of the gateway: plain Python, no gRPC or wire types (enforced by ruff TID251)."""
