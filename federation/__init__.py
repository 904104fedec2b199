"""Generated from protos/federation. Do not edit; run `make proto`."""
