"""The federation gateway: registry, routing, policy and audit between domains."""
