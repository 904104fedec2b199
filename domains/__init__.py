"""Local domain orchestrators: the SDK for building them and example domains."""
